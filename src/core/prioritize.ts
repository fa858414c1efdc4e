import { AsyncLocalStorage } from 'node:async_hooks';
import { randomBytes } from 'node:crypto';
import { type Duration, describe, parseDuration } from './duration.js';
import { InvalidLockArgumentError, PrioritizeFailedError, PrioritizePermissionError } from './errors.js';
import type { Executor, Row, SideChannel } from './executor.js';
import type { LockBinding } from './run-under-lock.js';
import { sqlStateOf } from './sqlstate.js';

/** A backend that blocks a prioritized wait, as `pg_stat_activity` shows it. */
export interface BlockerInfo {
  /** Its process id (`pg_stat_activity.pid`). */
  readonly pid: number;
  /** Its `application_name` (`''` when unset). */
  readonly applicationName: string;
  /** The role it is connected as (`usename`). */
  readonly user: string | null;
  /** The database it is connected to. */
  readonly database: string | null;
  /** `'active'`, `'idle in transaction'`, … */
  readonly state: string | null;
  /** Its current or last statement, truncated to 1,000 characters. */
  readonly query: string | null;
  /** When its transaction started (the database's clock); `null` outside a transaction. */
  readonly transactionStart: Date | null;
  /** How long its transaction has been open, in ms (the database's clock); `null` outside one. */
  readonly transactionAgeMs: number | null;
}

/** Narrows which blockers `prioritize` may cancel or terminate. Every given condition must hold. */
export interface PrioritizeFilter {
  /** Only backends with this `application_name` (or one of these). */
  readonly applicationName?: string | readonly string[];
  /** Only backends connected as this role (or one of these). */
  readonly user?: string | readonly string[];
  /** Only backends whose transaction has been open at least this long. */
  readonly minTransactionAge?: Duration;
  /**
   * Decides per blocker, in this process. The candidates are read first; the chosen ones are then
   * signalled by a second statement that re-checks that each one still blocks the wait.
   */
  readonly predicate?: (blocker: BlockerInfo) => boolean;
}

/**
 * Wins a lock that others hold: while the wait lasts, a second connection looks up the backends
 * that block it (`pg_blocking_pids`) and cancels their statement or terminates their session.
 *
 * Only ever signals backends that block this very wait, of the same database, never the waiter
 * itself nor the connection doing the signalling.
 *
 * - `action: 'cancel'` (`pg_cancel_backend`) ends a blocker's running statement. It does nothing
 *   to a session that is idle in a transaction, and a cancelled statement inside an explicit
 *   transaction leaves it aborted but still holding its locks until the client rolls back.
 * - `action: 'terminate'` (`pg_terminate_backend`) closes the blocker's session, which rolls its
 *   transaction back and releases everything it held. Its client sees a broken connection.
 */
export interface PrioritizeOptions {
  /** `'cancel'`: `pg_cancel_backend`, ends the blocker's statement; `'terminate'`: `pg_terminate_backend`, closes its session. */
  readonly action: 'cancel' | 'terminate';
  /** How often to look for blockers while the wait lasts. Default `'1s'`; at least 10 ms. */
  readonly every?: Duration;
  /** When to look first, counted from the start of the wait. Default: `every`. */
  readonly after?: Duration;
  /** Which blockers may be signalled (default: every one in the way of the wait). */
  readonly filter?: PrioritizeFilter;
  /** Told which backends were just signalled (the signal was sent; a session may already have ended). */
  readonly onSignal?: (blockers: readonly BlockerInfo[], action: 'cancel' | 'terminate') => void;
}

/** Validated {@link PrioritizeOptions}. */
export interface PrioritizePlan {
  readonly action: 'cancel' | 'terminate';
  readonly everyMs: number;
  readonly afterMs: number;
  readonly applicationNames?: readonly string[];
  readonly users?: readonly string[];
  readonly minTransactionAgeMs?: number;
  readonly predicate?: (blocker: BlockerInfo) => boolean;
  readonly onSignal?: (blockers: readonly BlockerInfo[], action: 'cancel' | 'terminate') => void;
}

