/**
 * Property-based tests (fast-check), checked against the server where there is a server-side
 * meaning: string keys against their SQL twin and against the lock PostgreSQL really takes,
 * durations against PostgreSQL's own interval arithmetic, and the Prisma where-translator on
 * hostile text (quotes, backslashes, LIKE wildcards, `$1`, non-ASCII) against Prisma's findMany.
 * test/keys.test.ts and test/prisma-where.test.ts hold the other properties of these functions.
 */
import fc from 'fast-check';
import { beforeAll, describe, expect, test } from 'vitest';
import { InvalidLockArgumentError, hashKey, parseDuration } from '../src/index.js';
import { advisoryKeysOf } from '../src/core/keys.js';
import { $lock } from '../src/pg/index.js';
import { lockExtension } from '../src/prisma/index.js';
import { useTestDatabase } from './helpers/database.js';
import { Prisma } from './helpers/models.js';

const db = useTestDatabase({ migrations: 'prisma' });

// Any code point but NUL (PostgreSQL text cannot hold it), lone surrogates included: they are
// filtered where a key must be well-formed, and are the point where it must not be.
const anyText = fc.string({ unit: 'binary', minLength: 1, maxLength: 30 }).filter((s) => !s.includes('\0'));
const keyText = anyText.filter((s) => s.isWellFormed());

const TWIN = `(('x' || left(encode(sha256(convert_to(k, 'UTF8')), 'hex'), 16))::bit(64)::bigint)::text`;

describe('string keys', () => {
  test('hashKey equals the SQL twin for arbitrary well-formed Unicode, and is the same on every call', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uniqueArray(keyText, { minLength: 1, maxLength: 40 }), async (keys) => {
        const rows = await db.query<{ twin: string }>(`SELECT ${TWIN} AS twin FROM unnest($1::text[]) WITH ORDINALITY AS t(k, n) ORDER BY n`, [keys]);
        expect(rows.map((row) => row.twin)).toEqual(keys.map((key) => hashKey(key).toString()));
        expect(keys.map((key) => hashKey(key))).toEqual(keys.map((key) => hashKey(key)));
      }),
      { numRuns: 40 },
    );
  });

  test('the lock PostgreSQL takes for a string key is the one the SQL twin names in pg_locks', async () => {
    const pool = db.pool({ max: 1 });
    await fc.assert(
      fc.asyncProperty(keyText, async (key) => {
        const client = await pool.connect();
        try {
          await client.query('BEGIN');
          await $lock(client).advisory(key);
          const { rows } = await client.query<{ held: boolean }>(
            `SELECT EXISTS (
               SELECT 1 FROM pg_locks l, LATERAL (SELECT ${TWIN.replaceAll('k,', '$1::text,')}::int8 AS h) t
                WHERE l.locktype = 'advisory' AND l.pid = pg_backend_pid() AND l.objsubid = 1 AND l.granted
                  AND l.classid::int8 = (t.h >> 32) & 4294967295 AND l.objid::int8 = t.h & 4294967295
             ) AS held`,
            [key],
          );
          expect(rows[0]?.held, JSON.stringify(key)).toBe(true);
        } finally {
          await client.query('ROLLBACK');
          client.release();
        }
      }),
      { numRuns: 40 },
    );
  });

  test('a string with a lone surrogate is refused, never hashed as U+FFFD (the key of another string)', () => {
    const lone = fc
      .tuple(fc.string({ maxLength: 5 }), fc.constantFrom('\uD800', '\uDBFF', '\uDC00', '\uDFFF'), fc.string({ maxLength: 5 }))
      .map(([a, s, b]) => `${a}${s}${b}`)
      .filter((s) => !s.isWellFormed());
    fc.assert(
      fc.property(lone, (key) => {
        expect(() => hashKey(key)).toThrow(InvalidLockArgumentError);
        expect(() => advisoryKeysOf(key)).toThrow(InvalidLockArgumentError);
      }),
    );
  });

  test('keys collide only as documented: an integer and its bigint are one key; strings, integers and pairs are apart', () => {
    fc.assert(
      fc.property(fc.maxSafeInteger(), (n) => {
        expect(advisoryKeysOf(n)).toEqual([{ kind: 'int8', value: BigInt(n), source: n }]);
        expect(advisoryKeysOf(BigInt(n))).toEqual([{ kind: 'int8', value: BigInt(n), source: BigInt(n) }]);
        // "42" the string is hashed: a different key from 42 (a 1 in 2^64 coincidence aside).
        expect(hashKey(String(n))).not.toBe(BigInt(n));
      }),
    );
    fc.assert(
      fc.property(fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }), fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }), (a, b) => {
        expect(advisoryKeysOf([a, b]).map((k) => k.kind)).toEqual(['pair']);
      }),
    );
    const keys = fc.sample(fc.uniqueArray(keyText, { minLength: 5_000, maxLength: 5_000 }), 1)[0]!;
    expect(new Set(keys.map((key) => hashKey(key))).size).toBe(keys.length);
  });
});

