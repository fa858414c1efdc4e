/**
 * The demo's database: a fresh one on the server of `DATABASE_URL`, or on an embedded
 * PostgreSQL 18 started for the run when `DATABASE_URL` is not set. It gets the committed Prisma
 * migrations (applied with `pg`, as the tests do), the lease table, a few tables of the demo's own
 * (logs the final checks read), and the seed data. Dropped, and the server stopped, at the end.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { ensureLeaseTable } from 'ormlock/pg';
import { applyMigrations } from '../test/helpers/migrations.js';
import { redactUrl, startTestServer } from '../test/helpers/postgres-server.js';
import { SCENE } from './scene.js';

/** The demo database, ready to use. */
export interface DemoDatabase {
  /** Where PostgreSQL came from, for the header line. */
  readonly description: string;
  /** URL of the demo database (passed to the child processes). */
  readonly url: string;
  /** A pool for the main process's own reads. */
  readonly pool: pg.Pool;
  /** Drops the database and stops the server if the demo started it. */
  close(): Promise<void>;
}

/** Starts (or finds) the server, creates and fills the demo database. */
export async function openDemoDatabase(): Promise<DemoDatabase> {
  const server = await startTestServer(process.env);
  const name = `ormlock_demo_${randomBytes(4).toString('hex')}`;
  const url = new URL(server.adminUrl);
  url.pathname = `/${name}`;
  try {
    await withClient(server.adminUrl, (admin) => admin.query(`CREATE DATABASE ${name}`));
    await withClient(url.toString(), async (client) => {
      await applyMigrations(client, 'prisma');
      await ensureLeaseTable(client);
      await client.query(DEMO_TABLES);
      await seed(client);
    });
  } catch (error) {
    await dropAndStop(server, name);
    throw error;
  }
  const pool = new pg.Pool({ connectionString: url.toString(), max: 4 });
  pool.on('error', () => {});
  const where = server.source === 'embedded' ? 'embedded, started for this run' : `DATABASE_URL ${redactUrl(server.adminUrl)}`;
  return {
    description: `PostgreSQL ${server.majorVersion} (${where}) · database ${name}`,
    url: url.toString(),
    pool,
    async close() {
      await pool.end().catch(() => {});
      await dropAndStop(server, name);
    },
  };
}

// The demo's own tables: written in the same transactions as the work they record, so the final
// checks can tell what really committed.
const DEMO_TABLES = `
  CREATE TABLE demo_job_runs (job_id bigint NOT NULL, worker text NOT NULL);
  CREATE TABLE demo_transfers (id serial PRIMARY KEY, from_id int NOT NULL, to_id int NOT NULL, amount numeric(18, 2) NOT NULL);
  CREATE TABLE demo_cron (id int PRIMARY KEY, fence bigint, runs int NOT NULL DEFAULT 0);
  CREATE TABLE demo_cron_log (id serial PRIMARY KEY, instance text NOT NULL, token bigint NOT NULL, accepted boolean NOT NULL);
  INSERT INTO demo_cron (id) VALUES (1);
`;

async function seed(client: pg.Client): Promise<void> {
  await client.query(`INSERT INTO jobs (queue, payload) SELECT 'emails', jsonb_build_object('n', n) FROM generate_series(1, $1::int) AS n`, [SCENE.jobs]);
  await client.query(`INSERT INTO accounts (owner, balance) SELECT 'owner-' || n, $2::numeric FROM generate_series(1, $1::int) AS n`, [
    SCENE.accounts,
    SCENE.openingBalance,
  ]);
  await client.query(`INSERT INTO "Counter" (name) VALUES ('hits')`);
  await client.query(`INSERT INTO memberships (org_id, user_id, role) VALUES (1, 1, 'owner'), (1, 2, 'member')`);
}

async function dropAndStop(server: Awaited<ReturnType<typeof startTestServer>>, name: string): Promise<void> {
  await withClient(server.adminUrl, (admin) => admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)).catch(() => {});
  await server.stop();
}

async function withClient<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}
