/**
 * Drizzle `updateVersioned` / `deleteVersioned` against a real PostgreSQL: the compare-and-swap,
 * StaleVersionError's reasons, transactions, a custom version column, and N concurrent writers on
 * separate connections losing no update (while plain read-modify-write does).
 */
import { eq, sql } from 'drizzle-orm';
import { drizzle } from 'drizzle-orm/node-postgres';
import { describe, expect, test } from 'vitest';
import { deleteVersioned, updateVersioned } from '../src/drizzle/index.js';
import { InvalidLockArgumentError, StaleVersionError, withRetry } from '../src/index.js';
import { barrier } from './helpers/barrier.js';
import { useTestDatabase } from './helpers/database.js';
import { accounts, counters, jobs } from './helpers/models.js';

const db = useTestDatabase({ migrations: 'drizzle' });

const WRITERS = 8;
const INCREMENTS = 5;

async function counterRow(name: string): Promise<{ value: number; version: number } | undefined> {
  const [row] = await db.query<{ value: number; version: number }>('SELECT value, version FROM "Counter" WHERE name = $1', [name]);
  return row;
}

async function staleOf(promise: Promise<unknown>): Promise<StaleVersionError> {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(StaleVersionError);
  return error as StaleVersionError;
}

describe('drizzle updateVersioned', () => {
  test('updates when the version matches, increments it in the same statement, returns the row', async () => {
    const orm = db.drizzle();
    await orm.insert(counters).values({ name: 'cas', value: 1, version: 3 });
    const updated = await updateVersioned(orm, counters, { where: eq(counters.name, 'cas'), version: 3, set: { value: 2 } });
    expect(updated).toEqual({ name: 'cas', value: 2, version: 4 });
    expect(await counterRow('cas')).toEqual({ value: 2, version: 4 });

    const [account] = await orm.insert(accounts).values({ owner: 'ann', balance: '10.00' }).returning();
    const next = await updateVersioned(orm, accounts, {
      where: eq(accounts.id, account!.id),
      version: account!.version,
      set: { balance: sql`${accounts.balance} + 5` },
    });
    expect(next).toMatchObject({ id: account!.id, owner: 'ann', balance: '15.00', version: 1 });
    expect(next.updatedAt).toBeInstanceOf(Date);
  });

  test('sends one UPDATE that compares and increments the version; a stale one reads the row once', async () => {
    const queries: string[] = [];
    const orm = drizzle({ client: db.pool({ max: 1 }), logger: { logQuery: (query) => queries.push(query) } });
    await orm.insert(counters).values({ name: 'sql' });
    queries.length = 0;
    await updateVersioned(orm, counters, { where: eq(counters.name, 'sql'), version: 0, set: { value: 1 } });
    expect(queries).toEqual([
      'update "Counter" set "value" = $1, "version" = "Counter"."version" + 1 where ("Counter"."name" = $2 and "Counter"."version" = $3) returning "name", "value", "version"',
    ]);
    queries.length = 0;
    await staleOf(updateVersioned(orm, counters, { where: eq(counters.name, 'sql'), version: 0, set: { value: 1 } }));
    expect(queries.map((query) => query.split(' ')[0])).toEqual(['update', 'select']);
    queries.length = 0;
    await deleteVersioned(orm, counters, { where: eq(counters.name, 'sql'), version: 1 });
    expect(queries).toEqual(['delete from "Counter" where ("Counter"."name" = $1 and "Counter"."version" = $2) returning "name", "value", "version"']);
  });

  test('a stale version writes nothing and says which version the row has', async () => {
    const orm = db.drizzle();
    await orm.insert(counters).values({ name: 'stale', value: 10, version: 7 });
    const error = await staleOf(updateVersioned(orm, counters, { where: eq(counters.name, 'stale'), version: 6, set: { value: 99 } }));
    expect(error).toMatchObject({ code: 'STALE_VERSION', reason: 'version-mismatch', expected: 6, actual: 7, table: 'Counter' });
    expect(await counterRow('stale')).toEqual({ value: 10, version: 7 });
  });

  test('a deleted row is reported as gone', async () => {
    const orm = db.drizzle();
    const error = await staleOf(updateVersioned(orm, counters, { where: eq(counters.name, 'never-there'), version: 0, set: { value: 1 } }));
    expect(error).toMatchObject({ reason: 'gone', expected: 0, actual: undefined, table: 'Counter' });
  });

  test('deleteVersioned deletes only at the expected version', async () => {
    const orm = db.drizzle();
    await orm.insert(counters).values({ name: 'del', value: 1, version: 2 });
    expect(await staleOf(deleteVersioned(orm, counters, { where: eq(counters.name, 'del'), version: 1 }))).toMatchObject({
      reason: 'version-mismatch',
      actual: 2,
    });
    expect(await counterRow('del')).toBeDefined();
    expect(await deleteVersioned(orm, counters, { where: eq(counters.name, 'del'), version: 2 })).toEqual({ name: 'del', value: 1, version: 2 });
    expect(await counterRow('del')).toBeUndefined();
    expect(await staleOf(deleteVersioned(orm, counters, { where: eq(counters.name, 'del'), version: 2 }))).toMatchObject({ reason: 'gone' });
  });

  test('runs inside the transaction it is given', async () => {
    const orm = db.drizzle();
    await orm.insert(counters).values({ name: 'tx', value: 1 });
    const rolledBack = new Error('roll back');
    await expect(
      orm.transaction(async (tx) => {
        const row = await updateVersioned(tx, counters, { where: eq(counters.name, 'tx'), version: 0, set: { value: 2 } });
        expect(row.version).toBe(1);
        expect(await counterRow('tx')).toEqual({ value: 1, version: 0 });
        await staleOf(updateVersioned(tx, counters, { where: eq(counters.name, 'tx'), version: 0, set: { value: 3 } }));
        const [seen] = await tx.select().from(counters).where(eq(counters.name, 'tx'));
        expect(seen?.value).toBe(2);
        throw rolledBack;
      }),
    ).rejects.toBe(rolledBack);
    expect(await counterRow('tx')).toEqual({ value: 1, version: 0 });
  });

  test('versionColumn picks another integer column', async () => {
    const orm = db.drizzle();
    const [job] = await orm.insert(jobs).values({}).returning();
    const claimed = await updateVersioned(orm, jobs, { where: eq(jobs.id, job!.id), version: 0, versionColumn: jobs.attempts, set: { status: 'running' } });
    expect(claimed).toMatchObject({ status: 'running', attempts: 1 });
    expect(
      await staleOf(updateVersioned(orm, jobs, { where: eq(jobs.id, job!.id), version: 0, versionColumn: jobs.attempts, set: { status: 'x' } })),
    ).toMatchObject({ reason: 'version-mismatch', actual: 1, table: 'jobs' });
  });

  test('refuses tables without a version column and a version inside set, before any SQL', async () => {
    const orm = db.drizzle();
    const loose = updateVersioned as unknown as (...args: unknown[]) => Promise<unknown>;
    await expect(loose(orm, jobs, { where: eq(jobs.id, 1n), version: 0, set: { status: 'x' } })).rejects.toThrow(InvalidLockArgumentError);
    await expect(loose(orm, counters, { where: eq(counters.name, 'x'), version: 0, set: { version: 5 } })).rejects.toThrow(/set.version/);
    await expect(loose(orm, counters, { where: eq(counters.name, 'x'), version: '0', set: {} })).rejects.toThrow(InvalidLockArgumentError);
    await expect(loose(orm, counters, { where: eq(counters.name, 'x'), version: 0, versionColumn: jobs.attempts, set: {} })).rejects.toThrow(
      /versionColumn/,
    );
  });
});