const MIN_EVERY_MS = 10;
const DEFAULT_EVERY_MS = 1_000;
const OPTION_NAMES = new Set(['action', 'every', 'after', 'filter', 'onSignal']);
const FILTER_NAMES = new Set(['applicationName', 'user', 'minTransactionAge', 'predicate']);
const INSUFFICIENT_PRIVILEGE = '42501';
/** How long a finished wait waits for a look in flight before returning anyway. */
const STOP_GRACE_MS = 250;
/** Failed looks in a row (other than for privilege) after which prioritize gives the wait up. */
const MAX_CONSECUTIVE_ERRORS = 3;
/** How every wait mark starts (checked in SQL, so a full statement text never counts as a mark). */
const WAIT_MARK_HEAD = '/* ormlock prioritize ';
const MARK_HEAD_LENGTH = WAIT_MARK_HEAD.length;
const WAIT_MARK_PREFIX = `${WAIT_MARK_HEAD}${randomBytes(6).toString('hex')}:`;

/** Validates `prioritize` options before any SQL is sent. */
export function planPrioritize(value: unknown, argument = 'options.prioritize'): PrioritizePlan {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new InvalidLockArgumentError(argument, `expected { action: 'cancel' | 'terminate', every?, after?, filter? }, got ${describe(value)}`);
  }
  const opts = value as Record<string, unknown>;
  for (const name of Object.keys(opts)) {
    if (!OPTION_NAMES.has(name)) throw new InvalidLockArgumentError(`${argument}.${name}`, 'unknown option');
  }
  const { action, every, after, filter, onSignal } = opts;
  if (action !== 'cancel' && action !== 'terminate') {
    throw new InvalidLockArgumentError(`${argument}.action`, `expected 'cancel' or 'terminate', got ${describe(action)}`);
  }
  const everyMs = every === undefined ? DEFAULT_EVERY_MS : parseDuration(every, `${argument}.every`);
  if (everyMs < MIN_EVERY_MS) throw new InvalidLockArgumentError(`${argument}.every`, `at least ${MIN_EVERY_MS} ms, got ${describe(every)}`);
  const afterMs = after === undefined ? everyMs : parseDuration(after, `${argument}.after`);
  if (onSignal !== undefined && typeof onSignal !== 'function') throw new InvalidLockArgumentError(`${argument}.onSignal`, 'expected a function');
  const plan: PrioritizePlan = { action, everyMs, afterMs, onSignal: onSignal as PrioritizePlan['onSignal'] };
  if (filter === undefined) return plan;
  if (typeof filter !== 'object' || filter === null || Array.isArray(filter)) {
    throw new InvalidLockArgumentError(`${argument}.filter`, `expected an object, got ${describe(filter)}`);
  }
  const f = filter as Record<string, unknown>;
  for (const name of Object.keys(f)) {
    if (!FILTER_NAMES.has(name)) throw new InvalidLockArgumentError(`${argument}.filter.${name}`, 'unknown option');
  }
  if (f['predicate'] !== undefined && typeof f['predicate'] !== 'function') {
    throw new InvalidLockArgumentError(`${argument}.filter.predicate`, 'expected a function');
  }
  return {
    ...plan,
    applicationNames: stringList(f['applicationName'], `${argument}.filter.applicationName`),
    users: stringList(f['user'], `${argument}.filter.user`),
    minTransactionAgeMs: f['minTransactionAge'] === undefined ? undefined : parseDuration(f['minTransactionAge'], `${argument}.filter.minTransactionAge`),
    predicate: f['predicate'] as PrioritizePlan['predicate'],
  };
}

function stringList(value: unknown, argument: string): readonly string[] | undefined {
  if (value === undefined) return undefined;
  const list = typeof value === 'string' ? [value] : value;
  if (!Array.isArray(list) || list.length === 0 || !list.every((item) => typeof item === 'string')) {
    throw new InvalidLockArgumentError(argument, `expected a string or a non-empty array of strings, got ${describe(value)}`);
  }
  return list as string[];
}

/** A prioritize plan in force for the waits of an async scope, with the connection to signal from. */
interface PrioritizeScope {
  readonly plan: PrioritizePlan;
  readonly sideChannel?: SideChannel;
}

// The binding-level form (`$lock.prioritize(fn, opts)`) reaches every wait inside `fn` through
// the async context, so row, table and advisory waits need no extra parameter on any layer.
const scopes = new AsyncLocalStorage<PrioritizeScope>();

/** Runs `fn` with `plan` applied to every lock wait that starts inside it (unless a wait passes its own). */
export function runPrioritized<R>(plan: PrioritizePlan, sideChannel: SideChannel | undefined, fn: () => R): R {
  return scopes.run({ plan, sideChannel }, fn);
}

