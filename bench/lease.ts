/**
 * Leases: acquire + release (1 and 16 clients, distinct names) against the two-statement raw SQL
 * floor (upsert that takes over only an expired row, then an owner-checked delete); the contended
 * handoff (16 clients on one name) beside a hand-written polling loop; and one heartbeat
 * statement for 1, 100 and 10,000 held leases.
 */
import { randomUUID } from 'node:crypto';
import { PrismaPg } from '@prisma/adapter-pg';
import { drizzle } from 'drizzle-orm/node-postgres';
import pg from 'pg';
import { leaseHostOf } from '../src/core/lease-host.js';
import { leaseTableNames } from '../src/core/lease-schema.js';
import { $lock as drizzleLock } from '../src/drizzle/index.js';
import { $lock as pgLock, ensureLeaseTable } from '../src/pg/index.js';
import { lockExtension } from '../src/prisma/index.js';
import { PrismaClient } from '../prisma/generated/client.js';
import { type ClientOp, compare, compareConcurrent, measureHandoff, sample, summarize } from './stats.js';
import type { BenchContext, BenchRow } from './types.js';

const RAW_ACQUIRE =
  `INSERT INTO ormlock_leases AS l (name, owner, data, acquired_at, renewed_at, expires_at, ttl_ms) ` +
  `VALUES ($1, $2, NULL, now(), now(), now() + interval '30 seconds', 30000) ` +
  `ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, token = excluded.token, expires_at = excluded.expires_at ` +
  `WHERE l.expires_at <= now() RETURNING token`;
const RAW_RELEASE = `DELETE FROM ormlock_leases WHERE name = $1 AND owner = $2`;

/**
 * What the lease rows mean; run.ts prints these under Notes.
 */
export const leaseNotes = [
  'lease acquire+release: the target (≤ 1.1×) is over the raw pair sent unnamed (`pool.query(text, values)`), as apps write it by hand. ormlock on node-postgres (pg and Drizzle) sends its fixed lease statements as named prepared statements (parsed and planned once per connection); the "raw pg, prepared (named)" row is the same raw pair sent by name, for comparison.',
];

const newPool = (url: string, max = 1) => new pg.Pool({ connectionString: url, max }).on('error', () => {});

