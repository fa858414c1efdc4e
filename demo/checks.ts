/**
 * The demo's self-check: after every child process has ended, reads the database and decides
 * whether each scene did what it claims. The events the children printed only drive the board.
 */
import type pg from 'pg';
import { $lock } from 'ormlock/pg';
import { SCENE } from './scene.js';

/** One check and what it found. */
export interface CheckResult {
  readonly name: string;
  readonly ok: boolean;
  readonly detail: string;
}

/** What only the processes could observe (a lost lease is detected inside the paused process). */
export interface Observed {
  readonly pausedInstance: string | undefined;
  readonly pausedLostLease: boolean;
  readonly reportTerminated: boolean;
  readonly killedJob: string | undefined;
  readonly pausedAt: number | undefined;
}

/** Runs every check against the demo database. */
export async function runChecks(pool: pg.Pool, observed: Observed): Promise<CheckResult[]> {
  const rows = async <R extends pg.QueryResultRow>(text: string, values: unknown[] = []): Promise<R[]> => (await pool.query<R>(text, values)).rows;
  const results: CheckResult[] = [];
  const check = async (name: string, fn: () => Promise<{ ok: boolean; detail: string }>): Promise<void> => {
    try {
      results.push({ name, ...(await fn()) });
    } catch (error) {
      results.push({ name, ok: false, detail: `check failed to run: ${(error as Error).message}` });
    }
  };

  await check('every job done exactly once', async () => {
    const [jobs] = await rows<{ done: number; attempts_ok: number }>(
      `SELECT count(*) FILTER (WHERE status = 'done')::int AS done, count(*) FILTER (WHERE attempts = 1)::int AS attempts_ok FROM jobs`,
    );
    const [runs] = await rows<{ runs: number; distinct_jobs: number; workers: number }>(
      `SELECT count(*)::int AS runs, count(DISTINCT job_id)::int AS distinct_jobs, count(DISTINCT worker)::int AS workers FROM demo_job_runs`,
    );
    const ok = jobs?.done === SCENE.jobs && jobs.attempts_ok === SCENE.jobs && runs?.runs === SCENE.jobs && runs.distinct_jobs === SCENE.jobs;
    const killed = observed.killedJob ? `; job ${observed.killedJob}, held by the killed worker, was redone once` : '';
    return { ok, detail: `${jobs?.done}/${SCENE.jobs} done, ${runs?.runs} committed runs of ${runs?.distinct_jobs} distinct jobs by ${runs?.workers} workers${killed}` };
  });

  await check('balances conserved', async () => {
    const expected = SCENE.accounts * SCENE.openingBalance;
    const [sum] = await rows<{ total: string; lowest: string; transfers: number }>(
      `SELECT sum(balance)::text AS total, min(balance)::text AS lowest, (SELECT count(*)::int FROM demo_transfers) AS transfers FROM accounts`,
    );
    // Each balance must also equal the opening balance plus what the committed transfers moved.
    const mismatched = await rows<{ id: number }>(
      `SELECT a.id FROM accounts a
        WHERE a.balance <> $1::numeric
              + coalesce((SELECT sum(amount) FROM demo_transfers WHERE to_id = a.id), 0)
              - coalesce((SELECT sum(amount) FROM demo_transfers WHERE from_id = a.id), 0)`,
      [SCENE.openingBalance],
    );
    const ok = Number(sum?.total) === expected && Number(sum?.lowest) >= 0 && mismatched.length === 0;
    return {
      ok,
      detail: `total ${sum?.total} (expected ${expected}.00), lowest ${sum?.lowest}, ${sum?.transfers} transfers committed, ${mismatched.length} balances off their ledger`,
    };
  });

  await check('counter exact', async () => {
    const expected = SCENE.counterWriters * SCENE.incrementsPerWriter;
    const [counter] = await rows<{ value: number; version: number }>(`SELECT value, version FROM "Counter" WHERE name = 'hits'`);
    return { ok: counter?.value === expected && counter.version === expected, detail: `value ${counter?.value}, version ${counter?.version} (expected ${expected} increments, none lost)` };
  });

  await check('cron: one leader at a time, handed over, late write fenced', async () => {
    const log = await rows<{ instance: string; token: string; accepted: boolean }>(`SELECT instance, token::text, accepted FROM demo_cron_log ORDER BY id`);
    let highest = 0n;
    let outOfOrder = 0;
    const leaders = new Set<string>();
    for (const entry of log.filter((e) => e.accepted)) {
      if (BigInt(entry.token) < highest) outOfOrder++;
      highest = BigInt(entry.token) > highest ? BigInt(entry.token) : highest;
      leaders.add(`${entry.instance}#${entry.token}`);
    }
    const refused = log.filter((e) => !e.accepted).length;
    const [state] = await rows<{ runs: number }>(`SELECT runs FROM demo_cron WHERE id = 1`);
    const accepted = log.length - refused;
    const ok = outOfOrder === 0 && leaders.size >= 2 && observed.pausedLostLease && state?.runs === accepted;
    return {
      ok,
      detail:
        `${accepted} runs by ${leaders.size} leaderships (${[...leaders].join(', ')}), ${outOfOrder} accepted out of token order, ` +
        `${refused} stale write(s) refused; paused leader ${observed.pausedInstance ?? '?'} ${observed.pausedLostLease ? 'detected its lost lease' : 'did NOT report losing its lease'}`,
    };
  });

  await check('migration won with prioritize', async () => {
    const columns = await rows(`SELECT 1 FROM information_schema.columns WHERE table_name = 'memberships' AND column_name = 'note'`);
    const report = await rows(`SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND application_name = $1`, [SCENE.reportApplicationName]);
    const ok = columns.length === 1 && observed.reportTerminated && report.length === 0;
    return { ok, detail: `column memberships.note ${columns.length === 1 ? 'exists' : 'MISSING'}; blocking session ${observed.reportTerminated && report.length === 0 ? 'terminated' : 'NOT terminated'}` };
  });

  await check('nothing left behind', async () => {
    const [left] = await rows<{ locks: number; open: number }>(
      `SELECT (SELECT count(*)::int FROM pg_locks WHERE locktype = 'advisory' AND database = (SELECT oid FROM pg_database WHERE datname = current_database())) AS locks,
              (SELECT count(*)::int FROM pg_stat_activity WHERE datname = current_database() AND state LIKE 'idle in transaction%') AS open`,
    );
    // Leases as ormlock itself lists them (the table may also hold its bookkeeping rows).
    const leases = (await $lock(pool).listLeases()).filter((lease) => lease.live);
    const ok = left?.locks === 0 && left.open === 0 && leases.length === 0;
    const held = leases.map((lease) => `${lease.name} by ${lease.owner}`).join(', ');
    return { ok, detail: `${left?.locks} advisory locks, ${left?.open} open transactions, ${leases.length} live leases${held ? ` (${held})` : ''}` };
  });

  return results;
}
