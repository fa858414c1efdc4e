import type { LeaseMethods } from './lease.js';

/** The row-lock methods every layer has, whatever their argument types. */
interface RowLockGroup {
  readonly row: unknown;
  readonly claim: unknown;
  readonly model: unknown;
}

/**
 * The object `$lock(…)` returns, built lazily: a layer makes one per call (a Drizzle `$lock(tx)`,
 * a Prisma transaction's `tx.$lock`), and each method is built only when it is first read, once
 * per object. A layer says how to build each group; the getters live on the prototype, so making
 * the object costs one allocation whatever the number of methods.
 */
export abstract class LockObject {
  #advisory: unknown;
  #rows: RowLockGroup | undefined;
  #leases: LeaseMethods | undefined;
  #prioritize: unknown;
  #inspect: unknown;

  protected abstract buildAdvisory(): unknown;
  protected abstract buildRowLocks(): RowLockGroup;
  protected abstract buildLeases(): LeaseMethods;
  protected abstract buildPrioritize(): unknown;
  protected abstract buildInspect(): unknown;

  get advisory(): unknown {
    return (this.#advisory ??= this.buildAdvisory());
  }
  get prioritize(): unknown {
    return (this.#prioritize ??= this.buildPrioritize());
  }
  get inspect(): unknown {
    return (this.#inspect ??= this.buildInspect());
  }
  get row(): unknown {
    return this.#rowLocks().row;
  }
  get claim(): unknown {
    return this.#rowLocks().claim;
  }
  get model(): unknown {
    return this.#rowLocks().model;
  }
  get lease(): LeaseMethods['lease'] {
    return this.#leaseMethods().lease;
  }
  get withLease(): LeaseMethods['withLease'] {
    return this.#leaseMethods().withLease;
  }
  get getLease(): LeaseMethods['getLease'] {
    return this.#leaseMethods().getLease;
  }
  get listLeases(): LeaseMethods['listLeases'] {
    return this.#leaseMethods().listLeases;
  }
  get leader(): LeaseMethods['leader'] {
    return this.#leaseMethods().leader;
  }
  get pruneLeases(): LeaseMethods['pruneLeases'] {
    return this.#leaseMethods().pruneLeases;
  }

  #rowLocks(): RowLockGroup {
    return (this.#rows ??= this.buildRowLocks());
  }
  #leaseMethods(): LeaseMethods {
    return (this.#leases ??= this.buildLeases());
  }
}

// Every lease method must have a getter above: this fails to compile when LeaseMethods grows.
type LeaseGetters = 'lease' | 'withLease' | 'getLease' | 'listLeases' | 'leader' | 'pruneLeases';
const leaseGettersComplete: Exclude<keyof LeaseMethods, LeaseGetters> extends never ? true : never = true;
void leaseGettersComplete;
