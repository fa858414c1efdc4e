import { type Duration, describe, parseDuration } from './duration.js';
import { InvalidLockArgumentError, NotInTransactionError } from './errors.js';
import type { Executor } from './executor.js';
import { type PrioritizeOptions, type PrioritizePlan, planPrioritize } from './prioritize.js';
import { type TableRef, checkOptionNames, describeTable, qualifiedTable } from './row-lock.js';
import { nextSavepointName } from './sql.js';
import { checkSignal, effectiveTimeout, mapDriverError, runLockStatement } from './wait.js';

/**
 * The eight table lock modes of PostgreSQL, weakest first (see "Table-Level Locks" in the
 * PostgreSQL manual for which conflicts with which):
 * `'accessShare'` (what SELECT takes) · `'rowShare'` (SELECT FOR UPDATE) · `'rowExclusive'`
 * (INSERT, UPDATE, DELETE) · `'shareUpdateExclusive'` (VACUUM, CREATE INDEX CONCURRENTLY) ·
 * `'share'` (CREATE INDEX) · `'shareRowExclusive'` · `'exclusive'` (blocks everything but reads) ·
 * `'accessExclusive'` (ALTER TABLE, DROP; blocks reads too).
 */
export type TableLockMode =
  | 'accessShare'
  | 'rowShare'
  | 'rowExclusive'
  | 'shareUpdateExclusive'
  | 'share'
  | 'shareRowExclusive'
  | 'exclusive'
  | 'accessExclusive';

/** The SQL of each mode, in PostgreSQL's order. */
export const TABLE_LOCK_MODES: Readonly<Record<TableLockMode, string>> = {
  accessShare: 'ACCESS SHARE',
  rowShare: 'ROW SHARE',
  rowExclusive: 'ROW EXCLUSIVE',
  shareUpdateExclusive: 'SHARE UPDATE EXCLUSIVE',
  share: 'SHARE',
  shareRowExclusive: 'SHARE ROW EXCLUSIVE',
  exclusive: 'EXCLUSIVE',
  accessExclusive: 'ACCESS EXCLUSIVE',
};

/**
 * Options of a table lock. `mode` defaults to `'accessExclusive'` (as django-pglock's
 * `pglock.model`). `nowait: true` fails at once if the lock is busy; otherwise the wait is bounded
 * by `timeout` and can be cancelled with `signal`.
 */
export type TableLockOptions = {
  /** One of PostgreSQL's eight table lock modes; default `'accessExclusive'`. */
  readonly mode?: TableLockMode;
} & (
  | {
      /** Wait for the table (the default). */
      readonly nowait?: false;
      /** Bound the wait: ms or `'500ms'`, `'5s'`…; `LockTimeoutError` when it runs out (`lock_timeout` on the server). */
      readonly timeout?: Duration;
      /** Cancels the wait, on the server too: `LockAbortedError`. */
      readonly signal?: AbortSignal;
      /** While this lock waits, cancel or terminate the sessions that block it (see `docs/operations.md`). */
      readonly prioritize?: PrioritizeOptions;
    }
  | {
      /** Fail at once with `LockNotAvailableError` if the table is busy (`NOWAIT`). */
      readonly nowait: true;
      /** Not with `nowait`: nothing waits. */
      readonly timeout?: never;
      /** Not with `nowait`: nothing waits. */
      readonly signal?: never;
      /** Not with `nowait`: nothing waits. */
      readonly prioritize?: never;
    }
);

/** Validated table-lock options. */
export interface TableLockPlan {
  readonly tables: TableRef[];
  readonly mode: TableLockMode;
  readonly nowait: boolean;
  readonly timeoutMs?: number;
  readonly signal?: AbortSignal;
  readonly prioritize?: PrioritizePlan;
  readonly what: string;
}

const OPTION_NAMES = ['mode', 'nowait', 'timeout', 'signal', 'prioritize'];

/**
 * Validates tables and options before any SQL is sent. Tables are deduplicated and sorted by
 * (schema, name), so two callers locking the same set of tables take them in the same order and
 * cannot deadlock on each other.
 */
