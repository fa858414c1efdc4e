/**
 * ormlock for plain node-postgres: {@link $lock} on a pool, client or pool client, including
 * session-scoped advisory locks.
 *
 * @module ormlock/pg
 */
import { type AdvisoryLockOptions, type LockKeys, acquireAdvisory, planAdvisory } from '../core/advisory.js';
import { cachedLock } from '../core/lock-cache.js';
import { LockObject } from '../core/lock-object.js';
import { InvalidLockArgumentError, SessionLockUnsupportedError } from '../core/errors.js';
import type { Executor } from '../core/executor.js';
import { type AdvisoryMethod, advisoryMethod } from '../core/lock-api.js';
import type { LockBinding } from '../core/run-under-lock.js';
import { clientExecutor, clientSideChannel, poolLeaseExecutor, poolSideChannel, runTransaction } from './pg-executor.js';
import { type PgClientLike, type PgPoolLike, type PgTransactionOptions, isClient, isPool } from './pg-like.js';
import { SessionAdvisoryLock } from './session-lock.js';
import { type PrioritizeMethod, prioritizeMethod } from '../core/prioritize.js';
import { type InspectMethod, inspectMethod } from '../core/inspect.js';
import { type PgRowLocks, pgRowLocks } from './row-locks.js';
import { type LeaseMethods, leaseMethods } from '../core/lease.js';
import { type LeaseHost, leaseHostOf } from '../core/lease-host.js';
import { type LeaseTableOptions, ensureLeaseTable as ensureLeaseTableWith, leaseTableNames } from '../core/lease-schema.js';
import { poolNotifySource } from './pg-notify.js';

export type { PgClientLike, PgPoolLike, PgTransactionOptions } from './pg-like.js';
export { SessionAdvisoryLock } from './session-lock.js';
export type { PgRowLocks, PgRowQuery, PgClaimQuery, PgTableName, PgWhere, PgOrderBy } from './row-locks.js';

/** Options of a session-scoped advisory lock (`ormlock/pg` only). */
export interface SessionAdvisoryOptions extends Omit<AdvisoryLockOptions, 'onBusy'> {
  /** Held by the connection until released, across transactions. */
  readonly scope: 'session';
  /** `'throw'` (default when waiting) or `'return'` `null` (default with `wait: false`). */
  readonly onBusy?: 'throw' | 'return';
}

/** `advisory()` on a `pg` client: the transaction forms, plus session scope. */
export interface PgAdvisoryMethod<Tx> extends AdvisoryMethod<Tx, PgTransactionOptions> {
  (key: LockKeys, options: SessionAdvisoryOptions): Promise<SessionAdvisoryLock | null>;
}

/**
 * Locks on a node-postgres pool or client. Leases (`lease`, `withLease`, `leader`, …) need a
 * pool: their statements and heartbeats run in autocommit on pooled connections, and waiters
 * LISTEN on a pooled client of their own.
 */
export interface PgLock<Tx> extends PgRowLocks, LeaseMethods {
  /**
   * Advisory locks. In a transaction on this client: `advisory(key, opts?)` holds the lock until
   * commit or rollback. `advisory(key, fn, opts?)` runs `fn(client)` under the lock in a
   * transaction (opened on a pooled client if this is a pool). `advisory(key, { scope: 'session' })`
   * on a client returns a {@link SessionAdvisoryLock} to release yourself.
   *
   * @example
   * ```ts
   * const total = await $lock(pool).advisory(['account', 42], async (client) => {
   *   const { rows } = await client.query('SELECT balance FROM accounts WHERE id = $1', [42]);
   *   return rows[0].balance;
   * });
   * ```
   */
  readonly advisory: PgAdvisoryMethod<Tx>;
  /**
   * Runs `fn(client)` in a transaction with `prioritize` applied to every lock wait inside it:
   * the sessions that block a wait are cancelled or terminated from a second connection.
   *
   * @example
   * ```ts
   * await $lock(pool).prioritize(async (client) => {
   *   await $lock(client).model({ name: 'accounts' }, { timeout: '5s' });
   *   await client.query('ALTER TABLE accounts ADD COLUMN note text');
   * }, { action: 'terminate' });
   * ```
   */
  readonly prioritize: PrioritizeMethod<Tx, PgTransactionOptions>;
  /**
   * The locks of this database now: who holds and who waits for what, and the leases.
   *
   * @example
   * ```ts
   * const { locks } = await $lock(pool).inspect({ blockedOnly: true });
   * ```
   */
  readonly inspect: InspectMethod;
}

