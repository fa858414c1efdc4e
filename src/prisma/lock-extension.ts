import { Prisma } from '@prisma/client/extension';
import type { Executor } from '../core/executor.js';
import { type AdvisoryMethod, advisoryMethod } from '../core/lock-api.js';
import type { LockBinding } from '../core/run-under-lock.js';
import { prismaExecutor, prismaQuery } from './prisma-executor.js';
import { adapterPool, adapterPoolExecutor } from './adapter-pool.js';
import { type PrismaModelInfo, modelResolver } from './prisma-model.js';
import type { PrismaClientLike, PrismaRawLike, PrismaTransactionOptions } from './prisma-like.js';
import { type PrismaRowLocks, prismaRowLocks } from './row-lock-methods.js';
import { type PrioritizeMethod, prioritizeMethod } from '../core/prioritize.js';
import { type InspectMethod, inspectMethod } from '../core/inspect.js';
import { modelOfTable } from './model-of-table.js';
import { LockObject } from '../core/lock-object.js';
import {
  type HasVersionField,
  type ModelFieldsOf,
  type VersionFieldMap,
  type VersionFieldOf,
  type VersionedModelMethods,
  versionedModelMethods,
  versionedModelProps,
} from './versioned.js';
import type { LeaseMethods } from '../core/lease.js';
import { type PrismaLeaseOptions, prismaLeases } from './lease-methods.js';
import { checkPrismaTransactionOptions } from './transaction-options.js';

/**
 * A Prisma interactive-transaction client with `$lock` bound to it. Annotate the callback's
 * parameter with your client's own type (`Prisma.TransactionClient`, or
 * `Parameters<Parameters<typeof prisma.$transaction>[0]>[0]`) for fully typed models.
 */
export interface PrismaLockTransaction extends PrismaRawLike {
  /** The locks of this transaction: see {@link PrismaLock}. */
  readonly $lock: PrismaLock;
  readonly [model: string]: any;
}

/**
 * `prisma.$lock` and `tx.$lock`. `C` is the Prisma client the extension was applied to: it types
 * `row`, `claim` and `model` by that client's models (`unknown` accepts any model name).
 */
export interface PrismaLock<C = unknown> extends PrismaRowLocks<C>, LeaseMethods {
  /**
   * Advisory locks.
   * - `tx.$lock.advisory(key, opts?)` inside `prisma.$transaction(async (tx) => …)`: a
   *   transaction-scoped lock, held until commit or rollback; resolves whether it was taken.
   * - `prisma.$lock.advisory(key, async (tx) => …, opts?)`: opens a transaction, takes the lock,
   *   runs the function, commits, and resolves its result.
   *
   * A wait with no `timeout` is still bounded by the interactive transaction's own `timeout`
   * (Prisma's default is 5 s): it fails with `LockTimeoutError` shortly before Prisma would.
   *
   * @example
   * ```ts
   * await prisma.$transaction(async (tx) => {
   *   await tx.$lock.advisory(`invoice:${id}`, { timeout: '2s' });
   *   await tx.invoice.update({ where: { id }, data: { status: 'paid' } });
   * });
   * ```
   */
  readonly advisory: AdvisoryMethod<PrismaLockTransaction, PrismaTransactionOptions>;
  /**
   * Runs `fn(tx)` in an interactive transaction with `prioritize` applied to every lock wait
   * inside it (`tx.$lock.model`, `row`, `advisory`): the sessions that block a wait are cancelled
   * or terminated from another connection. Give the transaction a `timeout` long enough for the waits.
   *
   * @example
   * ```ts
   * await prisma.$lock.prioritize(async (tx) => {
   *   await tx.$lock.model('Account', { timeout: '5s' });
   *   await tx.$executeRawUnsafe('ALTER TABLE accounts ADD COLUMN note text');
   * }, { action: 'terminate', transaction: { timeout: 30_000 } });
   * ```
   */
  readonly prioritize: PrioritizeMethod<PrismaLockTransaction, PrismaTransactionOptions>;
  /**
   * The locks of this database now: who holds and who waits for what (tables shown with their
   * Prisma model), advisory keys (as strings where this process used them), and the leases.
   *
   * @example
   * ```ts
   * const { locks } = await prisma.$lock.inspect({ blockedOnly: true, relation: 'Account' });
   * ```
   */
  readonly inspect: InspectMethod;
}

/** Options of {@link lockExtension}. */
export interface LockExtensionOptions<VF extends VersionFieldMap = Record<never, string>> extends PrismaLeaseOptions {
  /**
   * The interactive-transaction timeout your `PrismaClient` uses by default, if you changed it
   * with `transactionOptions`. ormlock reads it from the client where it can; this overrides.
   */
  readonly transactionTimeout?: number;
  /**
   * The version field of models whose field is not called `version`, for `updateVersioned` /
   * `deleteVersioned`: `{ Account: 'revision' }`. An Int or BigInt field.
   */
  readonly versionField?: VF;
}

