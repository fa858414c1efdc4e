/**
 * Type tests for the versioned writes: `updateVersioned` / `deleteVersioned` accept only models
 * and tables with an integer version field, values of the right types, and return the model's
 * (or table's) row type.
 */
import { eq } from 'drizzle-orm';
import { describe, expectTypeOf, test } from 'vitest';
import { deleteVersioned, updateVersioned } from '../src/drizzle/index.js';
import { type StaleVersionError, type StaleVersionReason, withRetry } from '../src/index.js';
import { lockExtension } from '../src/prisma/index.js';
import type { PrismaClient, Prisma } from '../prisma/generated/client.js';
import type { TestDrizzle } from './helpers/database.js';
import { accounts, counters, jobs, memberships } from './helpers/models.js';

declare const base: PrismaClient;
declare const orm: TestDrizzle;
const prisma = base.$extends(lockExtension());

type CounterRow = { name: string; value: number; version: number };

describe('prisma updateVersioned', () => {
  test('returns the model, or what select / omit pick', async () => {
    expectTypeOf(await prisma.counter.updateVersioned({ where: { name: 'a' }, version: 1, data: { value: 2 } })).toEqualTypeOf<CounterRow>();
    expectTypeOf(
      await prisma.account.updateVersioned({ where: { id: 1 }, version: 1, data: { owner: 'x' }, select: { id: true, balance: true } }),
    ).toEqualTypeOf<{ id: number; balance: Prisma.Decimal }>();
    expectTypeOf(await prisma.counter.updateVersioned({ where: { name: 'a' }, version: 1, data: {}, omit: { value: true } })).toEqualTypeOf<{
      name: string;
      version: number;
    }>();
    expectTypeOf(await prisma.counter.deleteVersioned({ where: { name: 'a' }, version: 1 })).toEqualTypeOf<CounterRow>();
  });

  test('exists on transaction clients too', async () => {
    await prisma.$transaction(async (tx) => {
      expectTypeOf(await tx.counter.updateVersioned({ where: { name: 'a' }, version: 1, data: { value: 2 } })).toEqualTypeOf<CounterRow>();
    });
  });

  test('only models with an integer version field have the methods', async () => {
    expectTypeOf(prisma.job).not.toHaveProperty('updateVersioned');
    expectTypeOf(prisma.membership).not.toHaveProperty('deleteVersioned');
    expectTypeOf(prisma.counter).toHaveProperty('updateVersioned');
    // @ts-expect-error Job has no `version` field
    await prisma.job.updateVersioned({ where: { id: 1n }, version: 1, data: { status: 'x' } });
    // @ts-expect-error Membership has no `version` field
    await prisma.membership.deleteVersioned({ where: { orgId_userId: { orgId: 1, userId: 2 } }, version: 1 });
  });

  test('wrong field types do not compile', async () => {
    // @ts-expect-error version is an Int
    await prisma.counter.updateVersioned({ where: { name: 'a' }, version: '1', data: { value: 2 } });
    // @ts-expect-error value is an Int
    await prisma.counter.updateVersioned({ where: { name: 'a' }, version: 1, data: { value: 'x' } });
    // @ts-expect-error the version is incremented for you, not set in data
    await prisma.counter.updateVersioned({ where: { name: 'a' }, version: 1, data: { version: 3 } });
    // @ts-expect-error where needs a unique field
    await prisma.counter.updateVersioned({ where: { value: 1 }, version: 1, data: {} });
    // @ts-expect-error unknown field
    await prisma.counter.updateVersioned({ where: { name: 'a' }, version: 1, data: { nope: 1 } });
    // @ts-expect-error version is required
    await prisma.counter.updateVersioned({ where: { name: 'a' }, data: { value: 1 } });
  });

  test('versionField names another field per model', async () => {
    const custom = base.$extends(lockExtension({ versionField: { Job: 'attempts', Account: 'balance' } }));
    expectTypeOf((await custom.job.updateVersioned({ where: { id: 1n }, version: 1, data: { status: 'x' } })).attempts).toEqualTypeOf<number>();
    // @ts-expect-error attempts is incremented for you
    await custom.job.updateVersioned({ where: { id: 1n }, version: 1, data: { attempts: 2 } });
    // @ts-expect-error a Decimal field cannot be a version
    await custom.account.updateVersioned({ where: { id: 1 }, version: 1, data: {} });
    // Counter keeps the default `version`.
    await custom.counter.updateVersioned({ where: { name: 'a' }, version: 1, data: { value: 1 } });
  });
});

describe('drizzle updateVersioned', () => {
  test("returns the table's select type", async () => {
    expectTypeOf(await updateVersioned(orm, counters, { where: eq(counters.name, 'a'), version: 1, set: { value: 2 } })).toEqualTypeOf<
      typeof counters.$inferSelect
    >();
    expectTypeOf(await deleteVersioned(orm, accounts, { where: eq(accounts.id, 1), version: 1 })).toEqualTypeOf<typeof accounts.$inferSelect>();
    await orm.transaction(async (tx) => {
      expectTypeOf(await updateVersioned(tx, counters, { where: eq(counters.name, 'a'), version: 1, set: {} })).toEqualTypeOf<typeof counters.$inferSelect>();
    });
  });

  test('tables without a version column need versionColumn', async () => {
    // @ts-expect-error jobs has no `version` column
    await updateVersioned(orm, jobs, { where: eq(jobs.id, 1n), version: 1, set: { status: 'x' } });
    // @ts-expect-error memberships has no `version` column
    await deleteVersioned(orm, memberships, { where: eq(memberships.orgId, 1), version: 1 });
    await updateVersioned(orm, jobs, { where: eq(jobs.id, 1n), version: 1, versionColumn: jobs.attempts, set: { status: 'x' } });
  });

  test('wrong field types do not compile', async () => {
    // @ts-expect-error version is an integer column
    await updateVersioned(orm, counters, { where: eq(counters.name, 'a'), version: '1', set: { value: 2 } });
    // @ts-expect-error value is an integer column
    await updateVersioned(orm, counters, { where: eq(counters.name, 'a'), version: 1, set: { value: 'x' } });
    // @ts-expect-error the version is incremented for you, not set
    await updateVersioned(orm, counters, { where: eq(counters.name, 'a'), version: 1, set: { version: 5 } });
    // @ts-expect-error attempts is the version column here
    await updateVersioned(orm, jobs, { where: eq(jobs.id, 1n), version: 1, versionColumn: jobs.attempts, set: { attempts: 3 } });
    // @ts-expect-error where is a SQL condition, not an object
    await updateVersioned(orm, counters, { where: { name: 'a' }, version: 1, set: {} });
  });
});

test('withRetry returns what fn returns; StaleVersionError has typed fields', async () => {
  expectTypeOf(await withRetry(async () => 42)).toEqualTypeOf<number>();
  expectTypeOf<StaleVersionError['reason']>().toEqualTypeOf<StaleVersionReason>();
  expectTypeOf<StaleVersionReason>().toEqualTypeOf<'gone' | 'version-mismatch'>();
  expectTypeOf<StaleVersionError['actual']>().toEqualTypeOf<number | bigint | undefined>();
  expectTypeOf<StaleVersionError['model']>().toEqualTypeOf<string | undefined>();
  // @ts-expect-error fn must return a promise
  await withRetry(() => 42);
});
