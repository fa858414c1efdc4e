/**
 * Property-based tests (fast-check), checked against the server where there is a server-side
 * meaning: string keys against their SQL twin and against the lock PostgreSQL really takes,
 * durations against PostgreSQL's own interval arithmetic, and the Prisma where-translator on
 * hostile text (quotes, backslashes, LIKE wildcards, `$1`, non-ASCII) and on generated relation
 * filters (to-one and to-many, nested, under NOT) against Prisma's findMany.
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
  // Filters on random text rarely match any row, so half the values are a piece of one of the
  // rows' owners: those are the filters that split the rows, and the ones a translator gets wrong.
  const filtersOn = (owners: string[]) => {
    const piece = fc
      .tuple(fc.constantFrom(...owners), fc.nat(), fc.nat())
      .map(([owner, a, b]) => {
        const [from, to] = [a % (owner.length + 1), b % (owner.length + 1)].sort((x, y) => x - y);
        return owner.slice(from, to);
      });
    const value = fc.oneof(hostile, piece);
    const filter = fc.oneof(
      value,
      value.map((v) => ({ equals: v })),
      value.map((v) => ({ not: v })),
      fc.array(value, { maxLength: 3 }).map((v) => ({ in: v })),
      fc.tuple(fc.constantFrom('contains', 'startsWith', 'endsWith', 'equals', 'lt', 'gte'), value, fc.constantFrom(undefined, 'insensitive')).map(([op, v, mode]) =>
        mode === undefined ? { [op]: v } : { [op]: v, mode },
      ),
    );
    return fc.array(filter, { minLength: 1, maxLength: 6 });
  };
  const scenario = fc.array(hostile, { minLength: 3, maxLength: 8 }).chain((owners) => fc.tuple(fc.constant(owners), filtersOn(owners)));

  test('every accepted filter on hostile text selects exactly the rows findMany returns', async () => {
    let compared = 0;
    let discriminating = 0;
    await fc.assert(
      fc.asyncProperty(scenario, async ([owners, filters]) => {
        await db.query('TRUNCATE accounts RESTART IDENTITY CASCADE');
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
    expect(discriminating / compared).toBeGreaterThan(0.2);
    expect(await db.query(`SELECT to_regclass('accounts') IS NOT NULL AS ok`)).toEqual([{ ok: true }]);
  });
});

describe('Prisma where translator on relation filters', () => {
  const makeClient = () => db.prisma().$extends(lockExtension());
  let prisma: ReturnType<typeof makeClient>;
  beforeAll(() => {
    prisma = makeClient();
  });

  type Model = 'Account' | 'Membership' | 'Transfer' | 'Refund';
  const text = fc.constantFrom('ann', "o'k", 'Ann', '%', 'é');
  const id = fc.integer({ min: 1, max: 5 });
  const textFilter = fc.oneof(text, text.map((v) => ({ not: v })), fc.array(text, { maxLength: 2 }).map((v) => ({ in: v })), text.map((v) => ({ contains: v, mode: 'insensitive' })));
  const idFilter = fc.oneof(id, id.map((v) => ({ gt: v })), id.map((v) => ({ not: v })), fc.array(id, { maxLength: 2 }).map((v) => ({ in: v })));
  const nullableId = fc.oneof(idFilter, fc.constant(null), fc.constant({ not: null }), fc.integer({ min: 1, max: 2 }).map((v) => ({ not: v })));

  // Scalar filters, to-one relations (required or optional) and to-many relations of each model.
  const shape: Record<Model, { scalars: Record<string, fc.Arbitrary<unknown>>; toOne: Record<string, [Model, boolean]>; toMany: Record<string, Model> }> = {
    Account: { scalars: { id: idFilter, owner: textFilter }, toOne: {}, toMany: { outgoing: 'Transfer', incoming: 'Transfer' } },
    Membership: { scalars: { userId: idFilter, role: textFilter }, toOne: {}, toMany: { approvals: 'Transfer' } },
    Transfer: {
      scalars: { id: idFilter, status: textFilter, approverOrgId: nullableId, approverUserId: nullableId },
      toOne: { fromAccount: ['Account', false], toAccount: ['Account', false], approver: ['Membership', true], refund: ['Refund', true] },
      toMany: {},
    },
    Refund: { scalars: { reason: textFilter }, toOne: { transfer: ['Transfer', false] }, toMany: {} },
  };

  const wheres = fc.letrec<Record<Model, Record<string, unknown>>>((tie) => {
    const whereOf = (model: Model): fc.Arbitrary<Record<string, unknown>> => {
      const { scalars, toOne, toMany } = shape[model];
      const scalar = fc.oneof(...Object.entries(scalars).map(([key, filter]) => ({ arbitrary: filter.map((f) => ({ [key]: f })), weight: key.startsWith('approver') ? 3 : 1 })));
      const related = (target: Model) => tie(target) as fc.Arbitrary<Record<string, unknown>>;
      const relations = [
        ...Object.entries(toOne).map(([key, [target, optional]]) =>
          fc
            .oneof(
              related(target),
              related(target).map((w) => ({ is: w })),
              related(target).map((w) => ({ isNot: w })),
              ...(optional ? [fc.constant(null), fc.constant({ is: null }), fc.constant({ isNot: null })] : []),
            )
            .map((f) => ({ [key]: f })),
        ),
        ...Object.entries(toMany).map(([key, target]) =>
          fc.tuple(fc.constantFrom('some', 'every', 'none'), related(target)).map(([op, w]) => ({ [key]: { [op]: w } })),
        ),
      ];
      const self = tie(model) as fc.Arbitrary<Record<string, unknown>>;
      // NOT and relations weigh more: NULL inside a to-one relation filter shows only under NOT.
      return fc.oneof(
        { depthSize: 'small', withCrossShrink: true, maxDepth: 4 },
        { arbitrary: scalar, weight: 2 },
        ...relations.map((arbitrary) => ({ arbitrary, weight: 2 })),
        { arbitrary: fc.record({ AND: fc.array(self, { maxLength: 2 }) }), weight: 1 },
        { arbitrary: fc.record({ OR: fc.array(self, { maxLength: 2 }) }), weight: 1 },
        { arbitrary: fc.record({ NOT: self }), weight: 3 },
      );
    };
    return { Account: whereOf('Account'), Membership: whereOf('Membership'), Transfer: whereOf('Transfer'), Refund: whereOf('Refund') };
  });

  const data = fc.record({
    owners: fc.array(text, { minLength: 3, maxLength: 4 }),
    roles: fc.array(text, { minLength: 2, maxLength: 2 }),
    transfers: fc.array(
      fc.record({
        from: fc.integer({ min: 1, max: 3 }),
        to: fc.integer({ min: 1, max: 3 }),
        status: text,
        // (1, 1), (1, 2), none, or half a key (the composite foreign key is then not checked).
        approver: fc.constantFrom<[number | null, number | null]>([1, 1], [1, 2], [null, null], [null, 1], [1, null]),
        refund: fc.option(text, { nil: undefined }),
      }),
      { minLength: 2, maxLength: 6 },
    ),
  });

  test('every generated relation filter selects exactly the rows findMany returns, in every model', async () => {
    let compared = 0;
    let discriminating = 0;
    // Refund twice: its relation reaches Transfer's nullable columns, where NULL under NOT shows.
    const models: Model[] = ['Transfer', 'Refund', 'Refund', 'Account', 'Membership'];
    await fc.assert(
      fc.asyncProperty(data, fc.array(fc.tuple(fc.constantFrom(...models), fc.constant(null)), { minLength: 4, maxLength: 8 }).chain((picks) =>
        fc.tuple(...picks.map(([model]) => wheres[model].map((where) => [model, where] as const))),
      ), async ({ owners, roles, transfers }, filters) => {
        await db.query('TRUNCATE accounts, memberships RESTART IDENTITY CASCADE');
        await prisma.account.createMany({ data: owners.map((owner) => ({ owner, balance: 1 })) });
        await prisma.membership.createMany({ data: roles.map((role, i) => ({ orgId: 1, userId: i + 1, role })) });
        await prisma.transfer.createMany({
          data: transfers.map((t) => ({ fromId: t.from, toId: t.to, amount: 1, status: t.status, approverOrgId: t.approver[0], approverUserId: t.approver[1] })),
        });
        await prisma.refund.createMany({ data: transfers.flatMap((t, i) => (t.refund === undefined ? [] : [{ transferId: i + 1, reason: t.refund }])) });
        for (const [model, where] of filters) {
          const orderBy = model === 'Membership' ? [{ orgId: 'asc' }, { userId: 'asc' }] : { id: 'asc' };
          const delegate = prisma[(model.charAt(0).toLowerCase() + model.slice(1)) as 'transfer'] as unknown as { findMany(args: unknown): Promise<unknown[]> };
          let expected: unknown[];
          try {
            expected = await delegate.findMany({ where, orderBy });
          } catch (error) {
            if (error instanceof Prisma.PrismaClientValidationError) continue;
            throw error;
          }
          const actual = await prisma.$transaction((tx) => tx.$lock.row(model, { where: where as never, orderBy: orderBy as never }));
          expect(actual, `${model} ${JSON.stringify(where)}`).toEqual(expected);
          compared += 1;
          const total = await delegate.findMany({ orderBy }).then((rows) => rows.length);
          if (expected.length > 0 && expected.length < total) discriminating += 1;
        }
      }),
      { numRuns: 50 },
    );
    expect(compared).toBeGreaterThan(150);
    expect(discriminating / compared).toBeGreaterThan(0.2);
  });
});
