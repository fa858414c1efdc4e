/**
 * Finds what a test left behind in its database: advisory locks still held (or awaited) and
 * sessions sitting in an open transaction. `useTestDatabase` runs this after every test.
 */
import type pg from 'pg';

/** An advisory lock row of `pg_locks` in the checked database. */
export interface LeakedAdvisoryLock {
  pid: number;
  /** `classid:objid:objsubid`; objsubid 1 = one bigint key (high:low int32), 2 = two int32 keys. */
  key: string;
  mode: string;
  granted: boolean;
  query: string | null;
}

/** A session of the checked database that is idle inside a transaction. */
export interface LeakedTransaction {
  pid: number;
  state: string;
  query: string | null;
  applicationName: string;
}

/** What {@link findLeaks} saw. Empty arrays mean clean. */
export interface LeakReport {
  advisoryLocks: LeakedAdvisoryLock[];
  openTransactions: LeakedTransaction[];
}

/**
 * Looks once at the database `checker` is connected to and lists advisory locks (held or
 * awaited) and `idle in transaction` / `idle in transaction (aborted)` sessions, ignoring the
 * checker's own session. Does not wait; see {@link waitForNoLeaks}.
 *
 * @example
 * const report = await findLeaks(checkerClient);
 * expect(describeLeaks(report)).toEqual([]);
 */
export async function findLeaks(checker: pg.ClientBase): Promise<LeakReport> {
  const locks = await checker.query<LeakedAdvisoryLock>(
    `SELECT l.pid, concat_ws(':', l.classid, l.objid, l.objsubid) AS key, l.mode, l.granted, a.query
       FROM pg_locks l
       LEFT JOIN pg_stat_activity a ON a.pid = l.pid
      WHERE l.locktype = 'advisory'
        AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
        AND l.pid IS DISTINCT FROM pg_backend_pid()
      ORDER BY l.pid, key`,
  );
  const transactions = await checker.query<LeakedTransaction>(
    `SELECT pid, state, query, application_name AS "applicationName"
       FROM pg_stat_activity
      WHERE datname = current_database()
        AND pid <> pg_backend_pid()
        AND state IN ('idle in transaction', 'idle in transaction (aborted)')
      ORDER BY pid`,
  );
  return { advisoryLocks: locks.rows, openTransactions: transactions.rows };
}

/** Options of {@link waitForNoLeaks}. */
export interface WaitForNoLeaksOptions {
  /** How long leaks may take to clear before they count, in ms. Default 1000. */
  graceMs?: number | undefined;
  /** Poll interval in ms. Default 50. */
  intervalMs?: number | undefined;
  /** Further checks of your own (e.g. leftover lease rows): one line per problem. */
  extra?: ((checker: pg.Client) => Promise<string[]>) | undefined;
}

/** Result of {@link waitForNoLeaks}: `lines` is `[]` when clean; `pids` are the sessions to blame. */
export interface LeakCheckResult {
  report: LeakReport;
  lines: string[];
  pids: number[];
}

/**
 * Polls {@link findLeaks} (plus `extra`) until the database is clean or `graceMs` has passed,
 * and returns the last result. The grace covers commits and disconnects still in flight on other
 * connections when a test returns; a real leak outlives it and is reported.
 */
export async function waitForNoLeaks(checker: pg.Client, options: WaitForNoLeaksOptions = {}): Promise<LeakCheckResult> {
  const { graceMs = 1000, intervalMs = 50, extra } = options;
  const deadline = Date.now() + graceMs;
  for (;;) {
    const report = await findLeaks(checker);
    const lines = [...describeLeaks(report), ...((await extra?.(checker)) ?? [])];
    if (lines.length === 0 || Date.now() >= deadline) {
      const pids = [...new Set([...report.advisoryLocks, ...report.openTransactions].map((leak) => leak.pid))];
      return { report, lines, pids };
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/** One readable line per leak, for assertion messages; `[]` when the report is clean. */
export function describeLeaks(report: LeakReport): string[] {
  return [
    ...report.advisoryLocks.map(
      (l) => `advisory lock ${l.key} ${l.mode} ${l.granted ? 'held' : 'awaited'} by pid ${l.pid} (last query: ${l.query ?? '?'})`,
    ),
    ...report.openTransactions.map(
      (t) => `pid ${t.pid} is ${t.state}${t.applicationName ? ` [${t.applicationName}]` : ''} (last query: ${t.query ?? '?'})`,
    ),
  ];
}
