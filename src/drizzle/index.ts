/**
 * ormlock for Drizzle: {@link $lock} on a database or transaction, {@link updateVersioned} /
 * {@link deleteVersioned}, and the lease table's schema objects for drizzle-kit.
 *
 * @module ormlock/drizzle
 */
import { is } from 'drizzle-orm';
import { cachedLock } from '../core/lock-cache.js';
import { LockObject } from '../core/lock-object.js';
import { PgTransaction, type PgTransactionConfig } from 'drizzle-orm/pg-core';
import { InvalidLockArgumentError } from '../core/errors.js';
import { type AdvisoryMethod, advisoryMethod } from '../core/lock-api.js';
import type { LockBinding } from '../core/run-under-lock.js';
import { type DrizzleExecuteLike, drizzleExecutor, drizzleQuery } from './drizzle-executor.js';
import { type DrizzleRowLocks, drizzleRowLocks } from './row-locks.js';
import { type LeaseMethods, leaseMethods } from '../core/lease.js';
import { type LeaseHost, leaseHostOf } from '../core/lease-host.js';
import { type LeaseTableNames, type LeaseTableOptions, leaseTableNames } from '../core/lease-schema.js';
import { drizzleNotifySource } from './lease-notify.js';
import type { Executor } from '../core/executor.js';
import { preparedQuery } from '../pg/pg-executor.js';
import { isPool } from '../pg/pg-like.js';
import { type PrioritizeMethod, prioritizeMethod } from '../core/prioritize.js';
import { type InspectMethod, inspectMethod } from '../core/inspect.js';
import { checkTransactionConfig } from './transaction-config.js';
import { pooledTransaction } from './pool-transaction.js';

export type { DrizzleExecuteLike } from './drizzle-executor.js';
export type { DrizzleRowLocks, DrizzleRowQuery, DrizzleClaimQuery, DrizzleOrderBy } from './row-locks.js';
export {
  updateVersioned,
  deleteVersioned,
  type UpdateVersionedArgs,
  type DeleteVersionedArgs,
  type DefaultVersionColumn,
  type DrizzleWriterLike,
} from './update-versioned.js';

/** A Drizzle PostgreSQL database: it can run SQL and open transactions. */
export interface DrizzleDatabaseLike<Tx> extends DrizzleExecuteLike {
  /** Drizzle's `db.transaction(fn, config)`. */
  transaction<R>(fn: (tx: Tx) => Promise<R>, config?: PgTransactionConfig): Promise<R>;
}

export { leaseTable, fenced, type LeaseTableDefinition } from './lease-table.js';
export { ensureLeaseTable } from './lease-notify.js';

/**
 * Locks on a Drizzle database or transaction. Leases (`lease`, `withLease`, `leader`, …) need the
 * database (`$lock(db)`), not a transaction: they commit on their own and outlive transactions.
 */
export interface DrizzleLock<Tx> extends DrizzleRowLocks, LeaseMethods {
  /**
   * Advisory locks. On a transaction: `advisory(key, opts?)` holds the lock until it ends.
   * `advisory(key, fn, opts?)` runs `fn(tx)` under the lock, opening a transaction on a database.
   *
   * @example
   * ```ts
   * await db.transaction(async (tx) => {
   *   await $lock(tx).advisory(`invoice:${id}`);
   *   await tx.update(invoices).set({ status: 'paid' }).where(eq(invoices.id, id));
   * });
   * ```
   */
  readonly advisory: AdvisoryMethod<Tx, PgTransactionConfig>;
  /**
   * Runs `fn(tx)` in a transaction with `prioritize` applied to every lock wait inside it
   * (`$lock(tx)` calls included): the sessions that block a wait are cancelled or terminated
   * from another connection of `db`.
   *
   * @example
   * ```ts
   * await $lock(db).prioritize(async (tx) => {
   *   await $lock(tx).model(accounts, { timeout: '5s' });
   *   await tx.execute(sql`ALTER TABLE accounts ADD COLUMN note text`);
   * }, { action: 'terminate', every: '500ms' });
   * ```
   */
  readonly prioritize: PrioritizeMethod<Tx, PgTransactionConfig>;
  /**
   * The locks of this database now: who holds and who waits for what, and the leases.
   *
   * @example
   * ```ts
   * const { locks } = await $lock(db).inspect({ blockedOnly: true });
   * ```
   */
  readonly inspect: InspectMethod;
}

/** Extra wiring for `$lock(tx)`. */
export interface DrizzleLockOptions {
  /** The database a transaction belongs to: lets an `AbortSignal` cancel a wait from another connection. */
  readonly db?: DrizzleExecuteLike;
  /** Where the lease table is (default `ormlock_leases` on the search path). */
  readonly leaseTable?: LeaseTableOptions;
  /**
   * `'transaction'` when the database's connections go through a transaction-mode pooler
   * (pgbouncer `pool_mode = transaction` and the like): lease waiters then poll instead of
   * LISTENing, which the pooler cannot keep. Transaction-scoped locks work either way.
   */
  readonly pooling?: 'none' | 'session' | 'transaction';
}

