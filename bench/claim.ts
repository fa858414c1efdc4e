/**
 * Queue claim throughput: one statement that picks the next pending job with
 * `FOR UPDATE SKIP LOCKED`, marks it running and returns it, with 1 and 16 workers. The floor is
 * the hand-written statement on node-postgres (`UPDATE … WHERE id = (SELECT … SKIP LOCKED)
 * RETURNING *`); against it, ormlock's `claim(…, { set })` on `pg`, Drizzle and Prisma (and the
 * same hand-written SQL through Drizzle's `db.execute` and Prisma's `$queryRawUnsafe`, to show
 * what each ORM costs by itself). Prisma's adapter is given a `pg.Pool`, as the README sets it up
 * (ormlock's claim then runs on that pool); a second row gives it a connection string.
 */
import { PrismaPg } from '@prisma/adapter-pg';
import { eq, sql } from 'drizzle-orm';
import { drizzle } from 'drizzle-orm/node-postgres';
import pg from 'pg';
import { jobs } from '../drizzle/schema.js';
import { PrismaClient } from '../prisma/generated/client.js';
import { type ClientOp, compare, compareConcurrent, pairedShare } from './stats.js';
import type { BenchContext, BenchRow } from './types.js';
import { drizzleLayer, pgLayer, prismaLayer } from './ormlock.js';

const drizzleLock = drizzleLayer.$lock;
const pgLock = pgLayer.$lock;
const { lockExtension } = prismaLayer;

const RAW_CLAIM =
  `UPDATE jobs SET status = 'running', locked_by = $1 ` +
  `WHERE id = (SELECT id FROM jobs WHERE status = 'pending' ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING *`;

const CASE = 'claim 1 job (SKIP LOCKED, set, RETURNING)';

/** Notes printed under the bench table. */
export const claimNotes = [
  'claim: every call claims one pending job and marks it running, in one statement outside a transaction; the queue holds as many finished jobs as pending ones, and pending jobs come from a partial index on their ids.',
  'claim, 16 clients: the share of raw pg throughput is the median over 30 rounds of the two throughputs of the same round (each round runs every case once, in rotated order), which a stall of the server in one round does not move; all rounds together is given beside it.',
];

