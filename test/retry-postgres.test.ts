/**
 * `withRetry` against conflicts a real PostgreSQL raises on separate connections, through each
 * driver: a serialization failure (40001) at SERIALIZABLE, a deadlock (40P01), and a
 * non-retryable error that must not be retried.
 */
import { eq, inArray, sql } from 'drizzle-orm';
import type pg from 'pg';
import { beforeEach, describe, expect, test } from 'vitest';
import { LockTimeoutError, isRetryable, sqlStateOf, withRetry } from '../src/index.js';
import { $lock } from '../src/pg/index.js';
import { lockExtension } from '../src/prisma/index.js';
import { barrier } from './helpers/barrier.js';
import { useTestDatabase } from './helpers/database.js';
import { counters } from './helpers/models.js';

const db = useTestDatabase({ migrations: 'prisma' });

/** One transaction's work on the two counters `a` and `b`, written once per driver. */
interface Tx {
  /** The sum of both counters' values, as this transaction sees it. */
  sum(): Promise<number>;
  /** value := value + by on one counter (takes its row lock). */
  add(name: string, by: number): Promise<void>;
  set(name: string, value: number): Promise<void>;
}

interface Driver {
  /** Runs `fn` in a transaction on a connection of this writer's own. */
  transaction(fn: (tx: Tx) => Promise<void>, serializable: boolean): Promise<void>;
  insertDuplicate(): Promise<void>;
}

type DriverFactory = () => Promise<Driver>;

const drivers: [string, DriverFactory][] = [
  [
    'prisma',
    async () => {
      const prisma = db.prisma().$extends(lockExtension());
      return {
        transaction: (fn, serializable) =>
          prisma.$transaction(
            (tx) =>
              fn({
                sum: async () => (await tx.counter.findMany({ where: { name: { in: ['a', 'b'] } } })).reduce((total, row) => total + row.value, 0),
                add: async (name, by) => void (await tx.counter.update({ where: { name }, data: { value: { increment: by } } })),
                set: async (name, value) => void (await tx.counter.update({ where: { name }, data: { value } })),
              }),
            { isolationLevel: serializable ? 'Serializable' : 'ReadCommitted', timeout: 20_000 },
          ),
        insertDuplicate: async () => void (await prisma.counter.create({ data: { name: 'a' } })),
      };
    },
  ],
  [
    'drizzle',
    async () => {
      const orm = db.drizzle({ max: 1 });
      return {
        transaction: (fn, serializable) =>
          orm.transaction(
            (tx) =>
              fn({
                sum: async () => (await tx.select().from(counters).where(inArray(counters.name, ['a', 'b']))).reduce((total, row) => total + row.value, 0),
                add: async (name, by) => void (await tx.update(counters).set({ value: sql`${counters.value} + ${by}` }).where(eq(counters.name, name))),
                set: async (name, value) => void (await tx.update(counters).set({ value }).where(eq(counters.name, name))),
              }),
            { isolationLevel: serializable ? 'serializable' : 'read committed' },
          ),
        insertDuplicate: async () => void (await orm.insert(counters).values({ name: 'a' })),
      };
    },
  ],
  [
    'pg',
    async () => {
      const client: pg.Client = await db.client();
      return {
        async transaction(fn, serializable) {
          await client.query(serializable ? 'BEGIN ISOLATION LEVEL SERIALIZABLE' : 'BEGIN');
          try {
            await fn({
              sum: async () => Number((await client.query('SELECT sum(value) AS s FROM "Counter" WHERE name IN ($1, $2)', ['a', 'b'])).rows[0].s),
              add: async (name, by) => void (await client.query('UPDATE "Counter" SET value = value + $2 WHERE name = $1', [name, by])),
              set: async (name, value) => void (await client.query('UPDATE "Counter" SET value = $2 WHERE name = $1', [name, value])),
            });
            await client.query('COMMIT');
          } catch (error) {
            await client.query('ROLLBACK');
            throw error;
          }
        },
        insertDuplicate: async () => void (await client.query(`INSERT INTO "Counter" (name) VALUES ('a')`)),
      };
    },
  ],
];

async function values(): Promise<Record<string, number>> {
  const rows = await db.query<{ name: string; value: number }>(`SELECT name, value FROM "Counter" WHERE name IN ('a', 'b') ORDER BY name`);
  return Object.fromEntries(rows.map((row) => [row.name, row.value]));
}

