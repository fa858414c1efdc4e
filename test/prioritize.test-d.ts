import { PrismaPg } from '@prisma/adapter-pg';
import { drizzle } from 'drizzle-orm/node-postgres';
import type pg from 'pg';
import { describe, expectTypeOf, test } from 'vitest';
import type { BlockerInfo, Inspection, LockInfo } from '../src/index.js';
import { $lock as drizzleLock } from '../src/drizzle/index.js';
import { $lock as pgLock } from '../src/pg/index.js';
import { lockExtension } from '../src/prisma/index.js';
import { PrismaClient } from '../prisma/generated/client.js';

const prisma = new PrismaClient({ adapter: new PrismaPg({ connectionString: '' }) }).$extends(lockExtension());
const db = drizzle('');
declare const pool: pg.Pool;

describe('prioritize() and inspect() types', () => {
  test('prioritize resolves what fn returns, with the layer transaction', () => {
    expectTypeOf(prisma.$lock.prioritize(async () => 42, { action: 'terminate' })).resolves.toEqualTypeOf<number>();
    expectTypeOf(drizzleLock(db).prioritize(async () => 'x', { action: 'cancel', every: '500ms', after: 100 })).resolves.toEqualTypeOf<string>();
    void drizzleLock(db).prioritize(
      async (tx) => {
        expectTypeOf(tx).toHaveProperty('rollback');
      },
      { action: 'cancel', transaction: { isolationLevel: 'serializable' } },
    );
    void pgLock(pool).prioritize(async (client) => client.query('SELECT 1'), {
      action: 'terminate',
      filter: { applicationName: ['a', 'b'], user: 'app', minTransactionAge: '2s', predicate: (b) => b.state === 'idle in transaction' },
      onSignal: (blockers) => expectTypeOf(blockers).toEqualTypeOf<readonly BlockerInfo[]>(),
    });
  });

  test('the prioritize option on advisory waits', () => {
    void prisma.$lock.advisory('k', async () => 1, { timeout: '3s', prioritize: { action: 'terminate' } });
    // @ts-expect-error action is cancel or terminate
    void prisma.$lock.advisory('k', async () => 1, { prioritize: { action: 'kill' } });
    // @ts-expect-error action is required
    void prisma.$lock.prioritize(async () => 1, {});
    // @ts-expect-error filters are known names
    void pgLock(pool).prioritize(async () => 1, { action: 'cancel', filter: { app: 'x' } });
  });

  test('the prioritize option on row and table waits, and only where they wait', async () => {
    await prisma.$transaction(async (tx) => {
      void tx.$lock.row('Account', { where: { id: 1 }, timeout: '5s', prioritize: { action: 'terminate' } });
      void tx.$lock.model('Account', { timeout: '5s', prioritize: { action: 'cancel', every: 100 } });
      // @ts-expect-error nowait never waits: nothing to prioritize
      void tx.$lock.row('Account', { nowait: true, prioritize: { action: 'cancel' } });
      // @ts-expect-error skipLocked never waits
      void tx.$lock.row('Account', { skipLocked: true, prioritize: { action: 'cancel' } });
      // @ts-expect-error nowait never waits
      void tx.$lock.model('Account', { nowait: true, prioritize: { action: 'cancel' } });
    });
  });

  test('inspect resolves typed records on every layer', () => {
    expectTypeOf(prisma.$lock.inspect()).resolves.toEqualTypeOf<Inspection>();
    expectTypeOf(drizzleLock(db).inspect({ blockedOnly: true })).resolves.toEqualTypeOf<Inspection>();
    expectTypeOf(pgLock(pool).inspect({ relation: ['accounts'] })).resolves.toEqualTypeOf<Inspection>();
    expectTypeOf<LockInfo['blockedBy']>().toEqualTypeOf<readonly number[]>();
    // @ts-expect-error unknown option
    void pgLock(pool).inspect({ blocked: true });
  });
});
