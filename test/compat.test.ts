/**
 * Proves that the variant a run asks for (`.ci/run`, `docs/compatibility.md`) is the one the suite
 * really ran in: server major version, pgbouncer, schema, Prisma generator, Drizzle driver. A
 * misread environment variable would otherwise give a green run of the default setup.
 */
import { createRequire } from 'node:module';
import { describe, expect, test } from 'vitest';
import { useTestDatabase } from './helpers/database.js';
import { testVariant } from './helpers/test-variant.js';

const db = useTestDatabase({ migrations: 'prisma' });
const variant = testVariant();
const requireCjs = createRequire(import.meta.url);

describe('the run is the variant it claims', () => {
  test('server major version', async () => {
    const [row] = await db.query<{ v: string }>(`SELECT current_setting('server_version_num') AS v`);
    expect(Math.floor(Number(row?.v) / 10_000)).toBe(db.serverVersion);
    const major = process.env['ORMLOCK_TEST_PG_MAJOR'];
    if (major && !process.env['DATABASE_URL'] && process.env['ORMLOCK_TEST_PG'] !== 'container') expect(db.serverVersion).toBe(Number(major));
    expect(db.serverVersion).toBeGreaterThanOrEqual(13);
  });

  test('pgbouncer in front of the server, or not', async () => {
    const client = await db.client();
    const { rows } = await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
    // pgbouncer hands its clients a cancel key of its own, never the server backend's pid.
    const direct = (client as unknown as { processID: number }).processID === rows[0]?.pid;
    expect(direct).toBe(db.pooler === 'none');
    expect(db.pooler).toBe(process.env['ORMLOCK_TEST_POOLER'] || 'none');
  });

  test('schema of the test tables', async () => {
    expect(db.schema).toBe(variant.schema);
    const [row] = await db.query<{ schema: string }>(
      `SELECT current_schema() AS schema`,
    );
    expect(row?.schema).toBe(variant.schema);
    // Unqualified names find the tables in the test schema only.
    const rows = await db.query<{ schema: string }>(`SELECT table_schema AS schema FROM information_schema.tables WHERE table_name = 'accounts'`);
    expect(rows).toEqual([{ schema: variant.schema }]);
  });

  test('Prisma generator', async () => {
    const prisma = db.prisma();
    const expected =
      variant.prisma === 'js'
        ? (requireCjs('../prisma/generated-js/index.js') as { PrismaClient: unknown }).PrismaClient
        : (await import('../prisma/generated/client.js')).PrismaClient;
    // Prisma clients are proxies: `instanceof` does not hold, the constructor does.
    expect(prisma.constructor === expected).toBe(true);
    const account = await prisma.account.create({ data: { owner: 'ann', balance: '1.50' } });
    expect(account.balance.toFixed(2)).toBe('1.50');
  });

  test('Drizzle driver', async () => {
    const orm = db.drizzle();
    const session = (orm as unknown as { session: object }).session;
    expect(session.constructor.name).toBe(variant.drizzle === 'postgres-js' ? 'PostgresJsSession' : 'NodePgSession');
    const result = await orm.execute(`SELECT 1 AS one`);
    const rows = Array.isArray(result) ? result : result.rows;
    expect(rows).toEqual([{ one: 1 }]);
  });
});
