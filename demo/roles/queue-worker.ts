/**
 * Demo role: a queue worker on Drizzle. Each job is claimed with `FOR UPDATE SKIP LOCKED` inside
 * a transaction and stays locked while it is worked on, so a worker that dies mid-job gives it
 * back (its transaction rolls back) and another worker does it. Exits when every job is done.
 */
import { asc, eq, ne, sql } from 'drizzle-orm';
import { drizzle } from 'drizzle-orm/node-postgres';
import pg from 'pg';
import { $lock } from 'ormlock/drizzle';
import { jobs } from '../../drizzle/schema.js';
import { databaseUrl, emit, randomInt, sleep } from '../protocol.js';

const worker = process.argv[2] ?? `worker-${process.pid}`;
const pool = new pg.Pool({ connectionString: await databaseUrl(), max: 2, application_name: worker });
const db = drizzle({ client: pool });
emit({ type: 'ready' });

for (;;) {
  const done = await db.transaction(async (tx) => {
    const [job] = await $lock(tx).claim(jobs, { where: eq(jobs.status, 'pending'), orderBy: asc(jobs.id) });
    if (!job) return undefined;
    emit({ type: 'job', id: String(job.id), phase: 'claimed' });
    await sleep(randomInt(60, 160)); // the work, done while the row stays locked
    await tx
      .update(jobs)
      .set({ status: 'done', lockedBy: worker, attempts: sql`${jobs.attempts} + 1` })
      .where(eq(jobs.id, job.id));
    await tx.execute(sql`INSERT INTO demo_job_runs (job_id, worker) VALUES (${job.id}, ${worker})`);
    return job.id;
  });
  if (done !== undefined) {
    emit({ type: 'job', id: String(done), phase: 'done' });
    continue;
  }
  // Nothing claimable: either all is done, or the rest is locked by other workers (one of which
  // may still die and give its job back), so look again shortly.
  const [left] = await db.select({ n: sql<number>`count(*)::int` }).from(jobs).where(ne(jobs.status, 'done'));
  if ((left?.n ?? 0) === 0) break;
  await sleep(50);
}
await pool.end();
emit({ type: 'finished' });