/** Extra wiring for `$lock(client)`. */
export interface PgLockOptions {
  /** Where to send the cancel of an aborted wait: a pool of the same database. */
  readonly cancelVia?: PgPoolLike;
  /** Where the lease table is (default `ormlock_leases` on the search path). */
  readonly leaseTable?: LeaseTableOptions;
  /**
   * How the connection reaches PostgreSQL: `'transaction'` when it goes through a
   * transaction-mode pooler (pgbouncer `pool_mode = transaction` and the like), which gives each
   * transaction to any server backend. Session-scoped locks are then refused with
   * {@link SessionLockUnsupportedError} before any SQL is sent; everything transaction-scoped
   * works as usual. Default `'none'` (direct, or a session-mode pooler).
   *
   * On a pool, `'transaction'` also makes lease waiters poll instead of opening a LISTEN
   * connection (which the pooler could not keep): see docs/leases.md.
   *
   * @example
   * ```ts
   * const locks = $lock(client, { pooling: 'transaction' });
   * await locks.advisory('report', async (tx) => build(tx)); // fine: one transaction
   * await locks.advisory('report', { scope: 'session' });    // throws SessionLockUnsupportedError
   * ```
   */
  readonly pooling?: 'none' | 'session' | 'transaction';
}

/**
 * ormlock on plain node-postgres. Pass a `Pool` to open transactions as needed, or a `Client` /
 * `PoolClient` you hold (in a transaction or not).
 *
 * @example
 * ```ts
 * import { $lock } from 'ormlock/pg';
 * await client.query('BEGIN');
 * await $lock(client).advisory('invoice:42');  // held until COMMIT / ROLLBACK
 * ```
 */
// The pool overload first: a Pool is also client-like (it has `query`), and its transactions run
// on a pooled client, not on the pool. Generic, so that a pg.Pool matches it in the first (subtype) pass.
export function $lock<P extends PgPoolLike>(target: P, options?: PgLockOptions): PgLock<PoolClientOf<P>>;
export function $lock<C extends PgClientLike>(target: C, options?: PgLockOptions): PgLock<C>;
export function $lock(target: PgPoolLike | PgClientLike, options: PgLockOptions = {}): PgLock<PgClientLike> {
  if (isPool(target)) return cachedLock(target, options, () => poolLock(target, options));
  if (isClient(target)) return cachedLock(target, options, () => clientLock(target, options));
  throw new InvalidLockArgumentError('target', 'expected a pg Pool, Client or PoolClient');
}

function poolLock(pool: PgPoolLike, options: PgLockOptions): PgLock<PgClientLike> {
  const sideChannel = poolSideChannel(pool);
  const leaseTable = leaseTableNames(options.leaseTable);
  const binding: LockBinding<PgClientLike, PgTransactionOptions> = {
    kind: 'opener',
    executor: { query: sideChannel.query, inTransaction: false, sideChannel },
    opener: {
      async transaction(fn, txOptions) {
        const client = await pool.connect();
        let broken: Error | undefined;
        // node-postgres leaves a checked-out client without an 'error' listener: a backend
        // terminated (pg_terminate_backend, a restart) while fn awaits between statements would
        // be an uncaught 'error' event that ends the process. The next statement fails anyway.
        const events = client as { on?(event: 'error', listener: (error: Error) => void): unknown; off?(event: 'error', listener: (error: Error) => void): unknown };
        const onError = (error: Error): void => void (broken ??= error);
        events.on?.('error', onError);
        try {
          return await runTransaction(client, txOptions, () => fn(clientExecutor(client, true, sideChannel), client), (error) => {
            broken = error;
          });
        } finally {
          events.off?.('error', onError);
          client.release(broken);
        }
      },
    },
  };
  return new PgLockObject(() => binding, {
    sessionLock: () => {
      throw new InvalidLockArgumentError('options.scope', `session locks belong to one connection: take them on a client you hold ($lock(await pool.connect())), not on a pool`);
    },
    leaseHost: () =>
      leaseHostOf(
        pool,
        leaseTable,
        () => ({
          // Named statements, except through a transaction-mode pooler: it may run the next use
          // of a name on a backend that never parsed it.
          executor: poolLeaseExecutor(pool, options.pooling),
          // A transaction-mode pooler cannot keep a LISTEN: waiters poll.
          notify: options.pooling === 'transaction' ? undefined : poolNotifySource(pool),
        }),
        options.pooling ?? '',
      ),
  }) as unknown as PgLock<PgClientLike>;
}