type TxOf<D> = D extends { transaction<R>(fn: (tx: infer Tx) => Promise<R>, ...rest: never[]): Promise<R> } ? Tx : D;

/**
 * ormlock on Drizzle (node-postgres, postgres.js or any PostgreSQL driver Drizzle supports).
 *
 * @example
 * ```ts
 * import { $lock } from 'ormlock/drizzle';
 * const report = await $lock(db).advisory('nightly-report', async (tx) => buildReport(tx), { wait: false, onBusy: 'skip' });
 * ```
 */
export function $lock<D extends DrizzleExecuteLike>(dbOrTx: D, options: DrizzleLockOptions = {}): DrizzleLock<TxOf<D>> {
  if (typeof (dbOrTx as { execute?: unknown } | null)?.execute !== 'function') {
    throw new InvalidLockArgumentError('dbOrTx', 'expected a Drizzle PostgreSQL database or transaction');
  }
  return cachedLock(dbOrTx, options, () => buildLock(dbOrTx, options));
}

/**
 * The lease statements' executor: through Drizzle, and on node-postgres (`db.$client` a Pool) also
 * by name on the pool itself, so each connection plans them once (postgres.js prepares every
 * statement by itself). Never by name through a transaction-mode pooler.
 */
function leaseExecutor(db: DrizzleExecuteLike, pooling: DrizzleLockOptions['pooling']): Executor {
  const executor = drizzleExecutor(db, false, undefined);
  const client = (db as { $client?: unknown }).$client;
  if (pooling === 'transaction' || !isPool(client)) return executor;
  return { ...executor, queryPrepared: preparedQuery(client) };
}

function buildLock<D extends DrizzleExecuteLike>(dbOrTx: D, options: DrizzleLockOptions): DrizzleLock<TxOf<D>> {
  const inTransaction = is(dbOrTx, PgTransaction);
  const sideSource = inTransaction ? options.db : (options.db ?? dbOrTx);
  const sideChannel = sideSource ? { query: drizzleQuery(sideSource) } : undefined;
  let binding: LockBinding<TxOf<D>, PgTransactionConfig>;
  if (inTransaction) {
    binding = { kind: 'transaction', executor: drizzleExecutor(dbOrTx, true, sideChannel), tx: dbOrTx as TxOf<D> };
  } else {
    const db = dbOrTx as unknown as DrizzleDatabaseLike<TxOf<D>>;
    // On a node-postgres pool ormlock holds the pooled client itself (Drizzle's own would leak it
    // when BEGIN fails); elsewhere db.transaction as it is.
    const transaction = (pooledTransaction(db) ?? ((fn, config) => db.transaction(fn as never, config))) as DrizzleDatabaseLike<TxOf<D>>['transaction'];
    binding = {
      kind: 'opener',
      executor: drizzleExecutor(db, false, sideChannel),
      opener: {
        transaction: (fn, config) => {
          checkTransactionConfig(config);
          return transaction((tx) => fn(drizzleExecutor(tx as DrizzleExecuteLike, true, sideChannel), tx), config);
        },
      },
    };
  }
  // A bad lease table name fails here, at once, as every other bad option does.
  const leaseTable = options.leaseTable === undefined ? undefined : leaseTableNames(options.leaseTable);
  return new DrizzleLockObject(dbOrTx, binding, leaseTable, options.pooling) as unknown as DrizzleLock<TxOf<D>>;
}

class DrizzleLockObject<Tx> extends LockObject {
  #host: LeaseHost | undefined;

  constructor(
    private readonly target: DrizzleExecuteLike,
    private readonly binding: LockBinding<Tx, PgTransactionConfig>,
    private readonly leaseTable: LeaseTableNames | undefined,
    private readonly pooling: DrizzleLockOptions['pooling'],
  ) {
    super();
  }

  protected buildAdvisory(): unknown {
    return advisoryMethod(() => this.binding);
  }
  protected buildRowLocks(): DrizzleRowLocks {
    return drizzleRowLocks(() => this.binding.executor, this.target);
  }
  protected buildPrioritize(): unknown {
    return prioritizeMethod(() => this.binding);
  }
  protected buildInspect(): unknown {
    return inspectMethod(() => this.binding.executor);
  }
  protected buildLeases(): LeaseMethods {
    const leaseTable = this.leaseTable ?? leaseTableNames(undefined);
    return leaseMethods(() => {
      if (this.binding.kind === 'transaction') {
        throw new InvalidLockArgumentError('dbOrTx', 'leases commit on their own and outlive transactions: take them on the database ($lock(db)), not on a transaction');
      }
      return (this.#host ??= leaseHostOf(
        this.target,
        leaseTable,
        () => ({
          executor: leaseExecutor(this.target, this.pooling),
          // A transaction-mode pooler cannot keep a LISTEN: waiters poll.
          notify: this.pooling === 'transaction' ? undefined : drizzleNotifySource(this.target),
        }),
        this.pooling ?? '',
      ));
    });
  }
}
