/**
 * A queue worker on Drizzle: run as many copies as you like, on as many machines. Each round
 * claims up to 5 pending jobs in one statement (`FOR UPDATE SKIP LOCKED`, so concurrent workers
 * get disjoint jobs and never wait on each other) and marks them `running` by this worker in the
 * same statement; then it handles them and marks each `done`.
 *
 * Run: DATABASE_URL=postgres://… npx tsx examples/drizzle-worker/worker.ts
 *      WORKER_ID (default host:pid), EXIT_WHEN_IDLE=1 (stop when the queue is empty), POLL_MS (default 1000).
 */
import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { and, asc, eq, lte, sql } from 'drizzle-orm';
import { drizzle } from 'drizzle-orm/node-postgres';
import pg from 'pg';
import { $lock } from 'ormlock/drizzle';
// Your app's schema; this one is the repository's drizzle/schema.ts (table `jobs`).
import { jobs } from '../../drizzle/schema.js';

const workerId = process.env['WORKER_ID'] ?? `${hostname()}:${process.pid}`;
const exitWhenIdle = process.env['EXIT_WHEN_IDLE'] === '1';
const pollMs = Number(process.env['POLL_MS'] ?? 1000);

const pool = new pg.Pool({ connectionString: process.env['DATABASE_URL'], max: 2, application_name: `worker ${workerId}` });
const db = drizzle({ client: pool });

/** What a job does; here it "sends" the email in its payload. */
async function handle(job: typeof jobs.$inferSelect): Promise<void> {
  const { to } = job.payload as { to?: string };
  await sleep(10);
  console.log(`${workerId} done job ${job.id}: sent email to ${to ?? '?'}`);
}

let stopping = false;
process.once('SIGTERM', () => (stopping = true)); // finish the batch in hand, then stop

while (!stopping) {
  // One statement: WITH picked AS (SELECT … ORDER BY id LIMIT 5 FOR UPDATE SKIP LOCKED)
  //                UPDATE jobs SET status = 'running', … FROM picked … RETURNING *
  // It commits by itself; a worker that dies leaves its jobs `running` with its id in
  // locked_by, for a cron job to requeue.
  const claimed = await $lock(db).claim(jobs, {
    where: and(eq(jobs.queue, 'emails'), eq(jobs.status, 'pending'), lte(jobs.runAt, sql`now()`)),
    orderBy: asc(jobs.id),
    limit: 5,
    set: { status: 'running', lockedBy: workerId, attempts: sql`${jobs.attempts} + 1` },
  });
  if (claimed.length === 0) {
    if (exitWhenIdle) break;
    await sleep(pollMs);
    continue;
  }
  for (const job of claimed) {
    try {
      await handle(job);
      await db.update(jobs).set({ status: 'done' }).where(eq(jobs.id, job.id));
    } catch (error) {
      console.error(`${workerId} job ${job.id} failed:`, error);
      await db.update(jobs).set({ status: 'failed' }).where(eq(jobs.id, job.id));
    }
  }
}
await pool.end();
console.log(`${workerId} stopped`);