function clientLock(client: PgClientLike, options: PgLockOptions): PgLock<PgClientLike> {
  const sideChannel = options.cancelVia ? poolSideChannel(options.cancelVia) : clientSideChannel(client);
  const inTx = clientExecutor(client, true, sideChannel);
  const outsideTx = clientExecutor(client, false, sideChannel);
  const opener: LockBinding<PgClientLike, PgTransactionOptions> = {
    kind: 'opener',
    executor: outsideTx,
    opener: { transaction: (fn, txOptions) => runTransaction(client, txOptions, () => fn(inTx, client)) },
  };
  const inTransaction: LockBinding<PgClientLike, PgTransactionOptions> = { kind: 'transaction', executor: inTx, tx: client };
  return new PgLockObject(() => (transactionStatus(client) === 'I' ? opener : inTransaction), {
    sessionLock: (key, sessionOptions) => {
      if (options.pooling === 'transaction') {
        throw new SessionLockUnsupportedError(
          `a session-scoped lock cannot be held through a transaction-mode pooler (pooling: 'transaction'): it would stay with a server ` +
            `backend that other clients use next. Take a transaction-scoped lock (advisory(key, async (tx) => …)) or a lease instead`,
        );
      }
      return sessionLock(transactionStatus(client) === 'I' ? outsideTx : inTx, key, sessionOptions);
    },
    leaseHost: () => {
      throw new InvalidLockArgumentError(
        'target',
        'leases need a pool ($lock(pool)): their heartbeats run on connections of their own, never on a client you are using (or inside its transaction)',
      );
    },
  }) as unknown as PgLock<PgClientLike>;
}

/** The client type a pool hands out (`pg.PoolClient` for a `pg.Pool`). */
export type PoolClientOf<P> = AsClient<
  // pg.Pool declares connect() twice; a conditional type sees only the last declaration, which is
  // node-postgres's callback form, so the client type is read from there or from the promise form.
  P extends { connect(callback: (error: never, client: infer C, done: never) => void): void }
    ? NonNullable<C>
    : P extends { connect(): Promise<infer C> }
      ? C
      : never
>;
type AsClient<C> = [C] extends [never] ? PgClientLike : C extends PgClientLike ? C : PgClientLike;

/** What differs between a pool's and a client's `$lock`. */
interface PgTarget {
  sessionLock(key: LockKeys, options: SessionAdvisoryOptions): Promise<SessionAdvisoryLock | null>;
  leaseHost(): LeaseHost;
}

class PgLockObject extends LockObject {
  #host: LeaseHost | undefined;

  constructor(
    private readonly bindingOf: () => LockBinding<PgClientLike, PgTransactionOptions>,
    private readonly target: PgTarget,
  ) {
    super();
  }

  protected buildAdvisory(): unknown {
    const advisory = advisoryMethod(this.bindingOf) as (...args: unknown[]) => unknown;
    return async (key: LockKeys, fnOrOptions?: unknown, runOptions?: unknown) =>
      isSessionOptions(fnOrOptions) ? this.target.sessionLock(key, fnOrOptions) : advisory(key, fnOrOptions, runOptions);
  }
  protected buildRowLocks(): PgRowLocks {
    return pgRowLocks(() => this.bindingOf().executor);
  }
  protected buildPrioritize(): unknown {
    return prioritizeMethod(this.bindingOf);
  }
  protected buildInspect(): unknown {
    return inspectMethod(() => this.bindingOf().executor);
  }
  protected buildLeases(): LeaseMethods {
    return leaseMethods(() => (this.#host ??= this.target.leaseHost()));
  }
}

function isSessionOptions(value: unknown): value is SessionAdvisoryOptions {
  return typeof value === 'object' && value !== null && 'scope' in value && (value as { scope: unknown }).scope !== undefined;
}

/**
 * 'I' idle, 'T' in a transaction, 'E' in a failed one. node-postgres reports it from every
 * ReadyForQuery message, so this costs no round trip.
 */
function transactionStatus(client: PgClientLike): string {
  if (typeof client.getTransactionStatus !== 'function') {
    throw new InvalidLockArgumentError('client', 'ormlock/pg needs pg ≥ 8.16 (client.getTransactionStatus) to know whether a transaction is open');
  }
  return client.getTransactionStatus() ?? 'I';
}

async function sessionLock(executor: Executor, key: LockKeys, options: SessionAdvisoryOptions): Promise<SessionAdvisoryLock | null> {
  const { scope, ...rest } = options;
  if (scope !== 'session') throw new InvalidLockArgumentError('options.scope', `expected 'session' (transaction scope is the default)`);
  const plan = planAdvisory(key, rest, 'lock');
  let backendPid: number | undefined;
  const acquired = await acquireAdvisory(executor, plan, { scope: 'session', onBackendPid: (pid) => (backendPid = pid) });
  return acquired ? new SessionAdvisoryLock(executor, plan.keys, plan.shared, plan.what, backendPid) : null;
}

/**
 * Creates the lease table if it does not exist (for scripts and tests; apps use a migration:
 * `npx ormlock migrate sql | prisma | drizzle`).
 *
 * @example
 * ```ts
 * await ensureLeaseTable(pool);
 * ```
 */
export async function ensureLeaseTable(target: PgPoolLike | PgClientLike, options: LeaseTableOptions = {}): Promise<void> {
  await ensureLeaseTableWith({ query: async (text, params) => (await target.query(text, params as unknown[])).rows as never[] }, options);
}