describe.each(drivers)('withRetry through %s', (_name, connect) => {
  beforeEach(async () => {
    await db.query(`DELETE FROM "Counter"`);
    await db.query(`INSERT INTO "Counter" (name, value) VALUES ('a', 0), ('b', 0)`);
  });

  test('recovers from a serialization failure (40001) at SERIALIZABLE', async () => {
    const writers = [await connect(), await connect()];
    const bothRead = barrier(2);
    const failures: unknown[] = [];
    const attempts = [0, 0];
    // Write skew: each reads both rows, then writes its own row from what it read. Run serially
    // the two give sums 1 and 2 (total 3); interleaved without SERIALIZABLE both would write 1.
    await Promise.all(
      writers.map((writer, index) =>
        withRetry(
          (attempt) =>
            writer.transaction(async (tx) => {
              attempts[index] = attempt;
              const sum = await tx.sum();
              if (attempt === 1) await bothRead.arrive();
              await tx.set(index === 0 ? 'a' : 'b', sum + 1);
            }, true),
          { retries: 5, onRetry: (error) => failures.push(error) },
        ),
      ),
    );
    expect(failures.length).toBeGreaterThanOrEqual(1);
    expect(failures.every((error) => isRetryable(error))).toBe(true);
    // A serialization failure, as PostgreSQL reported it through the driver (not some other retryable error).
    expect(failures.map(sqlStateOf)).toContain('40001');
    expect(attempts[0]! + attempts[1]!).toBeGreaterThanOrEqual(3);
    const final = await values();
    expect(final.a! + final.b!).toBe(3);
  });

  test('recovers from a deadlock (40P01)', async () => {
    const writers = [await connect(), await connect()];
    const bothLockedOne = barrier(2);
    const failures: unknown[] = [];
    await Promise.all(
      writers.map((writer, index) => {
        const [first, second] = index === 0 ? ['a', 'b'] : ['b', 'a'];
        return withRetry(
          (attempt) =>
            writer.transaction(async (tx) => {
              await tx.add(first!, 1);
              // Each holds one row and then asks for the other's: PostgreSQL must kill one.
              if (attempt === 1) await bothLockedOne.arrive();
              await tx.add(second!, 1);
            }, false),
          { retries: 5, onRetry: (error) => failures.push(error) },
        );
      }),
    );
    // Usually one deadlock. The retry can meet a second one: when the victim rolls back, the other
    // transaction wakes up but has not locked the freed row yet, and the victim's new attempt may
    // lock it first.
    expect(failures.length).toBeGreaterThanOrEqual(1);
    for (const failure of failures) {
      expect(isRetryable(failure)).toBe(true);
      // Prisma reports a deadlock inside an interactive transaction as its own P2034.
      expect([sqlStateOf(failure), (failure as { code?: unknown }).code]).toContain(_name === 'prisma' ? 'P2034' : '40P01');
    }
    expect(await values()).toEqual({ a: 2, b: 2 });
  });

  test('does not retry an error that a new attempt cannot fix', async () => {
    const writer = await connect();
    let attempts = 0;
    await expect(
      withRetry(
        async () => {
          attempts += 1;
          await writer.insertDuplicate();
        },
        { retries: 5 },
      ),
    ).rejects.toThrow();
    expect(attempts).toBe(1);
  });
});

describe('withRetry and busy locks', () => {
  test('retries a lock timeout only with lockTimeouts: true', async () => {
    const holder = await db.client();
    const pool = db.pool({ max: 1 });
    // ormlock maps the key [0, 42] to the two-int32 advisory lock (0, 42): the holder takes it first.
    const key: [number, number] = [0, 42];
    await holder.query('BEGIN');
    await holder.query('SELECT pg_advisory_xact_lock(0, 42)');
    let attempts = 0;
    const once = withRetry(
      async () => {
        attempts += 1;
        return $lock(pool).advisory(key, async () => 'ran', { timeout: 50 });
      },
      { retries: 5 },
    );
    await expect(once).rejects.toBeInstanceOf(LockTimeoutError);
    expect(attempts).toBe(1);

    attempts = 0;
    const retried = withRetry(
      async () => {
        attempts += 1;
        return $lock(pool).advisory(key, async () => 'ran', { timeout: 50 });
      },
      {
        retries: 5,
        lockTimeouts: true,
        onRetry: () => {
          // The first attempt timed out; free the lock so that the next one gets it.
          if (attempts === 1) void holder.query('COMMIT');
        },
        backoff: { initial: 100, max: 100 },
      },
    );
    await expect(retried).resolves.toBe('ran');
    expect(attempts).toBeGreaterThanOrEqual(2);
  });
});
