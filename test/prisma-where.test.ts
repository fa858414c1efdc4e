/**
 * The Prisma `where` → SQL translator behind `tx.$lock.row()`: on generated data and generated
 * filters, every filter it accepts selects exactly the rows Prisma's own `findMany` returns (same
 * rows, same order, same field names and value types). Filters it does not support are refused
 * by name.
 */
import fc from 'fast-check';
import { beforeAll, describe, expect, test } from 'vitest';
import { InvalidLockArgumentError } from '../src/index.js';
import { lockExtension } from '../src/prisma/index.js';
import { useTestDatabase } from './helpers/database.js';
import { Prisma } from './helpers/models.js';

const db = useTestDatabase({ migrations: 'prisma' });

type Client = ReturnType<typeof makeClient>;
const makeClient = () => db.prisma().$extends(lockExtension());
let prisma: Client;
beforeAll(() => {
  prisma = makeClient();
});

// Small alphabets and ranges, so that generated filters and data collide often: case variants,
// LIKE wildcards, a non-ASCII letter.
const text = fc.string({ unit: fc.constantFrom('a', 'A', 'b', '%', '_', 'é', 'É'), maxLength: 2 });
const smallInt = fc.integer({ min: 0, max: 5 });
const decimalText = fc.integer({ min: -300, max: 300 }).map((cents) => (cents / 100).toFixed(2));
const BASE_TIME = Date.UTC(2025, 0, 1);
const date = fc.integer({ min: 0, max: 4 }).map((minutes) => new Date(BASE_TIME + minutes * 60_000));

/** One of the given single-key objects, or two of them merged. */
function oneOrTwo(options: fc.Arbitrary<Record<string, unknown>>[]): fc.Arbitrary<Record<string, unknown>> {
  const one = fc.oneof(...options);
  return fc.oneof({ weight: 3, arbitrary: one }, { weight: 1, arbitrary: fc.tuple(one, one).map(([a, b]) => ({ ...a, ...b })) });
}

/** Filters on one scalar field, as a user writes them: shorthand, operators, `not`, and for strings `mode`. */
function scalarFilter<T>(value: fc.Arbitrary<T>, options: { string?: boolean; nullable?: boolean } = {}): fc.Arbitrary<unknown> {
  const list = fc.array(value, { maxLength: 3 });
  const operators: Record<string, fc.Arbitrary<unknown>> = { equals: value, in: list, notIn: list, lt: value, lte: value, gt: value, gte: value };
  if (options.string) Object.assign(operators, { contains: value, startsWith: value, endsWith: value });
  const single = Object.entries(operators).map(([key, arbitrary]) => arbitrary.map((operand) => ({ [key]: operand })));
  const nested = oneOrTwo(single);
  const not = (options.nullable ? fc.oneof(value, nested, fc.constant(null)) : fc.oneof(value, nested)).map((operand) => ({ not: operand }));
  const filter = oneOrTwo([...single, not]);
  const withMode = options.string
    ? fc.tuple(filter, fc.constantFrom(undefined, 'default', 'insensitive')).map(([f, mode]) => (mode === undefined ? f : { ...f, mode }))
    : filter;
  return fc.oneof(value, withMode, withMode, ...(options.nullable ? [fc.constant(null), fc.constant({ equals: null }), fc.constant({ not: null })] : []));
}

function whereOf(fields: Record<string, fc.Arbitrary<unknown>>): fc.Arbitrary<Record<string, unknown>> {
  const single = Object.entries(fields).map(([key, arbitrary]) => arbitrary.map((filter) => ({ [key]: filter })));
  const leaf = oneOrTwo(single);
  const { where } = fc.letrec<{ where: Record<string, unknown> }>((tie) => ({
    where: fc.oneof(
      { depthSize: 'small', withCrossShrink: true },
      leaf,
      leaf,
      fc.record({ AND: fc.oneof(tie('where'), fc.array(tie('where'), { maxLength: 3 })) }),
      fc.record({ OR: fc.array(tie('where'), { maxLength: 3 }) }),
      fc.record({ NOT: fc.oneof(tie('where'), fc.array(tie('where'), { maxLength: 2 })) }),
      fc.tuple(leaf, fc.record({ OR: fc.array(tie('where'), { maxLength: 2 }) })).map(([a, b]) => ({ ...a, ...b })),
    ),
  }));
  return where;
}

