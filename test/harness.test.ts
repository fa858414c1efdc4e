/**
 * Smoke test of the test harness itself: both migration sets, both ORMs, the leak check and the
 * child-process helper.
 */
import { fileURLToPath } from 'node:url';
import { eq } from 'drizzle-orm';
import { describe, expect, test } from 'vitest';
import { useTestDatabase } from './helpers/database.js';
import { describeLeaks, findLeaks, waitForNoLeaks } from './helpers/leak-check.js';
import { sessionBoundTest } from './helpers/pooler.js';
import { accounts, counters, jobs, memberships, Prisma } from './helpers/models.js';
import { spawnNode } from './helpers/spawn-node.js';

const prismaDb = useTestDatabase({ migrations: 'prisma' });
const drizzleDb = useTestDatabase({ migrations: 'drizzle' });
const MAX_SAFE_PLUS_2 = 9007199254740993n;

describe('databases', () => {
  test('each file gets its own database on a supported server', async () => {
    expect(prismaDb.name).not.toBe(drizzleDb.name);
    expect(prismaDb.serverVersion).toBeGreaterThanOrEqual(13);
    const [row] = await prismaDb.query<{ db: string }>('SELECT current_database() AS db');
    expect(row?.db).toBe(prismaDb.name);
  });

  test('prisma and drizzle migrations create the same six tables (and Prisma the two tables of its type tests)', async () => {
    const catalog = async (db: typeof prismaDb): Promise<unknown[]> => [
      ...(await db.query(
        `SELECT table_name, column_name, data_type, numeric_precision, numeric_scale, datetime_precision,
                is_nullable, column_default
           FROM information_schema.columns WHERE table_schema = current_schema() AND table_name NOT IN ('samples', 'sample_lists')
          ORDER BY table_name, column_name`,
      )),
      ...(await db.query(
        `SELECT c.conrelid::regclass::text AS table_name, c.conname, pg_get_constraintdef(c.oid) AS definition
           FROM pg_constraint c WHERE c.connamespace = (SELECT oid FROM pg_namespace WHERE nspname = current_schema())
            AND c.conrelid::regclass::text NOT IN ('samples', 'sample_lists')
          ORDER BY 1, 2`,
      )),
    ];
    const tables = await prismaDb.query<{ t: string }>(
      `SELECT table_name AS t FROM information_schema.tables WHERE table_schema = current_schema() ORDER BY table_name COLLATE "C"`,
    );
    expect(tables.map((row) => row.t)).toEqual(['Counter', 'accounts', 'jobs', 'memberships', 'refunds', 'sample_lists', 'samples', 'transfers']);
    expect(await catalog(drizzleDb)).toEqual(await catalog(prismaDb));
  });
});

describe('prisma client', () => {
  test('writes and reads Decimal, BigInt, Json and a composite id', async () => {
    const prisma = prismaDb.prisma();
    const created = await prisma.account.create({ data: { owner: 'ann', balance: '1234567890123456.78' } });
    expect(created).toMatchObject({ owner: 'ann', version: 0 });
    expect(Prisma.Decimal.isDecimal(created.balance)).toBe(true);
    expect(created.balance.toFixed(2)).toBe('1234567890123456.78');
    expect(await prisma.account.findMany()).toHaveLength(1);

    await prismaDb.query(`SELECT setval('jobs_id_seq', $1::bigint)`, [String(MAX_SAFE_PLUS_2 - 1n)]);
    const job = await prisma.job.create({ data: { payload: { tries: [1, 2] } } });
    expect(job.id).toBe(MAX_SAFE_PLUS_2);
    expect(job).toMatchObject({ queue: 'default', status: 'pending', attempts: 0, lockedBy: null, payload: { tries: [1, 2] } });

    await prisma.membership.create({ data: { orgId: 1, userId: 2, role: 'owner' } });
    const member = await prisma.membership.findUnique({ where: { orgId_userId: { orgId: 1, userId: 2 } } });
    expect(member?.role).toBe('owner');
    const counter = await prisma.counter.upsert({ where: { name: 'c' }, create: { name: 'c' }, update: {} });
    expect(counter).toEqual({ name: 'c', value: 0, version: 0 });
  });
});

