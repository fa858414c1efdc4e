import {
  DeadlockError,
  InvalidLockArgumentError,
  LockAbortedError,
  LockNotAvailableError,
  LockTimeoutError,
  OrmlockError,
  QueryCanceledError,
  SerializationError,
} from './errors.js';
import type { Executor, Row } from './executor.js';
import { type PrioritizePlan, markWait, resolvePrioritize, startPrioritizer } from './prioritize.js';
import { nextSavepointName } from './sql.js';
import { SqlState, sqlStateOf } from './sqlstate.js';

/** How one lock statement may wait. */
export interface WaitPlan<T = Row> {
  /** Bound the wait with `lock_timeout` (already applied inside `text` by the statement builder). */
  readonly timeoutMs?: number;
  /** Whether `timeoutMs` came from the driver's own transaction deadline rather than the caller. */
  readonly implicitTimeout?: boolean;
  /** The statement uses NOWAIT: a busy lock fails at once. */
  readonly nowait?: boolean;
  readonly signal?: AbortSignal;
  /** Wrap the statement in a savepoint so that a failed wait leaves the caller's transaction usable. */
  readonly savepoint: boolean;
  /** What is being locked, for messages: `advisory lock "invoice:42"`. */
  readonly what: string;
  /**
   * Whether the statement's rows count as acquired (default: any result does). When they do not,
   * the savepoint is rolled back, giving back whatever the statement did take.
   */
  readonly keep?: (rows: T[]) => boolean;
  /**
   * Signal the backends that block this wait while it lasts. Without it, the plan of an enclosing
   * `$lock.prioritize(fn, opts)` applies, if any. Ignored with `nowait`.
   */
  readonly prioritize?: PrioritizePlan;
}

/** The outcome of a wait that did not throw. */
export type WaitOutcome<T> = { readonly acquired: true; readonly rows: T[] } | { readonly acquired: false; readonly error: OrmlockError };

/** The wait margin left before a driver's transaction deadline, so our error arrives first. */
const DEADLINE_MARGIN_MS = 100;

/**
 * The timeout to apply to a wait: the caller's, or, when the driver will end the transaction at a
 * known time (Prisma's interactive-transaction `timeout`), a bound just before that.
 */
export function effectiveTimeout(executor: Executor, timeoutMs: number | undefined): { timeoutMs?: number; implicit: boolean } {
  if (executor.deadline === undefined) return { timeoutMs, implicit: false };
  const remaining = Math.max(1, Math.floor(executor.deadline - performance.now() - DEADLINE_MARGIN_MS));
  if (timeoutMs !== undefined && timeoutMs <= remaining) return { timeoutMs, implicit: false };
  return { timeoutMs: remaining, implicit: true };
}

/**
 * Wraps a locking SELECT so that it runs with `lock_timeout` set for its own wait only: the
 * previous value is read and restored by the same statement, so the bound costs no round trip and
 * never leaks into the caller's later statements (on success the restore runs; on failure the
 * savepoint or the aborted transaction undoes the change).
 *
 * The wait is bounded by lock_timeout on the server, not by a timer here: a client-side race
 * would leave the statement queued and the lock taken after we gave up.
 */
export function withLockTimeout(innerSql: string, timeoutParam: string): string {
  return (
    `SELECT set_config('lock_timeout', ormlock_p.prev, true) AS ormlock_restored, ormlock_l.* ` +
    `FROM (SELECT current_setting('lock_timeout') AS prev, set_config('lock_timeout', ${timeoutParam}, true) AS applied OFFSET 0) AS ormlock_p ` +
    `CROSS JOIN LATERAL (SELECT * FROM (${innerSql}) AS ormlock_i WHERE ormlock_p.applied IS NOT NULL) AS ormlock_l`
  );
}

// Cancels only while the backend is still waiting on a lock in our exact statement, so a cancel
// that arrives late cannot hit whatever the connection runs next.
const CANCEL_WAIT_SQL =
  `SELECT pg_cancel_backend(a.pid) AS cancelled FROM pg_stat_activity a ` +
  `WHERE a.pid = $1 AND a.state = 'active' AND a.wait_event_type = 'Lock' ` +
  `AND length(a.query) > 0 AND left($2, length(a.query)) = a.query`;

/** Throws if the caller's signal is already aborted or cannot be honoured by this executor. */
export function checkSignal(executor: Executor, signal: AbortSignal | undefined, what: string): void {
  if (signal === undefined) return;
  if (!(signal instanceof AbortSignal)) throw new InvalidLockArgumentError('options.signal', 'expected an AbortSignal');
  if (executor.sideChannel === undefined) {
    throw new InvalidLockArgumentError('options.signal', 'this connection has no second connection to cancel a wait from; pass a pool or client that can open one');
  }
  if (signal.aborted) throw new LockAbortedError(`wait for ${what} aborted before it started`, { cause: signal.reason });
}

/**
 * Runs one locking statement under a {@link WaitPlan}: savepoint, cancellation on abort, and
 * SQLSTATE-based classification. A busy lock (timeout or NOWAIT) comes back as
 * `{ acquired: false }` with the error the caller may throw; other failures are thrown mapped.
 */