const accountWhere = whereOf({
  id: scalarFilter(fc.integer({ min: 0, max: 9 })),
  owner: scalarFilter(text, { string: true }),
  balance: scalarFilter(fc.oneof(decimalText, decimalText.map((d) => new Prisma.Decimal(d)), fc.integer({ min: -3, max: 3 }))),
  version: scalarFilter(smallInt),
});

const jobWhere = whereOf({
  id: scalarFilter(fc.oneof(fc.integer({ min: 0, max: 9 }), fc.bigInt({ min: 0n, max: 9n }))),
  status: scalarFilter(fc.constantFrom('pending', 'running', 'done'), { string: true }),
  lockedBy: scalarFilter(text, { string: true, nullable: true }),
  attempts: scalarFilter(smallInt),
  runAt: scalarFilter(date),
  payload: fc.oneof(
    fc.record({ equals: fc.oneof(fc.record({ n: smallInt }), fc.array(smallInt, { maxLength: 2 })) }),
    fc.record({ not: fc.record({ n: smallInt }) }),
  ),
});

const accounts = fc.array(fc.record({ owner: text, balance: fc.oneof(decimalText, fc.integer({ min: -3, max: 3 }).map(String)), version: smallInt }), { minLength: 3, maxLength: 9 });
const jobs = fc.array(
  fc.record({
    status: fc.constantFrom('pending', 'running', 'done'),
    lockedBy: fc.option(text, { nil: null }),
    attempts: smallInt,
    runAt: date,
    payload: fc.oneof(fc.record({ n: smallInt }), fc.array(smallInt, { maxLength: 2 })),
  }),
  { minLength: 3, maxLength: 9 },
);

/** findMany's answer, or `undefined` when Prisma itself refuses the filter. */
async function findMany(run: () => Promise<unknown[]>): Promise<unknown[] | undefined> {
  try {
    return await run();
  } catch (error) {
    if (error instanceof Prisma.PrismaClientValidationError) return undefined;
    throw error;
  }
}

const stats = { compared: 0, refusedByPrisma: 0, discriminating: 0 };

/** Counts comparisons whose answer is neither "no row" nor "every row": those that can catch a wrong predicate. */
function record(expected: unknown[], total: number): void {
  stats.compared += 1;
  if (expected.length > 0 && expected.length < total) stats.discriminating += 1;
}

