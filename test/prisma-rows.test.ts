/**
 * The rows `$lock.claim` and `$lock.row` return on Prisma are the rows `findMany` returns, for
 * every scalar type Prisma maps on PostgreSQL and its native variants (`@db.Money`, `@db.Time`,
 * `@db.Timestamptz`, `@db.Date` …), for scalar lists, and for NULLs; whichever way the statement
 * went: through Prisma (`$queryRawUnsafe`, an adapter given a connection string) or, for a claim
 * outside a transaction with an adapter given a `pg.Pool`, on that pool itself.
 */
import { beforeEach, describe, expect, test } from 'vitest';
import { lockExtension } from '../src/prisma/index.js';
import { useTestDatabase } from './helpers/database.js';

const db = useTestDatabase({ migrations: 'prisma' });

// One row of extremes, one of ordinary values, one of NULLs (and a negative amount of money).
const SAMPLES = `
  INSERT INTO samples (flag, ratio, real, small, big, amount, price, kind, uid, data, doc, at, at_tz, day, clock, clock_tz, bytes) VALUES
    (true, 1.1, 1.1, -32768, 9007199254740993, 12345678901234567890.0123456789, 12.34, 'large', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
     '{"a": [1, 2.5, "x", {"b": null}]}', '{"b": "é\\u0000"}', '2026-12-04 17:50:00.123456', '2026-12-04 17:50:00.123456+02',
     '2026-12-04', '17:50:00.123456', '17:50:00.123456+02', '\\xdeadbeef'),
    (false, -0.5, 3.25, 7, -1, 0.5, 123.45, 'small', NULL, '[1, 2]', '"text"', '1999-12-31 23:59:59.999', '2000-01-01 00:00:00.5-05',
     '1970-01-01', '00:00:00', '23:59:59.999999-11', '\\x'),
    (false, 0, 0, 0, 0, 0, -12.34, 'small', NULL, NULL, NULL, '2026-01-01 00:00:00', NULL, NULL, NULL, NULL, NULL)`;
const LISTS = `
  INSERT INTO sample_lists (tags, amounts, moments, kinds) VALUES
    ('{a,"b c"}', '{1.5,2.25,-0.0000000001}', '{"2026-12-04 17:50:00.123","1970-01-01 00:00:00"}', '{small,large}'),
    (NULL, NULL, NULL, NULL),
    ('{}', '{}', '{}', '{}')`;

/** A client with ormlock's extension, and the statements Prisma itself runs (its 'query' events). */
function lockedClient(pool: object | undefined) {
  const base = db.prisma({ pool, logQueries: true });
  const statements: string[] = [];
  (base as unknown as { $on(event: 'query', listener: (event: { query: string }) => void): void }).$on('query', (event) => void statements.push(event.query));
  return { prisma: base.$extends(lockExtension()), statements };
}

beforeEach(async () => {
  await db.query('TRUNCATE samples, sample_lists RESTART IDENTITY');
  await db.query(SAMPLES);
  await db.query(LISTS);
});

describe.each([
  { adapter: 'a connection string', pool: undefined },
  { adapter: 'a pg.Pool', pool: {} },
])('Prisma, adapter given $adapter', ({ pool }) => {
  test('claim returns the rows findMany returns, one by one and together, for every scalar type', async () => {
    const { prisma, statements } = lockedClient(pool);
    const found = await prisma.sample.findMany({ orderBy: { id: 'asc' } });
    expect(found).toHaveLength(3);
    for (const row of found) {
      statements.length = 0;
      expect(await prisma.$lock.claim('Sample', { where: { id: row.id }, set: { status: 'pending' } })).toStrictEqual([row]);
      // With a pg.Pool the claim runs on the pool, not through Prisma.
      expect(statements).toHaveLength(pool === undefined ? 1 : 0);
    }
    expect(await prisma.$lock.claim('Sample', { orderBy: { id: 'asc' }, take: 3, set: { status: 'pending' } })).toStrictEqual(found);
    // In a transaction (row locks, claims without set) every statement goes through Prisma.
    const locked = await prisma.$transaction((tx) => tx.$lock.row('Sample', { orderBy: { id: 'asc' } }));
    expect(locked).toStrictEqual(found);
  });

  test('scalar lists: NULL reads as [], elements with the field type, through Prisma either way', async () => {
    const { prisma, statements } = lockedClient(pool);
    const found = await prisma.sampleList.findMany({ orderBy: { id: 'asc' } });
    expect(found[1]).toMatchObject({ tags: [], amounts: [], moments: [], kinds: [] });
    statements.length = 0;
    expect(await prisma.$lock.claim('SampleList', { orderBy: { id: 'asc' }, take: 3, set: { status: 'pending' } })).toStrictEqual(found);
    // node-postgres parses list elements unlike Prisma: lists always go through Prisma.
    expect(statements).toHaveLength(1);
    expect(await prisma.$transaction((tx) => tx.$lock.row('SampleList', { orderBy: { id: 'asc' } }))).toStrictEqual(found);
  });

  test('set writes what Prisma writes: the claimed row reads back with findMany as claim returned it', async () => {
    const prisma = db.prisma({ pool }).$extends(lockExtension());
    const values = {
      flag: true,
      ratio: 2.5,
      big: 123456789012345678n,
      amount: '-1.0000000001',
      price: 99.99,
      kind: 'large' as const,
      uid: 'b0eebc99-9c0b-4ef8-bb6d-6bb9bd380a22',
      data: { nested: [1, { deep: 'é' }] },
      at: new Date('2031-05-06T07:08:09.123Z'),
      atTz: new Date('2031-05-06T07:08:09.456Z'),
      day: new Date('2031-05-06T00:00:00.000Z'),
      bytes: new Uint8Array([0, 1, 254, 255]),
    };
    const [claimed] = await prisma.$lock.claim('Sample', { where: { id: 3 }, set: values });
    const [read] = await prisma.sample.findMany({ where: { id: 3 } });
    expect(claimed).toStrictEqual(read);
    expect(read).toMatchObject({ ...values, amount: expect.anything(), price: expect.anything() });
    expect(String(read!.amount)).toBe('-1.0000000001');
    expect(String(read!.price)).toBe('99.99');
  });
});