/** The prioritize plan of the enclosing `prioritize(fn)`, if any (lease waits read it). */
export function scopedPrioritizePlan(): PrioritizePlan | undefined {
  return scopes.getStore()?.plan;
}

/**
 * The prioritize plan of a wait and the connection to signal from: the wait's own, else the one
 * of an enclosing `prioritize(fn)`. Throws if there is no second connection to signal from.
 */
export function resolvePrioritize(executor: Executor, own: PrioritizePlan | undefined, what: string): { plan: PrioritizePlan; sideChannel: SideChannel } | undefined {
  const scope = own === undefined ? scopes.getStore() : undefined;
  const plan = own ?? scope?.plan;
  if (plan === undefined) return undefined;
  const sideChannel = executor.sideChannel ?? scope?.sideChannel;
  if (sideChannel === undefined) {
    throw new InvalidLockArgumentError(
      'options.prioritize',
      `${what}: this connection has no second connection to signal blockers from; pass a pool or client that can open one (Drizzle: $lock(tx, { db }))`,
    );
  }
  return { plan, sideChannel };
}

/**
 * Whether backend `alias` runs statement `$2`: its `query` (which `pg_stat_activity` may have
 * truncated) is the start of `$2`, or `$2` is a wait mark ({@link newWaitMark}) its query starts with.
 */
const runsStatement = (alias: string) =>
  `(left($2::text, length(${alias}.query)) = ${alias}.query OR (left($2::text, ${MARK_HEAD_LENGTH}) = '${WAIT_MARK_HEAD}' AND left(${alias}.query, length($2::text)) = $2::text))`;

/**
 * Blockers of the waiting backend `$1` (any backend when null: then `$2` is a wait mark) while it still runs statement `$2` and waits on a lock, in
 * its database, excluding itself and the signalling connection. pg_blocking_pids is evaluated at
 * call time, so a wait that has just been granted has no blockers and nobody is signalled.
 * Filters travel as one JSON parameter (`$3`), so every driver binds them the same way.
 */
function blockersSql(signal: 'pg_cancel_backend' | 'pg_terminate_backend' | null): string {
  return (
    `SELECT b.pid, b.application_name AS "applicationName", b.usename AS "user", b.datname AS "database", b.state, ` +
    `left(b.query, 1000) AS query, b.xact_start AS "transactionStart", ` +
    `(extract(epoch FROM clock_timestamp() - b.xact_start) * 1000)::float8 AS "transactionAgeMs", ` +
    `${signal === null ? 'NULL::boolean' : `${signal}(b.pid)`} AS signalled ` +
    `FROM pg_stat_activity w ` +
    `CROSS JOIN LATERAL unnest(pg_blocking_pids(w.pid)) AS bp(pid) ` +
    `JOIN pg_stat_activity b ON b.pid = bp.pid ` +
    `CROSS JOIN (SELECT $3::jsonb AS f) AS ormlock_f ` +
    `WHERE ($1::int IS NULL OR w.pid = $1::int) AND w.state = 'active' AND w.wait_event_type = 'Lock' ` +
    `AND length(w.query) > 0 AND ${runsStatement('w')} ` +
    `AND b.datid = w.datid AND b.pid <> w.pid AND b.pid <> pg_backend_pid() ` +
    `AND (f->'apps' IS NULL OR b.application_name IN (SELECT jsonb_array_elements_text(f->'apps'))) ` +
    `AND (f->'users' IS NULL OR b.usename::text IN (SELECT jsonb_array_elements_text(f->'users'))) ` +
    `AND (f->'minAgeMs' IS NULL OR b.xact_start <= clock_timestamp() - make_interval(secs => (f->>'minAgeMs')::float8 / 1000)) ` +
    `AND (f->'pids' IS NULL OR b.pid IN (SELECT jsonb_array_elements_text(f->'pids')::int)) ` +
    `ORDER BY b.pid`
  );
}

// Ends our own wait when prioritize cannot do its job, guarded like an abort's cancel: only while
// the backend still waits on a lock in our exact statement.
const CANCEL_OWN_WAIT_SQL =
  `SELECT pg_cancel_backend(a.pid) AS cancelled FROM pg_stat_activity a ` +
  `WHERE ($1::int IS NULL OR a.pid = $1::int) AND a.state = 'active' AND a.wait_event_type = 'Lock' ` +
  `AND length(a.query) > 0 AND ${runsStatement('a')}`;

