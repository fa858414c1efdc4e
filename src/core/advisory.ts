import { parseDuration } from './duration.js';
import { InvalidLockArgumentError, LockNotAvailableError, NotInTransactionError, type OrmlockError } from './errors.js';
import type { Executor } from './executor.js';
import { type AdvisoryKey, advisoryKeysOf, type LockKey } from './keys.js';
import { type PrioritizeOptions, type PrioritizePlan, planPrioritize } from './prioritize.js';
import { checkSignal, effectiveTimeout, mapDriverError, runLockStatement, withLockTimeout } from './wait.js';

/** One key, or several taken together in a fixed order. */
export type LockKeys = LockKey | readonly LockKey[];

/** Options of a transaction-scoped advisory lock. */
export interface AdvisoryLockOptions {
  /** `'exclusive'` (default) excludes everyone; `'shared'` admits other shared holders. */
  readonly mode?: 'exclusive' | 'shared';
  /** `false`: try once and do not wait. Default: wait (bounded by `timeout` if given). */
  readonly wait?: boolean;
  /** Bound on the wait: milliseconds or `'500ms'`, `'5s'`… `0` means do not wait. */
  readonly timeout?: number | string;
  /** Cancels the wait, on the server too. */
  readonly signal?: AbortSignal;
  /**
   * While waiting, cancel or terminate the sessions that hold the lock (from a second connection).
   * Not with `wait: false`. See {@link PrioritizeOptions}.
   *
   * @example
   * ```ts
   * await tx.$lock.advisory('nightly-migration', { timeout: '30s', prioritize: { action: 'terminate', every: '500ms' } });
   * ```
   */
  readonly prioritize?: PrioritizeOptions;
  /**
   * What a busy lock does: `'throw'` an error (default when waiting), or `'return'` `false`
   * (default with `wait: false`).
   */
  readonly onBusy?: 'throw' | 'return';
}

/** Options of the form that runs a function under the lock. */
export interface AdvisoryRunOptions<TxOptions = unknown> extends Omit<AdvisoryLockOptions, 'onBusy'> {
  /**
   * What a busy lock does: `'throw'` an error (default), `'skip'` the function and resolve
   * `undefined`, or `'return'` `{ acquired: false }`.
   */
  readonly onBusy?: 'throw' | 'skip' | 'return';
  /** Options for the transaction ormlock opens (isolation level, the ORM's timeouts). */
  readonly transaction?: TxOptions;
}

/** What `onBusy: 'return'` resolves to. */
export type LockResult<R> =
  | {
      /** The lock was taken and the function ran. */
      readonly acquired: true;
      /** What the function resolved. */
      readonly value: R;
    }
  | {
      /** The lock was busy: the function did not run. */
      readonly acquired: false;
      /** Always `undefined`: nothing ran. */
      readonly value?: undefined;
    };

/** Validated options. */
export interface AdvisoryPlan {
  readonly keys: AdvisoryKey[];
  readonly shared: boolean;
  readonly attempt: 'block' | 'try';
  readonly timeoutMs?: number;
  readonly signal?: AbortSignal;
  readonly prioritize?: PrioritizePlan;
  readonly onBusy: 'throw' | 'return' | 'skip';
  readonly what: string;
}

const OPTION_NAMES = new Set(['mode', 'wait', 'timeout', 'signal', 'onBusy', 'transaction', 'prioritize']);

/** Validates a key and options before any SQL is sent. */
export function planAdvisory(keys: unknown, options: unknown, form: 'lock' | 'run'): AdvisoryPlan {
  const parsedKeys = advisoryKeysOf(keys);
  const opts = (options ?? {}) as Record<string, unknown>;
  if (typeof opts !== 'object' || Array.isArray(opts)) throw new InvalidLockArgumentError('options', 'expected an object');
  for (const name of Object.keys(opts)) {
    if (!OPTION_NAMES.has(name)) throw new InvalidLockArgumentError(`options.${name}`, 'unknown option');
  }
  const { mode = 'exclusive', wait, timeout, signal, onBusy, prioritize } = opts;
  if (mode !== 'exclusive' && mode !== 'shared') throw new InvalidLockArgumentError('options.mode', `expected 'exclusive' or 'shared'`);
  if (wait !== undefined && typeof wait !== 'boolean') throw new InvalidLockArgumentError('options.wait', 'expected a boolean');
  if (wait === false && timeout !== undefined) {
    throw new InvalidLockArgumentError('options.timeout', 'cannot be combined with wait: false (which does not wait at all)');
  }
  if (signal !== undefined && !(signal instanceof AbortSignal)) throw new InvalidLockArgumentError('options.signal', 'expected an AbortSignal');
  const timeoutMs = timeout === undefined ? undefined : parseDuration(timeout, 'options.timeout');
  const attempt = wait === false || timeoutMs === 0 ? 'try' : 'block';
  const allowed = form === 'run' ? ['throw', 'skip', 'return'] : ['throw', 'return'];
  if (onBusy !== undefined && !allowed.includes(onBusy as string)) {
    throw new InvalidLockArgumentError('options.onBusy', `expected one of ${allowed.map((v) => `'${v}'`).join(', ')}`);
  }
  const defaultOnBusy = form === 'lock' && attempt === 'try' ? 'return' : 'throw';
  return {
    keys: parsedKeys,
    shared: mode === 'shared',
    attempt,
    timeoutMs: attempt === 'try' ? undefined : timeoutMs,
    signal: signal as AbortSignal | undefined,
    prioritize: prioritizePlanOf(prioritize, attempt),
    onBusy: (onBusy as AdvisoryPlan['onBusy'] | undefined) ?? defaultOnBusy,
    what: describeKeys(parsedKeys),
  };
}