export function planTableLock(tables: readonly TableRef[], options: unknown): TableLockPlan {
  const opts = checkOptionNames(options, OPTION_NAMES);
  const { mode = 'accessExclusive', nowait, timeout, signal, prioritize } = opts;
  if (typeof mode !== 'string' || !Object.hasOwn(TABLE_LOCK_MODES, mode)) {
    throw new InvalidLockArgumentError('options.mode', `expected one of ${Object.keys(TABLE_LOCK_MODES).map((m) => `'${m}'`).join(', ')}, got ${describe(mode)}`);
  }
  if (nowait !== undefined && typeof nowait !== 'boolean') throw new InvalidLockArgumentError('options.nowait', `expected a boolean, got ${describe(nowait)}`);
  if (nowait === true && timeout !== undefined) throw new InvalidLockArgumentError('options.timeout', 'cannot be combined with nowait, which never waits');
  if (nowait === true && signal !== undefined) throw new InvalidLockArgumentError('options.signal', 'cannot be combined with nowait, which never waits');
  if (nowait === true && prioritize !== undefined) {
    throw new InvalidLockArgumentError('options.prioritize', 'cannot be combined with nowait, which never waits');
  }
  if (signal !== undefined && !(signal instanceof AbortSignal)) throw new InvalidLockArgumentError('options.signal', 'expected an AbortSignal');
  const timeoutMs = timeout === undefined ? undefined : parseDuration(timeout, 'options.timeout');
  if (tables.length === 0) throw new InvalidLockArgumentError('models', 'expected at least one table to lock');
  const byKey = new Map<string, TableRef>();
  for (const table of tables) {
    qualifiedTable(table);
    byKey.set(JSON.stringify([table.schema ?? '', table.name]), { schema: table.schema ?? null, name: table.name });
  }
  const sorted = [...byKey.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, table]) => table);
  const names = sorted.map(describeTable);
  return {
    tables: sorted,
    mode: mode as TableLockMode,
    nowait: nowait === true,
    timeoutMs,
    signal: signal as AbortSignal | undefined,
    prioritize: prioritize === undefined ? undefined : planPrioritize(prioritize),
    what: `${TABLE_LOCK_MODES[mode as TableLockMode]} lock on ${names.length > 3 ? `${names.slice(0, 3).join(', ')} and ${names.length - 3} more` : names.join(', ')}`,
  };
}

/** `LOCK TABLE a, b IN <mode> MODE [NOWAIT]`. */
export function buildTableLock(plan: TableLockPlan): string {
  return `LOCK TABLE ${plan.tables.map(qualifiedTable).join(', ')} IN ${TABLE_LOCK_MODES[plan.mode]} MODE${plan.nowait ? ' NOWAIT' : ''}`;
}

/**
 * Runs `LOCK TABLE` in the executor's transaction; the lock is held until it ends. A busy lock
 * fails with `LockNotAvailableError` (`nowait`) or `LockTimeoutError` and leaves the caller's
 * transaction usable.
 */
export async function lockTables(executor: Executor, plan: TableLockPlan): Promise<void> {
  if (!executor.inTransaction) {
    throw new NotInTransactionError(
      `${plan.what}: LOCK TABLE needs an open transaction (PostgreSQL refuses it outside one, and it is held until commit or rollback). Call it on a transaction`,
    );
  }
  checkSignal(executor, plan.signal, plan.what);
  const text = buildTableLock(plan);
  const bound = plan.nowait ? { timeoutMs: undefined, implicit: false } : effectiveTimeout(executor, plan.timeoutMs);
  if (bound.timeoutMs === undefined) {
    const outcome = await runLockStatement(executor, text, [], {
      nowait: plan.nowait,
      signal: plan.signal,
      prioritize: plan.prioritize,
      savepoint: plan.nowait || plan.signal !== undefined,
      what: plan.what,
    });
    if (!outcome.acquired) throw outcome.error;
    return;
  }
  // LOCK TABLE is not a SELECT, so lock_timeout cannot ride in the same statement as it does for
  // row and advisory locks: it is set inside a savepoint and put back once the lock is held (a
  // failed wait rolls the savepoint back, which restores the setting too).
  const bounded = async (inner: Executor): Promise<void> => {
    const [previous] = await query<{ prev: string }>(
      inner,
      `SELECT current_setting('lock_timeout') AS prev, set_config('lock_timeout', $1, true) AS applied`,
      [String(bound.timeoutMs)],
    );
    const outcome = await runLockStatement(inner, text, [], {
      timeoutMs: bound.timeoutMs,
      implicitTimeout: bound.implicit,
      signal: plan.signal,
      prioritize: plan.prioritize,
      savepoint: false,
      what: plan.what,
    });
    if (!outcome.acquired) throw outcome.error;
    await query(inner, `SELECT set_config('lock_timeout', $1, true) AS restored`, [previous?.prev ?? '0']);
  };
  // Bounded only by the driver's own deadline (Prisma's interactive-transaction timeout): a wait
  // that runs into it ends the transaction anyway, so it needs no savepoint to keep it usable
  // (as for row and advisory locks). Three statements instead of five.
  if (bound.implicit && plan.signal === undefined) {
    await bounded(executor);
    return;
  }
  if (executor.savepoint) {
    await executor.savepoint(bounded);
    return;
  }
  const savepoint = nextSavepointName();
  await query(executor, `SAVEPOINT ${savepoint}`);
  try {
    await bounded(executor);
  } catch (error) {
    await query(executor, `ROLLBACK TO SAVEPOINT ${savepoint}`);
    await query(executor, `RELEASE SAVEPOINT ${savepoint}`);
    throw error;
  }
  await query(executor, `RELEASE SAVEPOINT ${savepoint}`);
}

async function query<T extends Record<string, unknown>>(executor: Executor, text: string, params: unknown[] = []): Promise<T[]> {
  try {
    return await executor.query<T>(text, params);
  } catch (error) {
    throw mapDriverError(error);
  }
}