const PRISMA_DEFAULT_TIMEOUT_MS = 5_000;

/**
 * The Prisma client extension: adds `$lock` to the client and to every interactive-transaction
 * client, and `updateVersioned` / `deleteVersioned` to every model with a version field
 * (see `docs/optimistic.md`). Apply it last, so transactions it opens keep every other extension.
 *
 * @example
 * ```ts
 * import { PrismaClient } from './generated/prisma/client';
 * import { PrismaPg } from '@prisma/adapter-pg';
 * import { lockExtension } from 'ormlock/prisma';
 *
 * const prisma = new PrismaClient({ adapter: new PrismaPg({ connectionString }) }).$extends(lockExtension());
 * const report = await prisma.$lock.advisory('nightly-report', (tx) => buildReport(tx), { wait: false, onBusy: 'skip' });
 * ```
 */
export function lockExtension<const VF extends VersionFieldMap = Record<never, string>, C = unknown>(
  options: LockExtensionOptions<VF> = {},
): (client: C) => TypedLockExtension<C, VF> {
  // The client's type `C` is inferred from where the extension is used (`prisma.$extends(…)`),
  // so `$lock.row('Account', …)` knows the models of that client.
  return defineLockExtension(options) as unknown as (client: C) => TypedLockExtension<C, VF>;
}

type DefinedExtArgs<VF extends VersionFieldMap> = ReturnType<ReturnType<typeof defineLockExtension<VF>>> extends { $extends: { extArgs: infer A } } ? A : never;

/**
 * The model properties of client `C` (`'account' | 'counter' …`) whose model has an integer
 * version field: only these get `updateVersioned` / `deleteVersioned`.
 */
export type VersionedModelProp<C, VF extends VersionFieldMap> = {
  [K in keyof C & string]: C[K] extends { findMany: unknown; fields: unknown }
    ? HasVersionField<C[K], VersionFieldOf<C[K], VF>> extends true
      ? K
      : never
    : never;
}[keyof C & string];

type ModelExtArgs<C, VF extends VersionFieldMap> = unknown extends C
  ? DefinedExtArgs<VF> extends { model: infer M } ? M : never
  : { [K in VersionedModelProp<C, VF>]: { [P in keyof VersionedModelMethods<VF>]: () => VersionedModelMethods<VF>[P] } };

/**
 * What `$extends(lockExtension())` adds: the defined extension, with `$lock` typed by client `C`
 * and the versioned writes on the models of `C` that have a version field (and on no other).
 */
export type TypedLockExtension<C, VF extends VersionFieldMap> = {
  $extends: {
    extArgs: Omit<DefinedExtArgs<VF>, 'client' | 'model'> & {
      client: Omit<DefinedExtArgs<VF> extends { client: infer CL } ? CL : never, '$lock'> & { $lock: () => PrismaLock<C> };
      model: ModelExtArgs<C, VF>;
    };
  };
};