function prioritizePlanOf(prioritize: unknown, attempt: 'block' | 'try'): PrioritizePlan | undefined {
  if (prioritize === undefined) return undefined;
  if (attempt === 'try') throw new InvalidLockArgumentError('options.prioritize', 'cannot be combined with a lock that does not wait (wait: false or timeout: 0)');
  return planPrioritize(prioritize);
}

function describeKeys(keys: AdvisoryKey[]): string {
  const names = keys.map((key) => (typeof key.source === 'string' ? JSON.stringify(key.source) : String(key.source)));
  const shown = names.length > 3 ? `${names.slice(0, 3).join(', ')} and ${names.length - 3} more` : names.join(', ');
  return `advisory lock${keys.length > 1 ? 's' : ''} ${shown}`;
}

/**
 * Calls `fn` once per key, in the plan's order: `pg_advisory_xact_lock($1::int8) AS k0, …`
 * (`calls`), and the same calls without their column names (`exprs`).
 */
function keyCalls(fn: string, keys: readonly AdvisoryKey[], firstParam: number): { calls: string[]; exprs: string[]; params: string[] } {
  const params: string[] = [];
  const exprs = keys.map((key) => {
    if (key.kind === 'int8') {
      params.push(key.value.toString());
      return `${fn}($${firstParam + params.length - 1}::int8)`;
    }
    params.push(String(key.namespace), String(key.id));
    return `${fn}($${firstParam + params.length - 2}::int4, $${firstParam + params.length - 1}::int4)`;
  });
  return { calls: exprs.map((expr, index) => `${expr} AS k${index}`), exprs, params };
}

function lockFunction(plan: AdvisoryPlan, scope: 'xact' | 'session'): string {
  return `pg_${plan.attempt === 'try' ? 'try_' : ''}advisory_${scope === 'xact' ? 'xact_' : ''}lock${plan.shared ? '_shared' : ''}`;
}

/** Where the lock is taken, and whether the caller's transaction must survive a failed wait. */
export interface AcquireContext {
  readonly scope: 'xact' | 'session';
  /**
   * The transaction was opened by ormlock for this lock alone and ends if the lock is busy, so
   * no savepoint is needed to keep it usable.
   */
  readonly ownTransaction?: boolean;
  /**
   * Session scope: told the `pg_backend_pid()` of the backend that took the lock, read in the
   * same statement, so a release on another backend (transaction pooling) can be recognised.
   */
  readonly onBackendPid?: (pid: number) => void;
}

/** The column of a session lock statement that reports which backend ran it. */
const PID_COLUMN = 'ormlock_pid';

/** The per-key results of a lock statement's row, reporting its backend pid column if there is one. */
function lockResults(row: Record<string, unknown> | undefined, onBackendPid: ((pid: number) => void) | undefined): unknown[] {
  const { [PID_COLUMN]: pid, ...results } = row ?? {};
  if (pid !== undefined && pid !== null) onBackendPid?.(Number(pid));
  return Object.values(results);
}

/**
 * Takes advisory locks on the executor's connection. Resolves `true`, or the error that says why
 * the lock was busy (timeout or not available); other failures are thrown.
 * Several keys are all-or-nothing: a try that gets only some gives those back at once.
 */
export async function tryAcquireAdvisory(executor: Executor, plan: AdvisoryPlan, context: AcquireContext): Promise<true | OrmlockError> {
  if (context.scope === 'xact' && !executor.inTransaction) {
    throw new NotInTransactionError(
      `${plan.what}: a transaction-scoped lock needs an open transaction (inside one it is held until commit or rollback). ` +
        `Call it on a transaction client, or pass a function to run under the lock: advisory(key, async (tx) => { … })`,
    );
  }
  checkSignal(executor, plan.signal, plan.what);
  return plan.attempt === 'try' ? tryAll(executor, plan, context) : waitAll(executor, plan, context);
}