describe('drizzle', () => {
  test('inserts and selects on the drizzle-migrated tables', async () => {
    const db = drizzleDb.drizzle();
    const [account] = await db.insert(accounts).values({ owner: 'bob', balance: '12.50' }).returning();
    expect(account).toMatchObject({ owner: 'bob', balance: '12.50', version: 0 });
    expect(account?.updatedAt).toBeInstanceOf(Date);

    await drizzleDb.query(`SELECT setval('jobs_id_seq', $1::bigint)`, [String(MAX_SAFE_PLUS_2 - 1n)]);
    const [job] = await db.insert(jobs).values({ payload: { a: 1 } }).returning();
    expect(job).toMatchObject({ id: MAX_SAFE_PLUS_2, queue: 'default', status: 'pending', payload: { a: 1 } });

    await db.insert(memberships).values({ orgId: 1, userId: 2, role: 'admin' });
    await db.insert(counters).values({ name: 'hits' });
    const rows = await db.select().from(counters).where(eq(counters.name, 'hits'));
    expect(rows).toEqual([{ name: 'hits', value: 0, version: 0 }]);
  });
});

describe('leak check', () => {
  sessionBoundTest('reports a held session advisory lock and an idle open transaction, then nothing once released', async () => {
    const holder = await prismaDb.client();
    const inTransaction = await prismaDb.client();
    const checker = await prismaDb.client();
    const [{ pid: holderPid }] = (await holder.query<{ pid: number }>('SELECT pg_backend_pid() AS pid, pg_advisory_lock(42)')).rows as [
      { pid: number },
    ];
    await inTransaction.query('BEGIN');
    const [{ pid: txPid }] = (await inTransaction.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows as [{ pid: number }];

    const report = await findLeaks(checker);
    expect(report.advisoryLocks).toEqual([expect.objectContaining({ pid: holderPid, key: '0:42:1', mode: 'ExclusiveLock', granted: true })]);
    expect(report.openTransactions).toEqual([expect.objectContaining({ pid: txPid, state: 'idle in transaction' })]);
    const waited = await waitForNoLeaks(checker, { graceMs: 100 });
    expect(waited.lines).toHaveLength(2);
    expect(waited.pids.sort()).toEqual([holderPid, txPid].sort());

    await holder.query('SELECT pg_advisory_unlock(42)');
    await inTransaction.query('ROLLBACK');
    expect(describeLeaks(await findLeaks(checker))).toEqual([]);
  });

  test('reports an aborted transaction', async () => {
    const client = await drizzleDb.client();
    const checker = await drizzleDb.client();
    await client.query('BEGIN');
    await expect(client.query('SELECT 1/0')).rejects.toThrow(/division by zero/);
    const report = await findLeaks(checker);
    expect(report.openTransactions).toEqual([expect.objectContaining({ state: 'idle in transaction (aborted)' })]);
    await client.query('ROLLBACK');
  });
});

describe('spawnNode', () => {
  sessionBoundTest('a child process holds a lock that this process then cannot take', async () => {
    const script = fileURLToPath(new URL('./helpers/fixtures/hold-advisory-lock.ts', import.meta.url));
    const child = spawnNode(script, [prismaDb.url, '7']);
    try {
      const line = await child.waitForLine(/^locked \d+$/);
      const [row] = await prismaDb.query<{ got: boolean }>('SELECT pg_try_advisory_lock(7) AS got');
      expect(row?.got).toBe(false);
      expect(child.lines).toContain(line);
    } finally {
      await child.stop();
    }
    // The child's backend may take a moment to exit; the afterEach leak check waits for it.
  });
});