describe('durations', () => {
  const units = { ms: 'milliseconds', s: 'seconds', m: 'minutes', h: 'hours' } as const;
  // Up to three decimals, so that every value is a whole number of microseconds, as PostgreSQL keeps it.
  const amount = fc.tuple(fc.integer({ min: 0, max: 3_000_000 }), fc.option(fc.integer({ min: 0, max: 999 }), { nil: undefined })).map(([whole, fraction]) =>
    fraction === undefined ? String(whole) : `${whole}.${String(fraction).padStart(3, '0')}`,
  );

  test("'<n><unit>' means what PostgreSQL's interval of n units means, rounded up to whole ms, or is refused as out of range", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.tuple(amount, fc.constantFrom(...(Object.keys(units) as (keyof typeof units)[]))), { minLength: 1, maxLength: 30 }), async (pairs) => {
        const rows = await db.query<{ ms: string }>(
          // Whole microseconds first: before PostgreSQL 14, extract() answers in float8.
          `SELECT ceil(round((extract(epoch FROM (a || ' ' || u)::interval) * 1000000)::numeric) / 1000)::text AS ms
             FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS t(a, u, n) ORDER BY n`,
          [pairs.map(([a]) => a), pairs.map(([, unit]) => units[unit])],
        );
        pairs.forEach(([a, unit], i) => {
          const server = Number(rows[i]!.ms);
          const input = `${a}${unit}`;
          if (server > 2 ** 31 - 1) expect(() => parseDuration(input, 'timeout'), input).toThrow(InvalidLockArgumentError);
          else expect(parseDuration(input, 'timeout'), input).toBe(server);
        });
      }),
      { numRuns: 60 },
    );
  });

  test('any other input is a whole, bounded number of ms or an InvalidLockArgumentError, never NaN or another error', () => {
    const junk = fc.oneof(
      fc.string({ maxLength: 12 }),
      fc.string({ unit: fc.constantFrom('1', '0', '.', '-', '+', 'e', 'm', 's', 'h', ' ', 'x', 'n'), maxLength: 8 }),
      fc.double(),
      fc.anything(),
    );
    fc.assert(
      fc.property(junk, (value) => {
        let parsed: number | undefined;
        try {
          parsed = parseDuration(value, 'timeout');
        } catch (error) {
          expect(error).toBeInstanceOf(InvalidLockArgumentError);
          return;
        }
        expect(Number.isSafeInteger(parsed)).toBe(true);
        expect(parsed).toBeGreaterThanOrEqual(0);
        expect(parsed).toBeLessThanOrEqual(2 ** 31 - 1);
      }),
      { numRuns: 2_000 },
    );
  });
});

describe('Prisma where translator on hostile text', () => {
  const makeClient = () => db.prisma().$extends(lockExtension());
  let prisma: ReturnType<typeof makeClient>;
  beforeAll(() => {
    prisma = makeClient();
  });

  // Characters that break naive SQL or LIKE handling, and a case pair with a non-ASCII letter.
  const hostile = fc.string({ unit: fc.constantFrom("'", '"', '\\', '%', '_', ';', '$1', '-', 'a', 'A', 'é', 'É', ' '), maxLength: 3 });
  const filter = fc.oneof(
    hostile,
    hostile.map((v) => ({ equals: v })),
    hostile.map((v) => ({ not: v })),
    fc.array(hostile, { maxLength: 3 }).map((v) => ({ in: v })),
    fc.tuple(fc.constantFrom('contains', 'startsWith', 'endsWith', 'equals', 'lt', 'gte'), hostile, fc.constantFrom(undefined, 'insensitive')).map(([op, v, mode]) =>
      mode === undefined ? { [op]: v } : { [op]: v, mode },
    ),
  );

  test('every accepted filter on hostile text selects exactly the rows findMany returns', async () => {
    let compared = 0;
    let discriminating = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(hostile, { minLength: 3, maxLength: 8 }), fc.array(filter, { minLength: 1, maxLength: 6 }), async (owners, filters) => {
        await db.query('TRUNCATE accounts RESTART IDENTITY');
        await prisma.account.createMany({ data: owners.map((owner) => ({ owner, balance: '1.00' })) });
        for (const owner of filters) {
          let expected: unknown[];
          const locked = () => prisma.$transaction((tx) => tx.$lock.row('Account', { where: { owner } as never, orderBy: { id: 'asc' } }));
          try {
            expected = await prisma.account.findMany({ where: { owner } as never, orderBy: { id: 'asc' } });
          } catch (error) {
            if (error instanceof Prisma.PrismaClientValidationError) continue;
            // Prisma does not escape a backslash in LIKE patterns: `endsWith: '\\'` is PostgreSQL's
            // 22025 ("LIKE pattern must not end with escape character"). The lock must fail the same way.
            const code = (error as { meta?: { driverAdapterError?: { cause?: { originalCode?: string } } } }).meta?.driverAdapterError?.cause?.originalCode;
            if (code !== '22025') throw error;
            await expect(locked(), JSON.stringify(owner)).rejects.toThrow(/22025/);
            continue;
          }
          const actual = await locked();
          expect(actual, JSON.stringify(owner)).toEqual(expected);
          compared += 1;
          if (expected.length > 0 && expected.length < owners.length) discriminating += 1;
        }
      }),
      { numRuns: 60 },
    );
    // Enough comparisons that split the rows, or the property proves little.
    expect(compared).toBeGreaterThan(100);
    expect(discriminating / compared).toBeGreaterThan(0.15);
    expect(await db.query(`SELECT to_regclass('accounts') IS NOT NULL AS ok`)).toEqual([{ ok: true }]);
  });
});