interface BlockerRow extends Row {
  pid: number;
  applicationName: string;
  user: string | null;
  database: string | null;
  state: string | null;
  query: string | null;
  transactionStart: Date | string | null;
  transactionAgeMs: number | string | null;
  signalled: boolean | null;
}

let waitCounter = 0;

/**
 * A comment unique to one wait, to put before each of its statements: `/* ormlock prioritize
 * <process random>:<counter> *\/ `. Passed as the `text` of {@link startPrioritizer} without a
 * pid, it matches whichever backend runs a statement that starts with it (a lease wait's
 * statements run on any pooled connection).
 */
export function newWaitMark(): string {
  waitCounter = (waitCounter + 1) % Number.MAX_SAFE_INTEGER;
  return `${WAIT_MARK_PREFIX}${waitCounter} */ `;
}

/**
 * Prefixes a lock statement with a comment unique to this wait (first, so that `pg_stat_activity`'s
 * truncation of long statements keeps it). The looks match the waiter by this exact text: a look
 * that arrives after the wait ended can never match what the connection runs next.
 */
export function markWait(text: string): string {
  return `${newWaitMark()}${text}`;
}

/** A running prioritizer; see {@link startPrioritizer}. */
export interface Prioritizer {
  /**
   * Stops looking, and resolves when a look in flight has finished (so its `onSignal` has been
   * called), or after a short grace: a side channel short of connections must not hold the
   * waiting call up. A look that still runs later signals nobody unless backend `waiterPid` is
   * still waiting in `text`, which {@link markWait} makes unique to this wait.
   */
  stop(): Promise<void>;
  /** Why it gave up and cancelled the wait, if it did. */
  readonly failure: Error | undefined;
}

/**
 * Starts signalling the blockers of backend `waiterPid` while it runs `text` (without a pid: of any
 * backend running a statement that starts with the wait mark `text`). On a failure (no
 * privilege, a broken side connection) it stops, cancels the wait, and reports the failure.
 */
export function startPrioritizer(sideChannel: SideChannel, waiterPid: number | undefined, text: string, plan: PrioritizePlan): Prioritizer {
  const filter: Record<string, unknown> = {};
  if (plan.applicationNames) filter['apps'] = plan.applicationNames;
  if (plan.users) filter['users'] = plan.users;
  if (plan.minTransactionAgeMs !== undefined) filter['minAgeMs'] = plan.minTransactionAgeMs;
  const signal = plan.action === 'cancel' ? 'pg_cancel_backend' : 'pg_terminate_backend';

  let stopped = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let failure: Error | undefined;
  let inFlight: Promise<void> = Promise.resolve();

  const look = async (): Promise<void> => {
    let rows: BlockerRow[];
    if (plan.predicate === undefined) {
      rows = await sideChannel.query<BlockerRow>(blockersSql(signal), [waiterPid ?? null, text, JSON.stringify(filter)]);
    } else {
      const candidates = (await sideChannel.query<BlockerRow>(blockersSql(null), [waiterPid ?? null, text, JSON.stringify(filter)])).map(toBlocker);
      const chosen = candidates.filter((blocker) => plan.predicate?.(blocker) === true).map((blocker) => blocker.pid);
      if (chosen.length === 0 || stopped) return;
      rows = await sideChannel.query<BlockerRow>(blockersSql(signal), [waiterPid ?? null, text, JSON.stringify({ ...filter, pids: chosen })]);
    }
    const signalled = rows.filter((row) => row.signalled === true).map(toBlocker);
    if (signalled.length > 0) plan.onSignal?.(signalled, plan.action);
  };

  let consecutiveErrors = 0;
  const giveUp = async (error: unknown): Promise<void> => {
    stopped = true;
    failure =
      sqlStateOf(error) === INSUFFICIENT_PRIVILEGE
        ? new PrioritizePermissionError(
            `prioritize (${plan.action}): permission denied to signal a backend that blocks the wait; ` +
              `connect as a superuser, as the blockers' role, or as a member of pg_signal_backend`,
            { cause: error },
          )
        : new PrioritizeFailedError(`prioritize (${plan.action}): could not look for blockers ${MAX_CONSECUTIVE_ERRORS} times in a row; the wait was given up`, {
            cause: error,
          });
    await sideChannel.query(CANCEL_OWN_WAIT_SQL, [waiterPid ?? null, text]).catch(() => {
      // The wait then ends by its own bound or when the lock is granted.
    });
  };
  const tick = (): void => {
    if (stopped) return;
    inFlight = look().then(
      () => {
        consecutiveErrors = 0;
        if (!stopped) timer = setTimeout(tick, plan.everyMs);
      },
      async (error: unknown) => {
        if (stopped) return;
        consecutiveErrors += 1;
        // No privilege will not come back by itself; a side connection that failed (pool full,
        // a network blip) may, so it gets a few more tries.
        if (sqlStateOf(error) === INSUFFICIENT_PRIVILEGE || consecutiveErrors >= MAX_CONSECUTIVE_ERRORS) {
          await giveUp(error);
        } else {
          timer = setTimeout(tick, plan.everyMs);
        }
      },
    );
  };

  timer = setTimeout(tick, plan.afterMs);

  return {
    async stop() {
      stopped = true;
      clearTimeout(timer);
      let grace: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([inFlight, new Promise<void>((resolve) => (grace = setTimeout(resolve, STOP_GRACE_MS)))]);
      clearTimeout(grace);
    },
    get failure() {
      return failure;
    },
  };
}