/** {@link tryAcquireAdvisory} with the plan's `onBusy`: throws the busy error, or resolves `false`. */
export async function acquireAdvisory(executor: Executor, plan: AdvisoryPlan, context: AcquireContext): Promise<boolean> {
  const outcome = await tryAcquireAdvisory(executor, plan, context);
  if (outcome === true) return true;
  if (plan.onBusy === 'throw') throw outcome;
  return false;
}

async function tryAll(executor: Executor, plan: AdvisoryPlan, context: AcquireContext): Promise<true | OrmlockError> {
  const { calls, params } = keyCalls(lockFunction(plan, context.scope), plan.keys, 1);
  const text = `SELECT ${calls.join(', ')}${context.scope === 'session' ? `, pg_backend_pid() AS ${PID_COLUMN}` : ''}`;
  const busy = (): OrmlockError => new LockNotAvailableError(`${plan.what} is held by another session`);
  // Transaction-scoped locks cannot be given back one by one, but rolling back a savepoint
  // releases those taken inside it. Session locks ignore savepoints and are unlocked instead.
  const viaSavepoint = plan.keys.length > 1 && context.scope === 'xact' && !context.ownTransaction;
  if (!viaSavepoint) {
    const taken = lockResults((await queryMapped(executor, text, params))[0], context.onBackendPid);
    if (taken.every((value) => value === true)) return true;
    if (context.scope === 'session') await releaseTaken(executor, plan, taken);
    return busy();
  }
  const outcome = await runLockStatement<Record<string, unknown>>(executor, text, params, {
    savepoint: true,
    what: plan.what,
    // A try never waits: no prioritize look (an enclosing prioritize(fn) included).
    nowait: true,
    keep: (rows) => Object.values(rows[0] ?? {}).every((value) => value === true),
  });
  return outcome.acquired ? true : busy();
}

async function releaseTaken(executor: Executor, plan: AdvisoryPlan, taken: unknown[]): Promise<void> {
  const keys = plan.keys.filter((_, index) => taken[index] === true);
  if (keys.length > 0) await releaseSessionLocks(executor, { keys, shared: plan.shared });
}

async function waitAll(executor: Executor, plan: AdvisoryPlan, context: AcquireContext): Promise<true | OrmlockError> {
  const bound = effectiveTimeout(executor, plan.timeoutMs);
  const bounded = bound.timeoutMs !== undefined;
  const { calls, exprs, params } = keyCalls(lockFunction(plan, context.scope), plan.keys, bounded ? 2 : 1);
  const inner = `SELECT ${calls.join(', ')} OFFSET 0`;
  const pidColumn = context.scope === 'session' ? `, pg_backend_pid() AS ${PID_COLUMN}` : '';
  const columns = `true AS acquired${pidColumn}`;
  // The lock functions return void, which not every driver can read (Prisma cannot): the row says
  // `acquired` instead. One key without a bound needs no sub-select for it (the common case).
  let text: string;
  if (bounded) text = `SELECT ${columns} FROM (${withLockTimeout(inner, '$1')}) AS ormlock_w`;
  else if (exprs.length === 1) text = `SELECT ${exprs[0]!} IS NOT NULL AS acquired${pidColumn}`;
  else text = `SELECT ${columns} FROM (${inner}) AS ormlock_l`;
  const outcome = await runLockStatement(executor, text, bounded ? [String(bound.timeoutMs), ...params] : params, {
    timeoutMs: bound.timeoutMs,
    implicitTimeout: bound.implicit,
    signal: plan.signal,
    prioritize: plan.prioritize,
    // A caller's own bound or signal must leave its transaction usable. Not needed when ormlock
    // opened the transaction for this lock, nor for a bound that only beats the driver's own
    // deadline (the driver is about to end that transaction anyway).
    savepoint:
      executor.inTransaction && !context.ownTransaction && ((bounded && !bound.implicit) || plan.signal !== undefined),
    what: plan.what,
  });
  if (outcome.acquired) lockResults(outcome.rows[0], context.onBackendPid);
  return outcome.acquired ? true : outcome.error;
}

/**
 * Releases session-scoped advisory locks and reports, per key, whether PostgreSQL really held it:
 * `false` means it was taken on another connection or released already. `onBackendPid` is told
 * which backend ran the release (read in the same statement).
 */
export async function releaseSessionLocks(
  executor: Executor,
  plan: Pick<AdvisoryPlan, 'keys' | 'shared'>,
  onBackendPid?: (pid: number) => void,
): Promise<boolean[]> {
  const { calls, params } = keyCalls(`pg_advisory_unlock${plan.shared ? '_shared' : ''}`, plan.keys, 1);
  const rows = await queryMapped(executor, `SELECT ${calls.join(', ')}, pg_backend_pid() AS ${PID_COLUMN}`, params);
  return lockResults(rows[0], onBackendPid).map((value) => value === true);
}

async function queryMapped(executor: Executor, text: string, params: readonly unknown[]): Promise<Record<string, unknown>[]> {
  try {
    return await executor.query(text, params);
  } catch (error) {
    throw mapDriverError(error);
  }
}