describe('Prisma where translator', () => {
  test('Account: every accepted filter returns exactly what findMany returns', async () => {
    await fc.assert(
      fc.asyncProperty(accounts, fc.array(accountWhere, { minLength: 1, maxLength: 6 }), async (rows, filters) => {
        await db.query('TRUNCATE accounts RESTART IDENTITY CASCADE');
        await prisma.account.createMany({ data: rows });
        for (const where of filters) {
          const expected = await findMany(() => prisma.account.findMany({ where: where as never, orderBy: { id: 'asc' } }));
          if (expected === undefined) {
            stats.refusedByPrisma += 1;
            continue;
          }
          const actual = await prisma.$transaction((tx) => tx.$lock.row('Account', { where: where as never, orderBy: { id: 'asc' } }));
          expect(actual, JSON.stringify(where)).toEqual(expected);
          record(expected, rows.length);
        }
      }),
      { numRuns: 60 },
    );
    // The generator must mostly produce filters Prisma accepts and that split the rows, or the
    // property proves little.
    expect(stats.compared).toBeGreaterThan(100);
    expect(stats.discriminating / stats.compared).toBeGreaterThan(0.2);
  });

  test('Job (BigInt id, Json, nullable and @map columns, DateTime): every accepted filter returns exactly what findMany returns', async () => {
    await fc.assert(
      fc.asyncProperty(jobs, fc.array(jobWhere, { minLength: 1, maxLength: 6 }), async (rows, filters) => {
        await db.query('TRUNCATE jobs RESTART IDENTITY');
        await prisma.job.createMany({ data: rows });
        for (const where of filters) {
          const expected = await findMany(() => prisma.job.findMany({ where: where as never, orderBy: [{ runAt: 'desc' }, { id: 'asc' }] }));
          if (expected === undefined) continue;
          const actual = await prisma.$transaction((tx) => tx.$lock.row('Job', { where: where as never, orderBy: [{ runAt: 'desc' }, { id: 'asc' }] }));
          expect(actual, JSON.stringify(where, (_, v) => (typeof v === 'bigint' ? `${v}n` : v))).toEqual(expected);
          record(expected, rows.length);
        }
      }),
      { numRuns: 60 },
    );
    expect(stats.discriminating / stats.compared).toBeGreaterThan(0.2);
  });

  test('take, skip and orderBy with nulls match findMany', async () => {
    await db.query('TRUNCATE jobs RESTART IDENTITY');
    await prisma.job.createMany({
      data: [{ lockedBy: 'b' }, { lockedBy: null }, { lockedBy: 'a' }, { lockedBy: null }, { lockedBy: 'c' }],
    });
    for (const nulls of ['first', 'last'] as const) {
      const args = { orderBy: [{ lockedBy: { sort: 'asc' as const, nulls } }, { id: 'desc' as const }], take: 3, skip: 1 };
      const expected = await prisma.job.findMany(args);
      expect(await prisma.$transaction((tx) => tx.$lock.row('Job', args))).toEqual(expected);
      // The bounded form wraps the statement to scope lock_timeout: the order must survive it.
      expect(await prisma.$transaction((tx) => tx.$lock.row('Job', { ...args, timeout: '1s' }))).toEqual(expected);
    }
  });

  test('rows come back with Prisma field names and value types (Decimal, BigInt, Date, Json)', async () => {
    await db.query('TRUNCATE accounts, jobs RESTART IDENTITY CASCADE');
    await prisma.account.create({ data: { owner: 'ann', balance: '1234567890123456.78' } });
    await db.query(`SELECT setval('jobs_id_seq', 9007199254740992)`);
    await prisma.job.create({ data: { payload: { deep: [1, { x: 'y' }] }, lockedBy: 'w' } });
    await prisma.$transaction(async (tx) => {
      const [account] = await tx.$lock.row('Account', {});
      expect(Prisma.Decimal.isDecimal(account?.balance)).toBe(true);
      expect(account?.balance.toFixed(2)).toBe('1234567890123456.78');
      expect(account?.updatedAt).toBeInstanceOf(Date);
      expect(account).toEqual(await tx.account.findFirst());
      const [job] = await tx.$lock.row('Job', { where: { id: 9007199254740993n } });
      expect(job?.id).toBe(9007199254740993n);
      expect(job).toEqual(await tx.job.findFirst());
    });
  });

  test('compound ids (orgId_userId) select the one row, as findUnique does', async () => {
    await db.query('TRUNCATE memberships CASCADE');
    await prisma.membership.createMany({ data: [{ orgId: 1, userId: 2, role: 'owner' }, { orgId: 1, userId: 3, role: 'member' }, { orgId: 2, userId: 2, role: 'x' }] });
    const where = { orgId_userId: { orgId: 1, userId: 2 } };
    const rows = await prisma.$transaction((tx) => tx.$lock.row('Membership', { where: where as never }));
    expect(rows).toEqual([await prisma.membership.findUnique({ where })]);
  });

  test('unsupported filters are refused with InvalidLockArgumentError naming them, before any SQL', async () => {
    const refused = async (model: 'Account' | 'Job', where: unknown): Promise<string> => {
      const error = await prisma.$transaction((tx) => tx.$lock.row(model, { where: where as never })).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(InvalidLockArgumentError);
      return (error as InvalidLockArgumentError).argument;
    };
    expect(await refused('Account', { owner: { search: 'x' } })).toBe('where.owner.search');
    expect(await refused('Account', { memberships: { some: {} } })).toBe('where.memberships');
    expect(await refused('Account', { OR: [{ id: 1 }, { owner: { contians: 'x' } }] })).toBe('where.OR[1].owner.contians');
    expect(await refused('Job', { payload: { path: ['n'], equals: 1 } })).toBe('where.payload.path');
    expect(await refused('Account', { id: { contains: '1' } })).toBe('where.id.contains');
    expect(await refused('Account', { id: 'one' })).toBe('where.id');
    expect(await refused('Account', { owner: { not: { not: 'x' } } })).toBe('where.owner.not.not');
    await expect(prisma.$transaction((tx) => tx.$lock.row('Account', { orderBy: { nope: 'asc' } as never }))).rejects.toBeInstanceOf(InvalidLockArgumentError);
    await expect(prisma.$transaction((tx) => tx.$lock.row('Account', { select: { id: true } } as never))).rejects.toBeInstanceOf(InvalidLockArgumentError);
    await expect(prisma.$transaction((tx) => tx.$lock.row('Nope' as never, {}))).rejects.toBeInstanceOf(InvalidLockArgumentError);
  });
});

