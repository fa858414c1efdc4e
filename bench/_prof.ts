import { eq } from 'drizzle-orm';
import { drizzle } from 'drizzle-orm/node-postgres';
import pg from 'pg';
import { jobs } from '../drizzle/schema.js';
import { applyMigrations } from '../test/helpers/migrations.js';
import { drizzleLayer } from './ormlock.js';

const url = 'postgres://postgres@127.0.0.1:5432/probe2';
const setup = new pg.Client({ connectionString: url });
await setup.connect();
if (process.argv[2] === 'setup') await applyMigrations(setup, 'prisma');
await setup.query('TRUNCATE jobs RESTART IDENTITY');
await setup.query(`INSERT INTO jobs (payload) SELECT jsonb_build_object('n', i) FROM generate_series(1, 100000) AS i`);
await setup.query(`CREATE INDEX IF NOT EXISTS jobs_pending_id ON jobs (id) WHERE status = 'pending'`);
await setup.query('VACUUM ANALYZE jobs');
await setup.end();
const dpool = new pg.Pool({ connectionString: url, max: 1 });
const db = drizzle({ client: dpool });
const dLocks = drizzleLayer.$lock(db);
const { sql } = await import('drizzle-orm');
const ops: Record<string, () => Promise<unknown>> = {
  raw: () => db.execute(sql`UPDATE jobs SET status = 'running', locked_by = ${'bench'} WHERE id = (SELECT id FROM jobs WHERE status = 'pending' ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING *`),
  orm: () => dLocks.claim(jobs, { where: eq(jobs.status, 'pending'), orderBy: jobs.id, set: { status: 'running', lockedBy: 'bench' } }),
};
const times: Record<string, number[]> = { raw: [], orm: [] };
for (let round = 0; round < 40; round++) {
  for (const [name, op] of Object.entries(ops)) {
    for (let i = 0; i < 100; i++) {
      const t = performance.now();
      await op();
      if (round >= 4) times[name]!.push(performance.now() - t);
    }
  }
}
for (const [name, list] of Object.entries(times)) {
  list.sort((a, b) => a - b);
  console.log(name, 'median', list[list.length >> 1]!.toFixed(4), 'p25', list[list.length >> 2]!.toFixed(4));
}
await dpool.end();