function defineLockExtension<const VF extends VersionFieldMap = Record<never, string>>(options: LockExtensionOptions<VF> = {}) {
  return Prisma.defineExtension((client) => {
    const base = client as unknown as PrismaClientLike;
    const leases = prismaLeases(base, options);
    const baseTransaction = base.$transaction;
    const sideChannel = { query: prismaQuery(base) };
    const defaultTimeout = options.transactionTimeout ?? configuredTimeout(base) ?? PRISMA_DEFAULT_TIMEOUT_MS;
    const executors = new WeakMap<object, Executor>();
    const resolveModel = modelResolver(client);
    const modelOf = modelOfTable(client);
    // Filled in once `$extends` below returns: the opener needs the client this extension makes.
    const extendedRef: { client?: PrismaClientLike } = {};
    // Claims outside a transaction run on the adapter's pg.Pool when it was given one (see adapterPoolExecutor).
    let onPool: Executor | null | undefined;
    const poolExecutor = (): Executor | undefined => {
      if (onPool === undefined) {
        const pool = adapterPool(base);
        onPool = pool === undefined ? null : adapterPoolExecutor(pool, sideChannel);
      }
      return onPool ?? undefined;
    };

    const bindTransaction = (tx: PrismaRawLike, deadline: number): PrismaLockTransaction => {
      const executor = prismaExecutor(tx, true, sideChannel, deadline);
      // Prisma hands every extension the same unbound `$lock` object on a transaction client, so
      // the transaction is wrapped once here and its `$lock` bound to it.
      const bound: PrismaLockTransaction = new Proxy(tx as PrismaLockTransaction, {
        get: (target, property) => (property === '$lock' ? lock : Reflect.get(target, property)),
      });
      const lock = prismaLock(() => ({ kind: 'transaction', executor, tx: bound }), resolveModel, modelOf, leases.inTransaction);
      executors.set(bound, executor);
      return bound;
    };

    const extension = {
      $lock: prismaLock(() => ({
        kind: 'opener',
        executor: prismaExecutor(base, false, sideChannel),
        opener: {
          transaction: <R>(fn: (executor: Executor, tx: PrismaLockTransaction) => Promise<R>, txOptions?: PrismaTransactionOptions) => {
            checkPrismaTransactionOptions(txOptions);
            return (extendedRef.client as PrismaClientLike).$transaction(
              (tx: PrismaLockTransaction) => fn(executors.get(tx) as Executor, tx),
              txOptions,
            ) as Promise<R>;
          },
        },
      }), resolveModel, modelOf, leases.root, poolExecutor),
      $transaction(this: PrismaClientLike, arg: unknown, txOptions?: PrismaTransactionOptions) {
        if (typeof arg !== 'function') return baseTransaction.call(this, arg, txOptions);
        const timeout = txOptions?.timeout ?? defaultTimeout;
        const run = arg as (tx: PrismaLockTransaction) => unknown;
        return baseTransaction.call(this, (tx: PrismaRawLike) => run(bindTransaction(tx, performance.now() + timeout)), txOptions);
      },
    };
    const models = (client as { _runtimeDataModel?: { models?: Record<string, { fields?: { name: string; type: string }[] }> } })._runtimeDataModel?.models;
    const fieldsOf: ModelFieldsOf = (model) => {
      if (models === undefined) return undefined;
      return Object.hasOwn(models, model) ? models[model]?.fields : null;
    };
    const versionField = (options.versionField ?? {}) as VF;
    const versioned = versionedModelMethods(versionField, fieldsOf);
    // `$transaction` is overridden at runtime only; its type stays Prisma's own.
    const extended = client.$extends({
      name: 'ormlock',
      client: extension as Pick<typeof extension, '$lock'>,
      // Only models with a version field get the methods, as the types say; a client that hides
      // its data model gets them on every model, checked on each call instead.
      model: (models === undefined
        ? { $allModels: versioned }
        : versionedModelProps(versionField, fieldsOf, Object.keys(models), versioned)) as { $allModels: typeof versioned },
    });
    extendedRef.client = extended as unknown as PrismaClientLike;
    return extended;
  });
}

function prismaLock(
  bindingOf: () => LockBinding<PrismaLockTransaction, PrismaTransactionOptions>,
  resolveModel: (model: unknown) => PrismaModelInfo,
  modelOf: (schema: string, table: string) => string | undefined,
  leases: LeaseMethods,
  poolExecutor?: () => Executor | undefined,
): PrismaLock {
  return new PrismaLockObject(bindingOf, resolveModel, modelOf, leases, poolExecutor) as unknown as PrismaLock;
}

// Made once per interactive transaction: its methods are built on first use (see LockObject).
class PrismaLockObject extends LockObject {
  constructor(
    private readonly bindingOf: () => LockBinding<PrismaLockTransaction, PrismaTransactionOptions>,
    private readonly resolveModel: (model: unknown) => PrismaModelInfo,
    private readonly modelOf: (schema: string, table: string) => string | undefined,
    private readonly leases: LeaseMethods,
    private readonly poolExecutor: (() => Executor | undefined) | undefined,
  ) {
    super();
  }

  protected buildAdvisory(): unknown {
    return advisoryMethod(this.bindingOf);
  }
  protected buildRowLocks(): PrismaRowLocks<unknown> {
    return prismaRowLocks(this.bindingOf, this.resolveModel, this.poolExecutor);
  }
  protected buildPrioritize(): unknown {
    return prioritizeMethod(this.bindingOf);
  }
  protected buildInspect(): unknown {
    return inspectMethod(() => this.bindingOf().executor, { modelOf: this.modelOf });
  }
  protected buildLeases(): LeaseMethods {
    return this.leases;
  }
}

/** The default timeout set with `new PrismaClient({ transactionOptions })`, where the runtime exposes it. */
function configuredTimeout(client: PrismaClientLike): number | undefined {
  const timeout = (client as { _engineConfig?: { transactionOptions?: { timeout?: unknown } } })._engineConfig?.transactionOptions?.timeout;
  return typeof timeout === 'number' && timeout > 0 ? timeout : undefined;
}
