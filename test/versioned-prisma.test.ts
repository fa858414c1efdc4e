/**
 * `prisma.<model>.updateVersioned` / `deleteVersioned` against a real PostgreSQL: the
 * compare-and-swap, StaleVersionError's reasons, transactions, per-model version fields, and
 * N concurrent writers on separate connections losing no update (while plain read-modify-write does).
 */
import { PrismaPg } from '@prisma/adapter-pg';
import { describe, expect, test } from 'vitest';
import { InvalidLockArgumentError, StaleVersionError, withRetry } from '../src/index.js';
import { lockExtension } from '../src/prisma/index.js';
import { barrier } from './helpers/barrier.js';
import { useTestDatabase } from './helpers/database.js';
import { PrismaClient } from './helpers/models.js';

const db = useTestDatabase({ migrations: 'prisma' });

const WRITERS = 8;
const INCREMENTS = 5;

function client() {
  return db.prisma().$extends(lockExtension());
}

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

describe('prisma updateVersioned', () => {
  test('updates when the version matches, increments it in the same statement, returns the row', async () => {
    const prisma = client();
    await prisma.counter.create({ data: { name: 'cas', value: 1, version: 3 } });
    const updated = await prisma.counter.updateVersioned({ where: { name: 'cas' }, version: 3, data: { value: 2 } });
    expect(updated).toEqual({ name: 'cas', value: 2, version: 4 });
    expect(await counterRow('cas')).toEqual({ value: 2, version: 4 });

    const account = await prisma.account.create({ data: { owner: 'ann', balance: '10.00' } });
    const selected = await prisma.account.updateVersioned({
      where: { id: account.id },
      version: account.version,
      data: { balance: { increment: 5 } },
      select: { balance: true, version: true },
    });
    expect(selected.balance.toFixed(2)).toBe('15.00');
    expect(selected.version).toBe(1);
  });

  test('sends one UPDATE that compares and increments the version; a stale one reads the row once', async () => {
    // A client of our own for its query log; same adapter settings as db.prisma() (schema variant included).
    const adapter = new PrismaPg({ connectionString: db.url }, db.schema === 'public' ? undefined : { schema: db.schema });
    const base = new PrismaClient({ adapter, log: [{ emit: 'event', level: 'query' }] });
    const queries: string[] = [];
    base.$on('query', (event) => queries.push(event.query));
    const prisma = base.$extends(lockExtension());
    try {
      await prisma.counter.create({ data: { name: 'sql' } });
      queries.length = 0;
      await prisma.counter.updateVersioned({ where: { name: 'sql' }, version: 0, data: { value: 1 } });
      expect(queries).toHaveLength(1);
      expect(queries[0]).toMatch(/^UPDATE .*"version" = \(.*"version" \+ \$\d+\) WHERE \(.*"name" = \$\d+ AND .*"version" = \$\d+\) RETURNING/);
      queries.length = 0;
      await staleOf(prisma.counter.updateVersioned({ where: { name: 'sql' }, version: 0, data: { value: 1 } }));
      expect(queries.map((query) => query.split(' ')[0])).toEqual(['UPDATE', 'SELECT']);
      queries.length = 0;
      await prisma.counter.deleteVersioned({ where: { name: 'sql' }, version: 1 });
      expect(queries).toHaveLength(1);
      expect(queries[0]).toMatch(/^DELETE FROM .* WHERE \(.*"name" = \$\d+ AND .*"version" = \$\d+\) RETURNING/);
    } finally {
      await base.$disconnect();
    }
  });

  test('a stale version writes nothing and says which version the row has', async () => {
    const prisma = client();
    await prisma.counter.create({ data: { name: 'stale', value: 10, version: 7 } });
    const error = await staleOf(prisma.counter.updateVersioned({ where: { name: 'stale' }, version: 6, data: { value: 99 } }));
    expect(error).toMatchObject({ code: 'STALE_VERSION', reason: 'version-mismatch', expected: 6, actual: 7, model: 'Counter' });
    expect(await counterRow('stale')).toEqual({ value: 10, version: 7 });
  });

  test('a deleted row is reported as gone', async () => {
    const prisma = client();
    await prisma.counter.create({ data: { name: 'gone', value: 1 } });
    await prisma.counter.delete({ where: { name: 'gone' } });
    const error = await staleOf(prisma.counter.updateVersioned({ where: { name: 'gone' }, version: 0, data: { value: 2 } }));
    expect(error).toMatchObject({ reason: 'gone', expected: 0, actual: undefined, model: 'Counter' });
  });

  test('deleteVersioned deletes only at the expected version', async () => {
    const prisma = client();
    await prisma.counter.create({ data: { name: 'del', value: 1, version: 2 } });
    const mismatch = await staleOf(prisma.counter.deleteVersioned({ where: { name: 'del' }, version: 1 }));
    expect(mismatch).toMatchObject({ reason: 'version-mismatch', expected: 1, actual: 2 });
    expect(await counterRow('del')).toBeDefined();
    expect(await prisma.counter.deleteVersioned({ where: { name: 'del' }, version: 2 })).toEqual({ name: 'del', value: 1, version: 2 });
    expect(await counterRow('del')).toBeUndefined();
    expect(await staleOf(prisma.counter.deleteVersioned({ where: { name: 'del' }, version: 2 }))).toMatchObject({ reason: 'gone' });
  });

  test('runs inside the interactive transaction it is called on', async () => {
    const prisma = client();
    await prisma.counter.create({ data: { name: 'tx', value: 1 } });
    const rolledBack = new Error('roll back');
    await expect(
      prisma.$transaction(async (tx) => {
        const row = await tx.counter.updateVersioned({ where: { name: 'tx' }, version: 0, data: { value: 2 } });
        expect(row.version).toBe(1);
        // Another connection does not see the uncommitted write: it happened in this transaction.
        expect(await counterRow('tx')).toEqual({ value: 1, version: 0 });
        // A stale version inside a transaction leaves it usable.
        await staleOf(tx.counter.updateVersioned({ where: { name: 'tx' }, version: 0, data: { value: 3 } }));
        expect((await tx.counter.findUniqueOrThrow({ where: { name: 'tx' } })).value).toBe(2);
        throw rolledBack;
      }),
    ).rejects.toBe(rolledBack);
    expect(await counterRow('tx')).toEqual({ value: 1, version: 0 });
  });

  test('uses the per-model version field from lockExtension({ versionField })', async () => {
    const prisma = db.prisma().$extends(lockExtension({ versionField: { Counter: 'value' } }));
    await prisma.counter.create({ data: { name: 'custom', value: 5, version: 100 } });
    const row = await prisma.counter.updateVersioned({ where: { name: 'custom' }, version: 5, data: { version: 200 } });
    expect(row).toEqual({ name: 'custom', value: 6, version: 200 });
    expect(await staleOf(prisma.counter.updateVersioned({ where: { name: 'custom' }, version: 5, data: {} }))).toMatchObject({ actual: 6 });
  });

  test('adds the methods only to models with a version field; refuses a version inside data, before any SQL', async () => {
    const prisma = client();
    const untyped = prisma.job as unknown as { updateVersioned?: unknown; deleteVersioned?: unknown };
    expect(untyped.updateVersioned).toBeUndefined();
    expect(untyped.deleteVersioned).toBeUndefined();
    expect(typeof prisma.counter.updateVersioned).toBe('function');
    expect(() => db.prisma().$extends(lockExtension({ versionField: { Job: 'status' } }))).toThrow(/no Int or BigInt field "status"/);
    const counters = prisma.counter as unknown as { updateVersioned(args: unknown): Promise<unknown> };
    await expect(counters.updateVersioned({ where: { name: 'x' }, version: 0, data: { version: 5 } })).rejects.toThrow(/data.version/);
    await expect(counters.updateVersioned({ where: { name: 'x' }, version: '0', data: {} })).rejects.toThrow(InvalidLockArgumentError);
    expect(() => db.prisma().$extends(lockExtension({ versionField: { Countr: 'version' } }))).toThrow(/no model Countr/);
  });
});

