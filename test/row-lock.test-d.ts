/**
 * Type tests for `row()`, `claim()` and `model()`: rows come back as the model's (or table's)
 * own type, unknown models and impossible option combinations do not compile.
 */
import { PrismaPg } from '@prisma/adapter-pg';
import { eq } from 'drizzle-orm';
import { drizzle } from 'drizzle-orm/node-postgres';
import pg from 'pg';
import { describe, expectTypeOf, test } from 'vitest';
import { $lock as drizzleLock } from '../src/drizzle/index.js';
import { $lock as pgLock } from '../src/pg/index.js';
import { lockExtension } from '../src/prisma/index.js';
import { type Prisma, PrismaClient } from '../prisma/generated/client.js';
import { accounts, jobs } from '../drizzle/schema.js';

const prisma = new PrismaClient({ adapter: new PrismaPg({ connectionString: '' }) }).$extends(lockExtension());
const db = drizzle('');

type Account = { id: number; owner: string; balance: Prisma.Decimal; version: number; updatedAt: Date };
type Job = { id: bigint; queue: string; status: string; payload: Prisma.JsonValue; runAt: Date; attempts: number; lockedBy: string | null };

describe('prisma $lock.row / claim / model', () => {
  test("row('Account', …) returns the Account type, on the client and on a transaction", async () => {
    expectTypeOf(prisma.$lock.row('Account', { where: { id: 1 } })).resolves.toEqualTypeOf<Account[]>();
    await prisma.$transaction(async (tx) => {
      expectTypeOf(await tx.$lock.row('Account', { where: { owner: { contains: 'a', mode: 'insensitive' } }, orderBy: { id: 'asc' } })).toEqualTypeOf<Account[]>();
      expectTypeOf(await tx.$lock.row('Job', { where: { lockedBy: null }, skipLocked: true, take: 5 })).toEqualTypeOf<Job[]>();
      expectTypeOf(await tx.$lock.claim('Job', { where: { status: 'pending' }, take: 5, set: { status: 'running', attempts: { increment: 1 } } })).toEqualTypeOf<Job[]>();
      expectTypeOf(tx.$lock.model(['Account', 'Job'], { mode: 'share', timeout: '2s' })).resolves.toEqualTypeOf<void>();
    });
  });

  test('an unknown model name does not compile', () => {
    // @ts-expect-error: not a model of this client
    void prisma.$lock.row('Acount', {});
    // @ts-expect-error: not a model of this client
    void prisma.$lock.model('accounts');
    // @ts-expect-error: not a model of this client
    void prisma.$lock.claim('Jobs', {});
  });

  test('where and set are the model’s own', () => {
    // @ts-expect-error: no such field
    void prisma.$lock.row('Account', { where: { nope: 1 } });
    // @ts-expect-error: id is a number
    void prisma.$lock.row('Account', { where: { id: 'one' } });
    // @ts-expect-error: status is a string
    void prisma.$lock.claim('Job', { set: { status: 1 } });
  });

  test('nowait and skipLocked cannot both be set; nowait takes no timeout', () => {
    // @ts-expect-error: one or the other
    void prisma.$lock.row('Account', { nowait: true, skipLocked: true });
    // @ts-expect-error: nowait never waits
    void prisma.$lock.row('Account', { nowait: true, timeout: 100 });
    // @ts-expect-error: not a strength
    void prisma.$lock.row('Account', { strength: 'exclusive' });
    // @ts-expect-error: not a table lock mode
    void prisma.$lock.model('Account', { mode: 'ACCESS EXCLUSIVE' });
    // @ts-expect-error: nowait never waits
    void prisma.$lock.model('Account', { nowait: true, timeout: '1s' });
  });
});

describe('prisma relation filters and of', () => {
  type Transfer = {
    id: number;
    fromId: number;
    toId: number;
    amount: Prisma.Decimal;
    status: string;
    approverOrgId: number | null;
    approverUserId: number | null;
  };

  test('relation filters in where; of takes the to-one relations (and the model’s own name); rows stay the model’s', async () => {
    await prisma.$transaction(async (tx) => {
      const rows = await tx.$lock.row('Transfer', {
        where: { fromAccount: { owner: 'ann' }, toAccount: { isNot: { id: 3 } }, approver: null, refund: { is: { reason: 'x' } } },
        of: ['fromAccount', 'toAccount', 'approver', 'refund', 'Transfer'],
        nowait: true,
      });
      expectTypeOf(rows).toEqualTypeOf<Transfer[]>();
      expectTypeOf(await tx.$lock.row('Account', { where: { outgoing: { some: { status: 'pending' } } }, of: ['Account'] })).toEqualTypeOf<Account[]>();
    });
  });

  test('a wrong name in of, a to-many relation in of, and of on claim do not compile', () => {
    // @ts-expect-error: not a relation of Transfer
    void prisma.$lock.row('Transfer', { of: ['fromAcount'] });
    // @ts-expect-error: a scalar field, not a relation
    void prisma.$lock.row('Transfer', { of: ['fromId'] });
    // @ts-expect-error: outgoing is a to-many relation
    void prisma.$lock.row('Account', { of: ['outgoing'] });
    // @ts-expect-error: another model's name
    void prisma.$lock.row('Transfer', { of: ['Account'] });
    // @ts-expect-error: a claim takes no of
    void prisma.$lock.claim('Transfer', { of: ['fromAccount'] });
    // @ts-expect-error: no such relation filter
    void prisma.$lock.row('Transfer', { where: { fromAccount: { is: { nope: 1 } } } });
  });
});

describe('drizzle $lock(tx).row / claim / model', () => {
  test('row returns the table’s select type', async () => {
    await db.transaction(async (tx) => {
      expectTypeOf(await drizzleLock(tx).row(accounts, { where: eq(accounts.id, 1) })).toEqualTypeOf<(typeof accounts.$inferSelect)[]>();
      expectTypeOf(await drizzleLock(tx).claim(jobs, { limit: 2, set: { status: 'running' } })).toEqualTypeOf<(typeof jobs.$inferSelect)[]>();
      expectTypeOf(drizzleLock(tx).model([accounts, jobs], { mode: 'exclusive' })).resolves.toEqualTypeOf<void>();
    });
  });

  test('wrong calls do not compile', () => {
    // @ts-expect-error: one or the other
    void drizzleLock(db).row(accounts, { nowait: true, skipLocked: true });
    // @ts-expect-error: not a column of jobs
    void drizzleLock(db).claim(jobs, { set: { balance: '1' } });
    // @ts-expect-error: a table, not its name
    void drizzleLock(db).row('accounts', {});
  });
});

describe('pg $lock(client).row', () => {
  test('rows are plain records by default, or the type you name', () => {
    const client = new pg.Client();
    expectTypeOf(pgLock(client).row('accounts', { where: { id: 1 } })).resolves.toEqualTypeOf<Record<string, unknown>[]>();
    expectTypeOf(pgLock(client).row<{ id: number }>('accounts', { skipLocked: true })).resolves.toEqualTypeOf<{ id: number }[]>();
    // @ts-expect-error: one or the other
    void pgLock(client).row('accounts', { nowait: true, skipLocked: true });
  });
});