describe('Prisma relation filters', () => {
  // 1: ann → bob, approved by (1, 1), refunded 'typo'; 2: bob → cy, no approver, refunded 'dup';
  // 3: cy → ann, approved by (1, 2), done; 4: ann → ann, half an approver (NULL, 1), refunded 'x'.
  beforeAll(async () => {
    await db.query('TRUNCATE accounts, memberships RESTART IDENTITY CASCADE');
    await prisma.account.createMany({ data: [{ owner: 'ann', balance: 1 }, { owner: 'bob', balance: 2 }, { owner: 'cy', balance: 3 }] });
    await prisma.membership.createMany({ data: [{ orgId: 1, userId: 1, role: 'owner' }, { orgId: 1, userId: 2, role: 'member' }] });
    await prisma.transfer.createMany({
      data: [
        { fromId: 1, toId: 2, amount: 1, approverOrgId: 1, approverUserId: 1 },
        { fromId: 2, toId: 3, amount: 2 },
        { fromId: 3, toId: 1, amount: 3, approverOrgId: 1, approverUserId: 2, status: 'done' },
        { fromId: 1, toId: 1, amount: 4, approverUserId: 1 },
      ],
    });
    await prisma.refund.createMany({ data: [{ transferId: 1, reason: 'typo' }, { transferId: 2, reason: 'dup' }, { transferId: 4, reason: 'x' }] });
  });

  const examples: [model: 'Transfer' | 'Refund' | 'Account' | 'Membership', where: Record<string, unknown>][] = [
    ['Transfer', { fromAccount: { owner: 'ann' } }],
    ['Transfer', { fromAccount: { is: { owner: 'ann' } }, toAccount: { isNot: { owner: 'ann' } } }],
    ['Transfer', { fromAccount: {} }],
    ['Transfer', { OR: [{ approver: {} }] }],
    ['Transfer', { approver: { is: {} } }],
    ['Transfer', { approver: { isNot: {} } }],
    ['Transfer', { approver: { AND: [] } }],
    ['Transfer', { approver: null }],
    ['Transfer', { approver: { is: null } }],
    ['Transfer', { approver: { isNot: null } }],
    ['Transfer', { approver: { role: 'owner' } }],
    ['Transfer', { approver: { isNot: { role: 'owner' } } }],
    ['Transfer', { refund: null }],
    ['Transfer', { refund: { isNot: null } }],
    ['Transfer', { refund: { isNot: { reason: 'typo' } } }],
    ['Transfer', { NOT: { refund: { reason: 'typo' } } }],
    ['Transfer', { fromAccount: { OR: [] } }],
    ['Transfer', { NOT: { fromAccount: { OR: [] } } }],
    ['Transfer', { OR: [{ fromAccount: { owner: 'cy' } }, { toAccount: { owner: 'cy' } }], status: 'pending' }],
    ['Transfer', { fromAccount: { incoming: { some: { status: 'done' } } } }],
    // A relation of a relation, and NULL inside a relation filter under NOT (Prisma keeps it NULL).
    ['Refund', { transfer: { fromAccount: { owner: 'ann' } } }],
    ['Refund', { transfer: { approver: { role: 'owner' } } }],
    ['Refund', { transfer: { isNot: { approverOrgId: 5 } } }],
    ['Refund', { NOT: { transfer: { isNot: { approverOrgId: 5 } } } }],
    ['Refund', { NOT: { transfer: { is: { approverOrgId: 1 } } } }],
    ['Refund', { transfer: { isNot: { approver: { isNot: { role: 'owner' } } } } }],
    ['Account', { outgoing: { some: {} } }],
    ['Account', { outgoing: { every: {} } }],
    ['Account', { outgoing: { none: {} } }],
    ['Account', { outgoing: { every: { approverOrgId: { not: 1 } } } }],
    ['Account', { NOT: { outgoing: { every: { approverOrgId: { not: 1 } } } } }],
    ['Account', { outgoing: { every: { refund: { reason: 'typo' } } } }],
    ['Account', { incoming: { some: { approver: { role: 'member' } } } }],
    ['Membership', { approvals: { some: { fromAccount: { owner: 'ann' } } } }],
    ['Membership', { approvals: { none: {} } }],
  ];

  test.each(examples.map(([model, where]) => [model, JSON.stringify(where), where] as const))('%s %s returns what findMany returns', async (model, _, where) => {
    const orderBy = model === 'Membership' ? [{ orgId: 'asc' }, { userId: 'asc' }] : { id: 'asc' };
    const delegate = prisma[(model.charAt(0).toLowerCase() + model.slice(1)) as 'transfer'] as unknown as { findMany(args: unknown): Promise<unknown[]> };
    const expected = await delegate.findMany({ where, orderBy });
    const actual = await prisma.$transaction((tx) => tx.$lock.row(model, { where: where as never, orderBy: orderBy as never }));
    expect(actual).toEqual(expected);
  });

  test('relation filters work in claim() too', async () => {
    const claimed = await prisma.$transaction((tx) => tx.$lock.claim('Transfer', { where: { fromAccount: { owner: 'ann' }, refund: { isNot: null } }, orderBy: { id: 'asc' }, take: 5 }));
    expect(claimed.map((row) => row.id)).toEqual([1, 4]);
    const updated = await prisma.$lock.claim('Transfer', { where: { toAccount: { owner: 'cy' } }, set: { status: 'sent' } });
    expect(updated.map((row) => [row.id, row.status])).toEqual([[2, 'sent']]);
    await db.query(`UPDATE transfers SET status = 'pending' WHERE id = 2`);
  });

  test('unsupported relation filters are refused by name', async () => {
    const refused = async (model: 'Transfer' | 'Account', where: unknown): Promise<string> => {
      const error = await prisma.$transaction((tx) => tx.$lock.row(model, { where: where as never })).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(InvalidLockArgumentError);
      return (error as InvalidLockArgumentError).argument;
    };
    expect(await refused('Transfer', { fromAccount: 'ann' })).toBe('where.fromAccount');
    expect(await refused('Transfer', { fromAccount: { is: { nope: 1 } } })).toBe('where.fromAccount.is.nope');
    expect(await refused('Transfer', { NOT: { refund: { reason: { search: 'x' } } } })).toBe('where.NOT.refund.reason.search');
    expect(await refused('Account', { outgoing: { any: {} } })).toBe('where.outgoing.any');
    expect(await refused('Account', { outgoing: { status: 'x' } })).toBe('where.outgoing.status');
    expect(await refused('Account', { outgoing: [] })).toBe('where.outgoing');
  });
});