export async function benchClaim(ctx: BenchContext): Promise<BenchRow[]> {
  const quick = ctx.quick ?? false;
  const single = quick ? { rounds: 2, perRound: 60, warmup: 20 } : { rounds: 6, perRound: 400, warmup: 100 };
  // Many short rounds rather than a few long ones: the 16-client share is a median over rounds.
  const many = quick ? { rounds: 2, perClient: 20, warmup: 5 } : { rounds: 30, perClient: 50, warmup: 30 };
  const CLIENTS = 16;
  const DRIVERS = 8;
  const needed = DRIVERS * (single.warmup + single.rounds * single.perRound + CLIENTS * (many.warmup + many.rounds * many.perClient));

  const setup = new pg.Client({ connectionString: ctx.url });
  await setup.connect();
  try {
    await setup.query('TRUNCATE jobs RESTART IDENTITY');
    // A queue with a history: as many finished jobs as pending ones, ahead of them. Then the
    // planner reads pending jobs from the partial index, as a queue relies on, rather than walking
    // the primary key past every job claimed so far (the two cost the same on a table of pending
    // jobs only, and the plan then flipped between runs: 0.7 ms or 2.5 ms per claim).
    const pending = Math.ceil(needed * 1.1);
    await setup.query(`INSERT INTO jobs (status, payload) SELECT 'done', jsonb_build_object('n', i) FROM generate_series(1, $1::int) AS i`, [pending]);
    await setup.query(`INSERT INTO jobs (payload) SELECT jsonb_build_object('n', i) FROM generate_series(1, $1::int) AS i`, [pending]);
    await setup.query(`CREATE INDEX IF NOT EXISTS jobs_pending_id ON jobs (id) WHERE status = 'pending'`);
    await setup.query('VACUUM ANALYZE jobs');
  } finally {
    await setup.end();
  }

  const rows: BenchRow[] = [];
  for (const clients of [1, CLIENTS]) {
    const pool = new pg.Pool({ connectionString: ctx.url, max: clients }).on('error', () => {});
    const drizzlePool = new pg.Pool({ connectionString: ctx.url, max: clients }).on('error', () => {});
    const db = drizzle({ client: drizzlePool });
    // The README's set-up: the adapter given a pg.Pool (ormlock's claims outside a transaction run
    // on it); and the adapter given a connection string (its pool is Prisma's own: through Prisma).
    const prismaPool = new pg.Pool({ connectionString: ctx.url, max: clients }).on('error', () => {});
    const prisma = new PrismaClient({ adapter: new PrismaPg(prismaPool) }).$extends(lockExtension());
    const prismaByUrl = new PrismaClient({ adapter: new PrismaPg({ connectionString: ctx.url, max: clients }) }).$extends(lockExtension());
    // Built once, as an app keeps `$lock(pool)` / `$lock(db)` next to its pool.
    const pgLocks = pgLock(pool);
    const drizzleLocks = drizzleLock(db);
    try {
      const ops: Record<string, ClientOp> = {
        'raw pg': () => pool.query(RAW_CLAIM, ['bench']),
        'raw drizzle (db.execute)': () =>
          db.execute(
            sql`UPDATE jobs SET status = 'running', locked_by = ${'bench'} WHERE id = (SELECT id FROM jobs WHERE status = 'pending' ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING *`,
          ),
        // What a Drizzle app writes by hand to get typed rows back (Date, bigint), as ormlock returns them.
        'drizzle update().returning()': () =>
          db
            .update(jobs)
            .set({ status: 'running', lockedBy: 'bench' })
            .where(eq(jobs.id, sql`(SELECT id FROM jobs WHERE status = 'pending' ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)`))
            .returning(),
        'raw prisma ($queryRawUnsafe)': () => prisma.$queryRawUnsafe(RAW_CLAIM, 'bench'),
        'ormlock pg': () => pgLocks.claim('jobs', { where: { status: 'pending' }, orderBy: { id: 'asc' }, set: { status: 'running', locked_by: 'bench' } }),
        'ormlock drizzle': () => drizzleLocks.claim(jobs, { where: eq(jobs.status, 'pending'), orderBy: jobs.id, set: { status: 'running', lockedBy: 'bench' } }),
        'ormlock prisma': () => prisma.$lock.claim('Job', { where: { status: 'pending' }, orderBy: { id: 'asc' }, set: { status: 'running', lockedBy: 'bench' } }),
        'ormlock prisma (connection string)': () =>
          prismaByUrl.$lock.claim('Job', { where: { status: 'pending' }, orderBy: { id: 'asc' }, set: { status: 'running', lockedBy: 'bench' } }),
      };
      const figures: Record<string, { medianMs: number; p99Ms: number; opsPerSec: number; roundOpsPerSec?: number[] }> =
        clients === 1
          ? await compare(ops, single)
          : await compareConcurrent(
              Object.fromEntries(Object.entries(ops).map(([name, op]) => [name, Array.from({ length: clients }, () => op)])),
              many,
            );
      const floor = figures['raw pg']!;
      for (const [driver, figure] of Object.entries(figures)) {
        const total = figure.opsPerSec / floor.opsPerSec;
        const rounds = figure.roundOpsPerSec;
        const share = rounds === undefined ? total : pairedShare(rounds, floor.roundOpsPerSec!);
        rows.push({
          case: CASE,
          driver,
          clients,
          opsPerSec: figure.opsPerSec,
          medianMs: figure.medianMs,
          p99Ms: figure.p99Ms,
          kind: driver === 'raw pg' ? 'floor' : driver.startsWith('ormlock') ? 'ormlock' : 'peer',
          ...(driver === 'raw pg'
            ? {}
            : {
                ratio: figure.medianMs / floor.medianMs,
                share,
                note:
                  rounds === undefined
                    ? `${share.toFixed(2)}× raw pg throughput`
                    : `${share.toFixed(2)}× raw pg throughput (median of ${rounds.length} rounds each beside raw pg's; all rounds together ${total.toFixed(2)}×)`,
              }),
        });
      }
    } finally {
      await Promise.allSettled([pool.end(), drizzlePool.end(), prisma.$disconnect().then(() => prismaPool.end()), prismaByUrl.$disconnect()]);
    }
  }
  return rows;
}