describe(`${WRITERS} concurrent prisma writers × ${INCREMENTS} increments, each on its own connection`, () => {
  test('plain read-modify-write loses updates', async () => {
    const setup = client();
    await setup.counter.create({ data: { name: 'lossy' } });
    const clients = Array.from({ length: WRITERS }, client);
    const everyoneRead = barrier(WRITERS);
    await Promise.all(
      clients.map(async (prisma) => {
        for (let i = 0; i < INCREMENTS; i += 1) {
          const row = await prisma.counter.findUniqueOrThrow({ where: { name: 'lossy' } });
          // In the first round every writer reads before anyone writes: they all read the same value.
          if (i === 0) await everyoneRead.arrive();
          await prisma.counter.update({ where: { name: 'lossy' }, data: { value: row.value + 1 } });
        }
      }),
    );
    const final = await counterRow('lossy');
    expect(final?.value).toBeLessThan(WRITERS * INCREMENTS);
  });

  test('updateVersioned + withRetry ends at exactly N×K', async () => {
    const setup = client();
    await setup.counter.create({ data: { name: 'safe' } });
    const clients = Array.from({ length: WRITERS }, client);
    const everyoneRead = barrier(WRITERS);
    let conflicts = 0;
    await Promise.all(
      clients.map(async (prisma) => {
        for (let i = 0; i < INCREMENTS; i += 1) {
          await withRetry(
            async (attempt) => {
              const row = await prisma.counter.findUniqueOrThrow({ where: { name: 'safe' } });
              if (i === 0 && attempt === 1) await everyoneRead.arrive();
              await prisma.counter.updateVersioned({ where: { name: 'safe' }, version: row.version, data: { value: row.value + 1 } });
            },
            { retries: 1_000, backoff: { initial: 1, max: 20 }, onRetry: () => (conflicts += 1) },
          );
        }
      }),
    );
    expect(await counterRow('safe')).toEqual({ value: WRITERS * INCREMENTS, version: WRITERS * INCREMENTS });
    // The same race as the lossy test happened: in the first round at least N-1 writers were stale.
    expect(conflicts).toBeGreaterThanOrEqual(WRITERS - 1);
  });
});