export async function runLockStatement<T extends Row>(
  executor: Executor,
  text: string,
  params: readonly unknown[],
  plan: WaitPlan<T>,
): Promise<WaitOutcome<T>> {
  checkSignal(executor, plan.signal, plan.what);
  const prioritize = plan.nowait ? undefined : resolvePrioritize(executor, plan.prioritize, plan.what);
  const pid = plan.signal || prioritize ? await backendPidOf(executor) : undefined;
  // A prioritized wait's text is made unique, so a look that arrives late can never match a
  // later statement of the same connection.
  const sent = prioritize ? markWait(text) : text;
  // Some drivers must open the savepoint themselves (postgres.js fails the whole transaction on
  // any failed statement that did not run inside its own savepoint API).
  const driverSavepoint = plan.savepoint ? executor.savepoint : undefined;
  const savepoint = plan.savepoint && !driverSavepoint ? nextSavepointName() : undefined;
  if (savepoint) await executor.query(`SAVEPOINT ${savepoint}`);
  const keep = plan.keep ?? (() => true);

  let aborted = false;
  const onAbort = (): void => {
    aborted = true;
    executor.sideChannel?.query(CANCEL_WAIT_SQL, [pid, sent]).catch(() => {
      // Nothing to undo: if the cancel cannot be sent the wait ends by its own bound.
    });
  };
  plan.signal?.addEventListener('abort', onAbort, { once: true });
  const prioritizer = prioritize && pid !== undefined ? startPrioritizer(prioritize.sideChannel, pid, sent, prioritize.plan) : undefined;
  try {
    let rows: T[];
    try {
      if (driverSavepoint) {
        const outcome: T[] | typeof NOT_KEPT = await driverSavepoint(async (inner) => {
          const got = await inner.query<T>(sent, params);
          // Throwing makes the driver roll the savepoint back, giving back what was taken.
          if (!keep(got)) throw NOT_KEPT;
          return got;
        }).catch((error: unknown): typeof NOT_KEPT => {
          if (error === NOT_KEPT) return NOT_KEPT;
          throw error;
        });
        if (outcome === NOT_KEPT) return { acquired: false, error: busyError({ ...plan, nowait: true }, undefined) };
        return { acquired: true, rows: outcome };
      }
      rows = await executor.query<T>(sent, params);
    } finally {
      await prioritizer?.stop();
    }
    if (keep(rows)) {
      if (savepoint) await executor.query(`RELEASE SAVEPOINT ${savepoint}`);
      return { acquired: true, rows };
    }
    if (savepoint) await rollbackTo(executor, savepoint);
    return { acquired: false, error: busyError({ ...plan, nowait: true }, undefined) };
  } catch (error) {
    if (savepoint) await rollbackTo(executor, savepoint);
    const state = sqlStateOf(error);
    // Prioritize gave up (and cancelled the wait, unless the wait ended first): its reason is the real one.
    if (prioritizer?.failure && (state === SqlState.queryCanceled || state === SqlState.lockNotAvailable)) throw prioritizer.failure;
    if (state === SqlState.queryCanceled && aborted) {
      throw new LockAbortedError(`wait for ${plan.what} aborted`, { cause: plan.signal?.reason ?? error });
    }
    if (state === SqlState.lockNotAvailable) return { acquired: false, error: busyError(plan, error) };
    throw mapDriverError(error);
  } finally {
    plan.signal?.removeEventListener('abort', onAbort);
  }
}

const NOT_KEPT: unique symbol = Symbol('not kept');

async function rollbackTo(executor: Executor, savepoint: string): Promise<void> {
  await executor.query(`ROLLBACK TO SAVEPOINT ${savepoint}`);
  await executor.query(`RELEASE SAVEPOINT ${savepoint}`);
}

async function backendPidOf(executor: Executor): Promise<number> {
  const known = executor.backendPid?.();
  if (known !== undefined) return known;
  const [row] = await executor.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
  return Number(row?.pid);
}

function busyError(plan: WaitPlan<never>, cause: unknown): OrmlockError {
  if (plan.nowait || plan.timeoutMs === undefined) {
    return new LockNotAvailableError(`${plan.what} is held by another transaction`, { cause });
  }
  if (plan.implicitTimeout) {
    return new LockTimeoutError(
      `${plan.what} was still busy when the surrounding transaction was about to time out (${plan.timeoutMs} ms left); ` +
        `pass a longer transaction timeout, or a lock timeout of its own`,
      plan.timeoutMs,
      { cause },
    );
  }
  return new LockTimeoutError(`${plan.what} was still busy after ${plan.timeoutMs} ms`, plan.timeoutMs, { cause });
}

/**
 * Maps a driver error to ormlock's class for its SQLSTATE (deadlock, serialization failure,
 * cancel, lock not available), keeping the original as `cause`; other errors pass through as they are.
 */
export function mapDriverError(error: unknown): unknown {
  if (error instanceof OrmlockError) return error;
  switch (sqlStateOf(error)) {
    case SqlState.deadlockDetected:
      return new DeadlockError('deadlock detected: PostgreSQL aborted this transaction to break a cycle of waits; retry it', { cause: error });
    case SqlState.serializationFailure:
      return new SerializationError('could not serialize access due to concurrent update; retry the transaction', { cause: error });
    case SqlState.queryCanceled:
      return new QueryCanceledError('the statement was cancelled (pg_cancel_backend or statement_timeout)', { cause: error });
    case SqlState.lockNotAvailable:
      return new LockNotAvailableError('a lock was not available', { cause: error });
    default:
      return error;
  }
}