function toBlocker(row: BlockerRow): BlockerInfo {
  return {
    pid: Number(row.pid),
    applicationName: row.applicationName ?? '',
    user: row.user ?? null,
    database: row.database ?? null,
    state: row.state ?? null,
    query: row.query ?? null,
    transactionStart: row.transactionStart === null || row.transactionStart === undefined ? null : new Date(row.transactionStart),
    transactionAgeMs: row.transactionAgeMs === null || row.transactionAgeMs === undefined ? null : Number(row.transactionAgeMs),
  };
}

/** Options of `$lock.prioritize(fn, options)`: {@link PrioritizeOptions}, plus the transaction's. */
export interface PrioritizeRunOptions<TxOptions = unknown> extends PrioritizeOptions {
  /** Options for the transaction ormlock opens when none is open (isolation, the ORM's timeouts). */
  readonly transaction?: TxOptions;
}

/**
 * `$lock.prioritize(fn, options)`: runs `fn(tx)` in a transaction (the open one, or a new one it
 * commits) with `options` applied to every lock wait inside it: advisory, row, table and lease
 * waits all cancel or terminate their blockers while they wait. A wait's own `prioritize` option wins.
 *
 * @example
 * ```ts
 * // A migration step: ACCESS EXCLUSIVE within seconds, however long the transactions in its way.
 * await prisma.$lock.prioritize(
 *   async (tx) => {
 *     await tx.$lock.model('Account', { timeout: '5s' });
 *     await tx.$executeRawUnsafe('ALTER TABLE accounts ADD COLUMN note text');
 *   },
 *   { action: 'terminate', every: '500ms', filter: { applicationName: 'reporting' }, transaction: { timeout: 30_000 } },
 * );
 * ```
 */
export interface PrioritizeMethod<Tx, TxOptions> {
  <R, T extends Tx = Tx>(fn: (tx: T) => R | Promise<R>, options: PrioritizeRunOptions<TxOptions>): Promise<R>;
}

/** Builds `prioritize()` over a binding resolved at each call. */
export function prioritizeMethod<Tx, TxOptions>(bindingOf: () => LockBinding<Tx, TxOptions>): PrioritizeMethod<Tx, TxOptions> {
  return (async (fn: unknown, options: unknown) => {
    if (typeof fn !== 'function') throw new InvalidLockArgumentError('fn', 'expected a function to run with prioritized waits');
    const { transaction, ...rest } = (options ?? {}) as { transaction?: TxOptions } & Record<string, unknown>;
    const plan = planPrioritize(options === undefined ? undefined : rest, 'options');
    const run = fn as (tx: Tx) => unknown;
    const binding = bindingOf();
    if (binding.kind === 'transaction') {
      if (transaction !== undefined) throw new InvalidLockArgumentError('options.transaction', 'cannot be used inside a transaction that is already open');
      return runPrioritized(plan, binding.executor.sideChannel, () => run(binding.tx));
    }
    const sideChannel = binding.executor.sideChannel;
    return binding.opener.transaction((executor, tx) => runPrioritized(plan, executor.sideChannel ?? sideChannel, async () => run(tx)), transaction);
  }) as PrioritizeMethod<Tx, TxOptions>;
}
