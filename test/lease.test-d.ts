import { PrismaPg } from '@prisma/adapter-pg';
import { drizzle } from 'drizzle-orm/node-postgres';
import type pg from 'pg';
import { describe, expectTypeOf, test } from 'vitest';
import type { Lease, LeaseRecord, Leadership } from '../src/index.js';
import { $lock as drizzleLock, fenced, leaseTable } from '../src/drizzle/index.js';
import { $lock as pgLock } from '../src/pg/index.js';
import { lockExtension } from '../src/prisma/index.js';
import { PrismaClient } from '../prisma/generated/client.js';

const prisma = new PrismaClient({ adapter: new PrismaPg({ connectionString: '' }) }).$extends(lockExtension({ url: 'postgres://x' }));
const db = drizzle('');
declare const pool: pg.Pool;

describe('lease() types', () => {
  test('a lease says what it holds; onBusy return allows null', () => {
    expectTypeOf(prisma.$lock.lease('job')).resolves.toEqualTypeOf<Lease<unknown>>();
    expectTypeOf(drizzleLock(db).lease('job', { data: { n: 1 } })).resolves.toEqualTypeOf<Lease<{ n: number }>>();
    expectTypeOf(pgLock(pool).lease('job', { onBusy: 'return' })).resolves.toEqualTypeOf<Lease<unknown> | null>();
    void pgLock(pool)
      .lease('job')
      .then((lease) => {
        expectTypeOf(lease.fencingToken).toEqualTypeOf<bigint>();
        expectTypeOf(lease.signal).toEqualTypeOf<AbortSignal>();
        expectTypeOf(lease.expiresAt).toEqualTypeOf<Date>();
        expectTypeOf(lease).toMatchTypeOf<AsyncDisposable>();
      });
  });

  test('withLease resolves fn’s result, or undefined with onBusy skip', () => {
    expectTypeOf(prisma.$lock.withLease('job', async () => 42)).resolves.toEqualTypeOf<number>();
    expectTypeOf(drizzleLock(db).withLease('job', () => 'x', { onBusy: 'skip' })).resolves.toEqualTypeOf<string | undefined>();
    expectTypeOf(pgLock(pool).getLease('job')).resolves.toEqualTypeOf<LeaseRecord<unknown> | null>();
    expectTypeOf(pgLock(pool).leader('x', { onElected: () => {} })).toEqualTypeOf<Leadership>();
  });

  test('wrong options do not compile', () => {
    // @ts-expect-error wait takes false or a duration, not true
    void pgLock(pool).lease('job', { wait: true });
    // @ts-expect-error skip is for withLease
    void pgLock(pool).lease('job', { onBusy: 'skip' });
    // @ts-expect-error ttl is a duration
    void prisma.$lock.lease('job', { ttl: '5 minutes' });
    // @ts-expect-error leader needs onElected
    void pgLock(pool).leader('x', {});
    // @ts-expect-error a leader election does not take leadership by force
    void pgLock(pool).leader('x', { onElected: () => {}, prioritize: { action: 'terminate' } });
    // @ts-expect-error takeOver is a boolean or a function of the holder
    void prisma.$lock.lease('job', { wait: '5s', prioritize: { action: 'cancel', takeOver: 'always' } });
  });

  test('prioritized waits: the holder predicate and the callback get the lease record', () => {
    void drizzleLock(db).lease('deploy', {
      wait: '1m',
      prioritize: {
        action: 'terminate',
        every: '500ms',
        takeOver: (holder) => {
          expectTypeOf(holder).toEqualTypeOf<LeaseRecord>();
          return holder.owner.startsWith('cron:');
        },
        onTakeOver: (previous) => expectTypeOf(previous.fencingToken).toEqualTypeOf<bigint>(),
      },
    });
  });

  test('Drizzle schema objects and the fencing helper', () => {
    const table = leaseTable();
    expectTypeOf(table.$inferSelect.token).toEqualTypeOf<bigint>();
    expectTypeOf(table.$inferSelect.expiresAt).toEqualTypeOf<Date>();
    expectTypeOf(fenced(table.token, 1n)).toHaveProperty('queryChunks');
  });
});