describe(`${WRITERS} concurrent drizzle writers × ${INCREMENTS} increments, each on its own connection`, () => {
  test('plain read-modify-write loses updates', async () => {
    await db.drizzle().insert(counters).values({ name: 'lossy' });
    const writers = Array.from({ length: WRITERS }, () => db.drizzle({ max: 1 }));
    const everyoneRead = barrier(WRITERS);
    await Promise.all(
      writers.map(async (orm) => {
        for (let i = 0; i < INCREMENTS; i += 1) {
          const [row] = await orm.select().from(counters).where(eq(counters.name, 'lossy'));
          if (i === 0) await everyoneRead.arrive();
          await orm.update(counters).set({ value: row!.value + 1 }).where(eq(counters.name, 'lossy'));
        }
      }),
    );
    expect((await counterRow('lossy'))?.value).toBeLessThan(WRITERS * INCREMENTS);
  });

  test('updateVersioned + withRetry ends at exactly N×K', async () => {
    await db.drizzle().insert(counters).values({ name: 'safe' });
    const writers = Array.from({ length: WRITERS }, () => db.drizzle({ max: 1 }));
    const everyoneRead = barrier(WRITERS);
    let conflicts = 0;
    await Promise.all(
      writers.map(async (orm) => {
        for (let i = 0; i < INCREMENTS; i += 1) {
          await withRetry(
            async (attempt) => {
              const [row] = await orm.select().from(counters).where(eq(counters.name, 'safe'));
              if (i === 0 && attempt === 1) await everyoneRead.arrive();
              await updateVersioned(orm, counters, { where: eq(counters.name, 'safe'), version: row!.version, set: { value: row!.value + 1 } });
            },
            { retries: 1_000, backoff: { initial: 1, max: 20 }, onRetry: () => (conflicts += 1) },
          );
        }
      }),
    );
    expect(await counterRow('safe')).toEqual({ value: WRITERS * INCREMENTS, version: WRITERS * INCREMENTS });
    expect(conflicts).toBeGreaterThanOrEqual(WRITERS - 1);
  });
});
