/**
 * Queue claims (`claim()` and `row({ skipLocked })`) with many workers at once, each on its own
 * connection: every row is claimed exactly once, and workers holding claims at the same moment
 * hold disjoint rows.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import { barrier } from './helpers/barrier.js';
import { useTestDatabase } from './helpers/database.js';
import { type RowDriver, rowDriver } from './helpers/row-lock-drivers.js';

const db = useTestDatabase({ migrations: 'prisma' });

const JOBS = 240;
const TX_WORKERS = 8;
const STATEMENT_WORKERS = 16;

beforeEach(async () => {
  await db.query('TRUNCATE jobs RESTART IDENTITY');
  await db.query(`INSERT INTO jobs (payload) SELECT jsonb_build_object('n', i) FROM generate_series(1, ${JOBS}) AS i`);
});

const allIds = Array.from({ length: JOBS }, (_, i) => i + 1);

describe.each(['prisma', 'drizzle', 'pg'] as const)('claims through %s', (driverName) => {
  let driver: RowDriver;
  beforeAll(() => {
    driver = rowDriver(driverName, db);
  });
  afterAll(() => {});

  test(`${TX_WORKERS} workers in transactions claim disjoint batches and together every row exactly once`, async () => {
    const allHoldingFirstBatch = barrier(TX_WORKERS);
    const firstBatches: number[][] = [];
    const worker = async (): Promise<number[]> => {
      const mine: number[] = [];
      let first = true;
      for (;;) {
        const batch = await driver.transaction(async (tx) => {
          const claimed = await tx.claimJobs(5);
          if (first) {
            first = false;
            firstBatches.push(claimed);
            // Every worker holds its first claim (row locks open) before any of them goes on.
            await allHoldingFirstBatch.arrive();
          }
          if (claimed.length > 0) await tx.query(`UPDATE jobs SET status = 'done' WHERE id = ANY(string_to_array($1, ',')::bigint[])`, [claimed.join(',')]);
          return claimed;
        });
        if (batch.length === 0) return mine;
        mine.push(...batch);
      }
    };
    const results = await Promise.all(Array.from({ length: TX_WORKERS }, worker));

    // While all held their first batch at once, each had rows and no row was in two batches.
    expect(firstBatches).toHaveLength(TX_WORKERS);
    for (const batch of firstBatches) expect(batch).toHaveLength(5);
    const held = firstBatches.flat();
    expect(new Set(held).size).toBe(held.length);

    const claimed = results.flat();
    expect(claimed.length).toBe(JOBS);
    expect([...claimed].sort((a, b) => a - b)).toEqual(allIds);
    expect(await db.query(`SELECT count(*)::int AS n FROM jobs WHERE status <> 'done'`)).toEqual([{ n: 0 }]);
  });

  test(`${STATEMENT_WORKERS} workers claiming with set (one statement each) claim every row exactly once`, async () => {
    const start = barrier(STATEMENT_WORKERS);
    const worker = async (index: number): Promise<number[]> => {
      const name = `w${index}`;
      const mine: number[] = [];
      await start.arrive();
      for (;;) {
        // Half the workers claim one row at a time, half three: both statement shapes race.
        const batch = await driver.claimAndMark(index % 2 === 0 ? 1 : 3, name);
        if (batch.length === 0) return mine;
        expect(batch.length).toBeLessThanOrEqual(3);
        mine.push(...batch);
      }
    };
    const results = await Promise.all(Array.from({ length: STATEMENT_WORKERS }, (_, i) => worker(i)));
    const claimed = results.flat();
    expect(claimed.length).toBe(JOBS);
    expect([...claimed].sort((a, b) => a - b)).toEqual(allIds);
    // The database agrees on who claimed what: each row is marked by the worker that got it.
    const marks = await db.query<{ id: string; locked_by: string; status: string }>('SELECT id, locked_by, status FROM jobs ORDER BY id');
    const owner = new Map<number, string>();
    results.forEach((ids, index) => ids.forEach((id) => owner.set(id, `w${index}`)));
    expect(marks.every((row) => row.status === 'running' && row.locked_by === owner.get(Number(row.id)))).toBe(true);
    if (driverName !== 'pg') expect(await db.query('SELECT DISTINCT attempts FROM jobs')).toEqual([{ attempts: 1 }]);
  });

  test('a claim returns rows in the requested order and skips rows another transaction holds', async () => {
    const other = await db.client();
    await other.query('BEGIN');
    await other.query('SELECT id FROM jobs WHERE id IN (1, 2) FOR UPDATE');
    try {
      expect(await driver.claimAndMark(4, 'ordered')).toEqual([3, 4, 5, 6]);
      await driver.transaction(async (tx) => {
        expect(await tx.claimJobs(2)).toEqual([7, 8]);
      });
      // A single-row claim (a statement of its own shape): the next free row.
      expect(await driver.claimAndMark(1, 'single')).toEqual([7]);
    } finally {
      await other.query('COMMIT');
    }
  });
});

describe('prisma claim set', () => {
  test('set writes Prisma values (Json, DateTime, null, { set }, increment on Decimal and Int) and returns the rows as findMany reads them', async () => {
    const { lockExtension } = await import('../src/prisma/index.js');
    const { Prisma } = await import('./helpers/models.js');
    const prisma = db.prisma().$extends(lockExtension());
    await db.query(`UPDATE jobs SET locked_by = 'x' WHERE id <= 2`);
    const runAt = new Date('2030-01-02T03:04:05.678Z');
    const claimed = await prisma.$lock.claim('Job', {
      where: { lockedBy: 'x' },
      orderBy: { id: 'desc' },
      take: 5,
      set: { payload: { deep: ['x', 1, null] }, runAt, lockedBy: null, status: { set: 'done' }, attempts: { increment: 2 } },
    });
    expect(claimed.map((job) => job.id)).toEqual([2n, 1n]);
    expect(claimed).toEqual(await prisma.job.findMany({ where: { id: { in: [1n, 2n] } }, orderBy: { id: 'desc' } }));
    expect(claimed[0]).toMatchObject({ payload: { deep: ['x', 1, null] }, runAt, lockedBy: null, status: 'done', attempts: 2 });

    await db.query('TRUNCATE accounts RESTART IDENTITY CASCADE');
    await prisma.account.create({ data: { owner: 'a', balance: '1.50' } });
    const [account] = await prisma.$lock.claim('Account', { set: { balance: { increment: new Prisma.Decimal('0.25') }, version: { decrement: 1 } } });
    expect(account?.balance.toFixed(2)).toBe('1.75');
    expect(account?.version).toBe(-1);
  });
});

describe('drizzle one-row claims', () => {
  test('match the claimed row by its primary key, or by its physical address when the key has several columns', async () => {
    const { $lock } = await import('../src/drizzle/index.js');
    const { jobs, memberships } = await import('../drizzle/schema.js');
    const { asc, eq } = await import('drizzle-orm');
    const orm = db.drizzle();
    // A table with a one-column key (jobs.id) and one with a composite key (org_id, user_id).
    const [job] = await $lock(orm).claim(jobs, { where: eq(jobs.id, 7n), set: { lockedBy: 'keyed' } });
    expect(job).toMatchObject({ id: 7n, lockedBy: 'keyed' });
    expect(await db.query(`SELECT id::int FROM jobs WHERE locked_by = 'keyed'`)).toEqual([{ id: 7 }]);

    await db.query('DELETE FROM memberships');
    await db.query(`INSERT INTO memberships (org_id, user_id, role) VALUES (1, 1, 'member'), (1, 2, 'member'), (2, 1, 'member')`);
    const claimed = await $lock(orm).claim(memberships, { where: eq(memberships.orgId, 1), orderBy: [asc(memberships.userId)], set: { role: 'owner' } });
    expect(claimed).toEqual([{ orgId: 1, userId: 1, role: 'owner' }]);
    expect(await db.query('SELECT org_id, user_id, role FROM memberships ORDER BY org_id, user_id')).toEqual([
      { org_id: 1, user_id: 1, role: 'owner' },
      { org_id: 1, user_id: 2, role: 'member' },
      { org_id: 2, user_id: 1, role: 'member' },
    ]);
  });
});

describe('prisma one-row claims', () => {
  test('match the claimed row by its @id column, or by its physical address under @@id', async () => {
    const { lockExtension } = await import('../src/prisma/index.js');
    const prisma = db.prisma().$extends(lockExtension());
    const [job] = await prisma.$lock.claim('Job', { where: { id: 9n }, set: { lockedBy: 'keyed' } });
    expect(job).toMatchObject({ id: 9n, lockedBy: 'keyed' });
    expect(await db.query(`SELECT id::int FROM jobs WHERE locked_by = 'keyed'`)).toEqual([{ id: 9 }]);

    await db.query('DELETE FROM memberships');
    await db.query(`INSERT INTO memberships (org_id, user_id, role) VALUES (1, 1, 'member'), (1, 2, 'member'), (2, 1, 'member')`);
    const claimed = await prisma.$lock.claim('Membership', { where: { orgId: 1 }, orderBy: { userId: 'desc' }, set: { role: 'owner' } });
    expect(claimed).toEqual([{ orgId: 1, userId: 2, role: 'owner' }]);
    expect(await db.query('SELECT org_id, user_id, role FROM memberships ORDER BY org_id, user_id')).toEqual([
      { org_id: 1, user_id: 1, role: 'member' },
      { org_id: 1, user_id: 2, role: 'owner' },
      { org_id: 2, user_id: 1, role: 'member' },
    ]);
  });
});

describe('pg one-row claims', () => {
  test('match the claimed row by the one-column primary key read from the catalog, only where that key names one row', async () => {
    const { $lock } = await import('../src/pg/index.js');
    const locks = $lock(db.pool({ max: 2 }));
    for (const id of [11, 12]) {
      const [job] = await locks.claim('jobs', { where: { id }, set: { locked_by: 'keyed' } });
      expect(job).toMatchObject({ id: String(id), locked_by: 'keyed' });
    }
    expect(await db.query(`SELECT id::int FROM jobs WHERE locked_by = 'keyed' ORDER BY id`)).toEqual([{ id: 11 }, { id: 12 }]);

    // An inheritance child may hold a row with the parent's key: the claim updates only the row it locked.
    await db.query('CREATE TABLE claim_parent (id int PRIMARY KEY, v text NOT NULL); CREATE TABLE claim_child () INHERITS (claim_parent)');
    await db.query(`INSERT INTO claim_parent VALUES (1, 'parent'); INSERT INTO claim_child VALUES (1, 'child')`);
    expect(await locks.claim('claim_parent', { where: { v: 'child' }, set: { v: 'claimed' } })).toEqual([{ id: 1, v: 'claimed' }]);
    expect(await db.query(`SELECT tableoid = 'claim_child'::regclass AS child, v FROM claim_parent ORDER BY v`)).toEqual([
      { child: true, v: 'claimed' },
      { child: false, v: 'parent' },
    ]);

    // A partitioned table's key holds across its partitions.
    await db.query('CREATE TABLE claim_parts (id int PRIMARY KEY, v text NOT NULL) PARTITION BY RANGE (id)');
    await db.query('CREATE TABLE claim_parts_low PARTITION OF claim_parts FOR VALUES FROM (0) TO (10); CREATE TABLE claim_parts_high PARTITION OF claim_parts FOR VALUES FROM (10) TO (20)');
    await db.query(`INSERT INTO claim_parts VALUES (1, 'a'), (11, 'b')`);
    expect(await locks.claim('claim_parts', { where: { v: 'b' }, set: { v: 'claimed' } })).toEqual([{ id: 11, v: 'claimed' }]);
    expect(await db.query('SELECT id, v FROM claim_parts ORDER BY id')).toEqual([
      { id: 1, v: 'a' },
      { id: 11, v: 'claimed' },
    ]);

    // The root keeps the key it read; a claim that fails after the table changed makes it read it again.
    await db.query(`CREATE TABLE claim_renamed (id int PRIMARY KEY, v text NOT NULL); INSERT INTO claim_renamed VALUES (1, 'a'), (2, 'b')`);
    expect(await locks.claim('claim_renamed', { where: { v: 'a' }, set: { v: 'claimed' } })).toEqual([{ id: 1, v: 'claimed' }]);
    await db.query('ALTER TABLE claim_renamed RENAME COLUMN id TO ident');
    await expect(locks.claim('claim_renamed', { where: { v: 'b' }, set: { v: 'claimed' } })).rejects.toThrow('claim_renamed.id does not exist');
    expect(await locks.claim('claim_renamed', { where: { v: 'b' }, set: { v: 'claimed' } })).toEqual([{ ident: 2, v: 'claimed' }]);
  });
});