export async function benchLease(ctx: BenchContext): Promise<BenchRow[]> {
  const plan = ctx.quick ? { rounds: 2, perRound: 200, warmup: 100 } : { rounds: 6, perRound: 1000, warmup: 300 };
  const rows: BenchRow[] = [];
  const pools: pg.Pool[] = [];
  const pool = (max = 1) => {
    const p = newPool(ctx.url, max);
    pools.push(p);
    return p;
  };
  // Each section ends its pools before the next opens more: 16 clients × several cases would
  // otherwise exceed max_connections on a shared server.
  const closePools = async () => {
    await Promise.all(pools.splice(0).map((p) => p.end()));
  };
  await ensureLeaseTable(pool());
  await closePools();
  const prisma = new PrismaClient({ adapter: new PrismaPg({ connectionString: ctx.url, max: 1 }) }).$extends(lockExtension());
  // The adapter given a pg.Pool: ormlock sends its lease statements on that pool, by name.
  const prismaOnPool = new PrismaClient({ adapter: new PrismaPg(pool()) }).$extends(lockExtension());
  try {
    // ---- acquire + release, one client -------------------------------------------------------
    const rawPool = pool();
    const namedPool = pool();
    const owner = randomUUID();
    const name = (i: number) => `bench:lease:${i % 256}`;
    const pgLocks = pgLock(pool());
    const dzLocks = drizzleLock(drizzle({ client: pool() }));
    const one = await compare(
      {
        raw: async (i) => {
          await rawPool.query(RAW_ACQUIRE, [name(i), owner]);
          await rawPool.query(RAW_RELEASE, [name(i), owner]);
        },
        'raw named': async (i) => {
          await namedPool.query({ name: 'bench_lease_acquire', text: RAW_ACQUIRE, values: [name(i), owner] });
          await namedPool.query({ name: 'bench_lease_release', text: RAW_RELEASE, values: [name(i), owner] });
        },
        'ormlock pg': async (i) => (await pgLocks.lease(name(i))).release(),
        'ormlock drizzle': async (i) => (await dzLocks.lease(name(i))).release(),
        'raw prisma': async (i) => {
          await prisma.$queryRawUnsafe(RAW_ACQUIRE, name(i), owner);
          await prisma.$executeRawUnsafe(RAW_RELEASE, name(i), owner);
        },
        'ormlock prisma': async (i) => (await prisma.$lock.lease(name(i))).release(),
        'ormlock prisma (pool)': async (i) => (await prismaOnPool.$lock.lease(name(i))).release(),
      },
      plan,
    );
    // How each case is named in the table, and what is said beside it.
    const labels: Record<string, { driver?: string; note?: string }> = {
      raw: { driver: 'raw pg (2 statements)' },
      'raw named': { driver: 'raw pg, prepared (named)' },
      'raw prisma': { driver: 'raw prisma (2 statements)' },
      'ormlock prisma': { note: 'adapter given a connection string: statements through $queryRawUnsafe, unnamed' },
      'ormlock prisma (pool)': { driver: 'ormlock prisma, adapter given a pg.Pool', note: 'statements by name on the pool; × is over raw prisma' },
    };
    for (const [driver, figures] of Object.entries(one)) {
      const floor = driver.includes('prisma') ? one['raw prisma']! : one['raw']!;
      rows.push({
        case: 'lease acquire+release',
        driver: labels[driver]?.driver ?? driver,
        clients: 1,
        kind: driver.startsWith('raw') ? 'floor' : 'ormlock',
        ...figures,
        ratio: driver.startsWith('raw') ? undefined : figures.medianMs / floor.medianMs,
        note: driver === 'raw named' ? `${(figures.medianMs / floor.medianMs).toFixed(2)}× the unnamed pair; not the target's floor` : labels[driver]?.note,
      });
    }

    await closePools();
    await prisma.$disconnect();
    await prismaOnPool.$disconnect();

    // ---- acquire + release, 16 clients, distinct names -----------------------------------------
    const clients = 16;
    const concurrentPlan = ctx.quick ? { rounds: 2, perClient: 50, warmup: 20 } : { rounds: 4, perClient: 250, warmup: 50 };
    const rawOps: ClientOp[] = Array.from({ length: clients }, (_, c) => {
      const p = pool();
      const me = randomUUID();
      return async (i) => {
        await p.query(RAW_ACQUIRE, [`bench:c${c}:${i % 64}`, me]);
        await p.query(RAW_RELEASE, [`bench:c${c}:${i % 64}`, me]);
      };
    });
    const ormOps: ClientOp[] = Array.from({ length: clients }, (_, c) => {
      const locks = pgLock(pool());
      return async (i) => (await locks.lease(`bench:c${c}:${i % 64}`)).release();
    });
    const many = await compareConcurrent({ raw: rawOps, ormlock: ormOps }, concurrentPlan);
    rows.push({ case: 'lease acquire+release, distinct names', driver: 'raw pg (2 statements)', clients, kind: 'floor', ...many['raw']! });
    rows.push({
      case: 'lease acquire+release, distinct names',
      driver: 'ormlock pg',
      clients,
      kind: 'ormlock',
      ...many['ormlock']!,
      ratio: many['ormlock']!.medianMs / many['raw']!.medianMs,
    });

    await closePools();

    // ---- contended handoff: 16 clients, one name -----------------------------------------------
    const handoffPlan = ctx.quick ? { durationMs: 1_000, warmupMs: 200 } : { durationMs: 10_000, warmupMs: 1_000 };
    const ormHandoff = await measureHandoff(
      Array.from({ length: clients }, () => {
        const locks = pgLock(pool(2));
        return async () => {
          const lease = await locks.lease('bench:handoff', { ttl: '30s', wait: '60s' });
          return () => lease.release();
        };
      }),
      handoffPlan,
    );
    await closePools();
    // Listeners linger 2 s after their last waiter; let them go before the next case.
    await new Promise((resolve) => setTimeout(resolve, 2_500));
    rows.push({ case: 'lease contended handoff (one name)', driver: 'ormlock pg (LISTEN/NOTIFY)', clients, kind: 'ormlock', opsPerSec: ormHandoff.opsPerSec, handoff: ormHandoff });
    // As behind a transaction-mode pooler: no LISTEN, waiters poll (the release still hands over).
    const pollHandoff = await measureHandoff(
      Array.from({ length: clients }, () => {
        const locks = pgLock(pool(2), { pooling: 'transaction' });
        return async () => {
          const lease = await locks.lease('bench:poll-handoff', { ttl: '30s', wait: '60s' });
          return () => lease.release();
        };
      }),
      handoffPlan,
    );
    await closePools();
    rows.push({
      case: 'lease contended handoff (one name)',
      driver: "ormlock pg (pooling: 'transaction', polling)",
      clients,
      kind: 'ormlock',
      opsPerSec: pollHandoff.opsPerSec,
      handoff: pollHandoff,
    });
    const rawHandoff = await measureHandoff(
      Array.from({ length: clients }, () => {
        const p = pool();
        const me = randomUUID();
        return async () => {
          // The loop apps write by hand: try the upsert, sleep 1 ms, try again.
          while ((await p.query(RAW_ACQUIRE, ['bench:raw-handoff', me])).rowCount === 0) await new Promise((resolve) => setTimeout(resolve, 1));
          return () => p.query(RAW_RELEASE, ['bench:raw-handoff', me]);
        };
      }),
      handoffPlan,
    );
    await closePools();
    rows.push({ case: 'lease contended handoff (one name)', driver: 'raw pg (poll every 1 ms)', clients, kind: 'peer', opsPerSec: rawHandoff.opsPerSec, handoff: rawHandoff });

    // ---- heartbeat: one statement renews every held lease ---------------------------------------
    for (const count of ctx.quick ? [1, 100, 1_000] : [1, 100, 10_000]) {
      const holderPool = pool(8);
      const locks = pgLock(holderPool);
      const leases = [];
      for (let start = 0; start < count; start += 500) {
        const batch = Array.from({ length: Math.min(500, count - start) }, (_, k) => locks.lease(`bench:beat:${count}:${start + k}`, { ttl: '3h', heartbeat: '1h' }));
        leases.push(...(await Promise.all(batch)));
      }
      // The same host `$lock(holderPool)` uses: beat(true) renews all its leases in one statement.
      const host = leaseHostOf(holderPool, leaseTableNames(), () => {
        throw new Error('host should exist');
      });
      const samples = await sample(() => host.beat(true), count >= 10_000 ? 10 : 50);
      rows.push({ case: 'lease heartbeat, one statement for all held leases', driver: 'ormlock pg', clients: 1, kind: 'ormlock', ...summarize(samples), note: `${count} leases` });
      for (let start = 0; start < leases.length; start += 500) await Promise.all(leases.slice(start, start + 500).map((lease) => lease.release()));
      await closePools();
    }
  } finally {
    await prisma.$disconnect();
    await prismaOnPool.$disconnect();
    await closePools();
  }
  return rows;
}
