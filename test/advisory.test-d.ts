import { PrismaPg } from '@prisma/adapter-pg';
import { drizzle } from 'drizzle-orm/node-postgres';
import type pg from 'pg';
import { describe, expectTypeOf, test } from 'vitest';
import type { LockResult } from '../src/index.js';
import { $lock as drizzleLock } from '../src/drizzle/index.js';
import { $lock as pgLock, type SessionAdvisoryLock } from '../src/pg/index.js';
import { lockExtension } from '../src/prisma/index.js';
import { PrismaClient } from '../prisma/generated/client.js';

const prisma = new PrismaClient({ adapter: new PrismaPg({ connectionString: '' }) }).$extends(lockExtension());
const db = drizzle('');
declare const pool: pg.Pool;
declare const held: pg.PoolClient;

describe('advisory() types', () => {
  test('the transaction form resolves a boolean; the function form resolves by onBusy', () => {
    void prisma.$transaction(async (tx) => {
      expectTypeOf(await tx.$lock.advisory('k')).toEqualTypeOf<boolean>();
    });
    expectTypeOf(prisma.$lock.advisory('k', async () => 42)).resolves.toEqualTypeOf<number>();
    expectTypeOf(prisma.$lock.advisory('k', async () => 42, { onBusy: 'skip' })).resolves.toEqualTypeOf<number | undefined>();
    expectTypeOf(prisma.$lock.advisory('k', async () => 42, { onBusy: 'return' })).resolves.toEqualTypeOf<LockResult<number>>();
    expectTypeOf(drizzleLock(db).advisory('k', async () => 'x', { wait: false, onBusy: 'skip' })).resolves.toEqualTypeOf<string | undefined>();
  });

  test('pg hands fn a pooled client on a pool, and the client itself on a client', () => {
    void pgLock(pool).advisory('k', async (client) => {
      expectTypeOf(client).toEqualTypeOf<pg.PoolClient>();
    });
    void pgLock(held).advisory('k', async (client) => {
      expectTypeOf(client).toEqualTypeOf<pg.PoolClient>();
    });
  });

  test('Drizzle hands fn its own transaction type', () => {
    void drizzleLock(db).advisory('k', async (tx) => {
      expectTypeOf(tx).toHaveProperty('execute');
      expectTypeOf(tx).toHaveProperty('rollback');
    });
  });

  test('keys and options are checked', () => {
    // @ts-expect-error objects are not keys
    void prisma.$lock.advisory({ id: 1 }, async () => 1);
    // @ts-expect-error mode is exclusive or shared
    void drizzleLock(db).advisory('k', async () => 1, { mode: 'sometimes' });
    // @ts-expect-error onBusy skip is only for the function form
    void drizzleLock(db).advisory('k', { onBusy: 'skip' });
    // @ts-expect-error session scope exists only in ormlock/pg
    void drizzleLock(db).advisory('k', { scope: 'session' });
  });

  test('session scope on a pg client resolves a releasable handle', () => {
    const client = {} as pg.PoolClient;
    expectTypeOf(pgLock(client).advisory('k', { scope: 'session' })).resolves.toEqualTypeOf<SessionAdvisoryLock | null>();
  });
});
