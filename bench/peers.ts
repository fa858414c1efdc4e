/**
 * ormlock beside what users pick today, in the same run and in alternating rounds:
 *
 * - `redlock` (npm `latest`, 4.2.0) and `@sesamecare-oss/redlock` (the maintained fork of redlock
 *   5) on ioredis against the local Redis, with default retry settings and with a tuned retry;
 * - `advisory-lock` (npm), which opens a new connection for every lock;
 * - a hand-written Prisma `$queryRaw` helper as apps write it today (hashtext key, `::text` cast).
 *
 * Cases: an uncontended acquire + release with 1 and 16 clients, and a contended handoff (16
 * clients on one resource, each releasing right after it acquires). Redis cases are skipped with
 * a note when Redis cannot be reached (`REDIS_URL`, default `redis://127.0.0.1:6379`).
 */
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { PrismaPg } from '@prisma/adapter-pg';
import { Redlock as SesameRedlock, type Settings as SesameSettings } from '@sesamecare-oss/redlock';
import advisoryLock from 'advisory-lock';
import { Redis } from 'ioredis';
import pg from 'pg';
import { PrismaClient } from '../prisma/generated/client.js';
import { type ClientOp, type HandoffClient, compare, compareConcurrent, measureHandoff } from './stats.js';
import type { BenchContext, BenchRow } from './types.js';
import { core, pgLayer, prismaLayer } from './ormlock.js';

const { hashKey } = core;
const pgLock = pgLayer.$lock;
const { lockExtension } = prismaLayer;

/** redlock 4.x ships no types: the part of its API the bench calls. */
interface RedlockV4Lock {
  unlock(): Promise<void>;
}
interface RedlockV4 {
  lock(resource: string, ttlMs: number): Promise<RedlockV4Lock>;
  on(event: 'clientError', listener: (error: unknown) => void): void;
}
type RedlockV4Settings = { retryCount?: number; retryDelay?: number; retryJitter?: number };
const RedlockV4Ctor = createRequire(import.meta.url)('redlock') as new (clients: Redis[], settings?: RedlockV4Settings) => RedlockV4;

const CLIENTS = 16;
const TTL_MS = 10_000;
/**
 * "Tuned" retry as the redlock docs suggest for busy resources: retry without limit, every
 * 10 ms ± 5 ms, instead of the default 10 retries every 200 ms ± 100 ms.
 */
const TUNED = { retryCount: -1, retryDelay: 10, retryJitter: 5 } as const;
const REDLOCK_V4 = 'redlock 4.2.0 (ioredis)';
const SESAME = '@sesamecare-oss/redlock (ioredis)';

const noop = async () => undefined;

/** Runs one section and prints how long it took on stderr, to keep an eye on the quick budget. */
async function step<T>(name: string, run: () => Promise<T>): Promise<T> {
  const started = performance.now();
  try {
    return await run();
  } finally {
    process.stderr.write(`[bench] peers: ${name} ${((performance.now() - started) / 1000).toFixed(1)} s\n`);
  }
}
/** advisory-lock connects for every lock (~10× the others): fewer calls keep the run short. */
const SLOW = { 'advisory-lock': 0.25 };
const UNCONTENDED = 'advisory lock (or Redis lock) acquire+release, uncontended';

/** Notes the runner prints: skipped cases and why. */
export const peerNotes: string[] = [];

export async function benchPeers(ctx: BenchContext): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  const redisUrl = process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379';
  const redisUp = await redisReachable(redisUrl);
  if (!redisUp) peerNotes.push(`Redis at ${redisUrl} did not answer PING: the redlock peers were skipped.`);
  const prefix = `ormlock-bench:${randomBytes(4).toString('hex')}`;
  const redisClients: Redis[] = [];
  const newRedis = () => {
    const client = new Redis(redisUrl, { maxRetriesPerRequest: 1 });
    client.on('error', () => {});
    redisClients.push(client);
    return client;
  };
  const pools: pg.Pool[] = [];
  const newPool = (max = 1) => {
    const pool = new pg.Pool({ connectionString: ctx.url, max }).on('error', () => {});
    pools.push(pool);
    return pool;
  };
  // A CommonJS module whose `exports.default` is the factory: Node's ESM default is `module.exports`.
  const mutex = advisoryLock.default(ctx.url);
  const key = (client: number, i: number) => `bench:peer:${client}:${i % 64}`;

  /** Acquire + release of one lock on `name`, one op per library; each op on its own connection. */
  const opsFor = (client: number): Record<string, ClientOp> => {
    const pool = newPool();
    const ops: Record<string, ClientOp> = {
      'raw pg': async (i) => {
        const conn = await pool.connect();
        try {
          await conn.query('BEGIN');
          await conn.query('SELECT pg_advisory_xact_lock($1::int8)', [hashKey(key(client, i)).toString()]);
          await conn.query('COMMIT');
        } finally {
          conn.release();
        }
      },
      'ormlock pg': (i) => pgLock(pool).advisory(key(client, i), noop),
      'advisory-lock': (i) => mutex(key(client, i)).withLock(noop),
    };
    if (redisUp) {
      const v4 = new RedlockV4Ctor([newRedis()]);
      v4.on('clientError', () => {});
      const sesame = new SesameRedlock([newRedis()]);
      ops[REDLOCK_V4] = async (i) => (await v4.lock(`${prefix}:${key(client, i)}`, TTL_MS)).unlock();
      ops[SESAME] = async (i) => (await sesame.acquire([`${prefix}:${key(client, i)}`], TTL_MS)).release();
    }
    return ops;
  };

  try {
    // Uncontended acquire + release, 1 client, every library in the same alternating rounds.
    const plan1 = ctx.quick ? { rounds: 2, perRound: 40, warmup: 10 } : { rounds: 6, perRound: 250, warmup: 50 };
    const one = await step('uncontended, 1 client', () => compare(opsFor(0), plan1, SLOW));
    rows.push(...peerRows(UNCONTENDED, one, 1));

    // The same with 16 clients at once, each on its own connection and its own keys.
    const perClient = Array.from({ length: CLIENTS }, (_, c) => opsFor(c));
    const cases: Record<string, ClientOp[]> = {};
    for (const name of Object.keys(perClient[0]!)) cases[name] = perClient.map((ops) => ops[name]!);
    const plan16 = ctx.quick ? { rounds: 2, perClient: 6, warmup: 2 } : { rounds: 4, perClient: 40, warmup: 10 };
    const sixteen = await step('uncontended, 16 clients', () => compareConcurrent(cases, plan16, SLOW));
    rows.push(...peerRows(UNCONTENDED, sixteen, CLIENTS));
    await Promise.all(pools.splice(0).map((p) => p.end()));

    rows.push(...(await step('prisma helper', () => prismaHelper(ctx))));
    rows.push(...(await step('handoff', () => handoff(ctx, redisUp, newRedis, newPool, prefix))));
  } finally {
    await Promise.all(pools.map((p) => p.end()));
    for (const client of redisClients) client.disconnect();
  }
  return rows;
}

function peerRows(caseName: string, figures: Record<string, { medianMs: number; p99Ms: number; opsPerSec: number }>, clients: number): BenchRow[] {
  const floor = figures['raw pg']!.medianMs;
  return Object.entries(figures).map(([driver, f]) => ({
    case: caseName,
    driver,
    clients,
    ...f,
    kind: driver === 'raw pg' ? 'floor' : driver.startsWith('ormlock') ? 'ormlock' : 'peer',
    ratio: driver === 'raw pg' ? undefined : f.medianMs / floor,
    note:
      driver === 'advisory-lock'
        ? 'new connection per lock'
        : driver.includes('redis')
          ? 'Redis, not PostgreSQL; × is over the pg floor'
          : undefined,
  }));
}

/**
 * The Prisma helper apps hand-write today (prisma/prisma#17136 and friends) beside ormlock's
 * Prisma layer and the raw floor (int8 key bound as a parameter), 1 and 16 clients.
 */
async function prismaHelper(ctx: BenchContext): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  const make = (max: number) => new PrismaClient({ adapter: new PrismaPg({ connectionString: ctx.url, max }) }).$extends(lockExtension());
  const key = (client: number, i: number) => `bench:prisma:${client}:${i % 64}`;
  for (const clients of [1, CLIENTS]) {
    const prisma = make(clients);
    try {
      const ops: Record<string, (c: number) => ClientOp> = {
        'raw prisma': (c) => (i) => prisma.$transaction(async (tx) => void (await tx.$executeRawUnsafe('SELECT pg_advisory_xact_lock($1::int8)', hashKey(key(c, i)).toString()))),
        // As a typical app writes it: hashtext() (32 bits, collision-prone), ::text so Prisma can
        // deserialize the void result, the work inside the same interactive transaction.
        'prisma $queryRaw helper (hand-written)': (c) => (i) =>
          prisma.$transaction(async (tx) => {
            await tx.$queryRaw`SELECT pg_advisory_xact_lock(hashtext(${key(c, i)}))::text`;
          }),
        'ormlock prisma': (c) => (i) => prisma.$lock.advisory(key(c, i), noop),
      };
      let figures;
      if (clients === 1) {
        const plan = ctx.quick ? { rounds: 2, perRound: 40, warmup: 10 } : { rounds: 6, perRound: 150, warmup: 50 };
        figures = await compare(Object.fromEntries(Object.entries(ops).map(([n, f]) => [n, f(0)])), plan);
      } else {
        const plan = ctx.quick ? { rounds: 2, perClient: 4, warmup: 1 } : { rounds: 4, perClient: 15, warmup: 5 };
        figures = await compareConcurrent(
          Object.fromEntries(Object.entries(ops).map(([n, f]) => [n, Array.from({ length: clients }, (_, c) => f(c))])),
          plan,
        );
      }
      const floor = figures['raw prisma']!.medianMs;
      for (const [driver, f] of Object.entries(figures)) {
        rows.push({
          case: 'advisory xact, acquire+release in a transaction (Prisma)',
          driver,
          clients,
          ...f,
          kind: driver === 'raw prisma' ? 'floor' : driver.startsWith('ormlock') ? 'ormlock' : 'peer',
          ratio: driver === 'raw prisma' ? undefined : f.medianMs / floor,
          note: driver.includes('hand-written') ? 'hashtext: 32-bit key' : undefined,
        });
      }
    } finally {
      await prisma.$disconnect();
    }
  }
  return rows;
}

/**
 * 16 clients loop on one resource, each releasing right after it acquires. PostgreSQL's blocking
 * wait queues waiters in order; redlock's waiters sleep between retries, so the releaser, which
 * asks again at once, tends to win.
 */
async function handoff(
  ctx: BenchContext,
  redisUp: boolean,
  newRedis: () => Redis,
  newPool: (max?: number) => pg.Pool,
  prefix: string,
): Promise<BenchRow[]> {
  const plan = ctx.quick ? { durationMs: 500, warmupMs: 100 } : { durationMs: 4000, warmupMs: 500 };
  const name = 'bench:handoff';
  const cases: Array<{ driver: string; kind: BenchRow['kind']; note?: string; clients: () => HandoffClient[]; gaveUp?: (e: unknown) => boolean }> = [
    {
      driver: 'raw pg',
      kind: 'floor',
      note: 'blocking pg_advisory_xact_lock, COMMIT releases',
      clients: () =>
        Array.from({ length: CLIENTS }, () => {
          const pool = newPool();
          return async () => {
            const conn = await pool.connect();
            await conn.query('BEGIN');
            await conn.query('SELECT pg_advisory_xact_lock($1::int8)', [hashKey(name).toString()]);
            return async () => {
              try {
                await conn.query('COMMIT');
              } finally {
                conn.release();
              }
            };
          };
        }),
    },
    {
      driver: 'ormlock pg',
      kind: 'ormlock',
      note: 'advisory(key, fn): waits on the server',
      clients: () =>
        Array.from({ length: CLIENTS }, () => {
          const pool = newPool();
          return () =>
            new Promise<() => Promise<unknown>>((resolve, reject) => {
              const done: Promise<unknown> = pgLock(pool).advisory(
                name,
                () =>
                  new Promise<void>((release) =>
                    resolve(async () => {
                      release();
                      await done;
                    }),
                  ),
              );
              done.catch(reject);
            });
        }),
    },
  ];
  if (redisUp) {
    const v4 = (settings: RedlockV4Settings | undefined): (() => HandoffClient[]) => () =>
      Array.from({ length: CLIENTS }, () => {
        const redlock = new RedlockV4Ctor([newRedis()], settings);
        redlock.on('clientError', () => {});
        return async () => {
          const lock = await redlock.lock(`${prefix}:${name}`, TTL_MS);
          return () => lock.unlock();
        };
      });
    const sesame = (settings: SesameSettings | undefined): (() => HandoffClient[]) => () =>
      Array.from({ length: CLIENTS }, () => {
        const redlock = new SesameRedlock([newRedis()], settings);
        return async () => {
          const lock = await redlock.acquire([`${prefix}:${name}`], TTL_MS);
          return () => lock.release();
        };
      });
    const gaveUp = (e: unknown) => e instanceof Error && /LockError|ExecutionError/.test(e.name);
    cases.push(
      { driver: `${REDLOCK_V4}, default retry`, kind: 'peer', clients: v4(undefined), gaveUp, note: '10 retries, 200 ± 100 ms' },
      { driver: `${REDLOCK_V4}, tuned retry`, kind: 'peer', clients: v4(TUNED), gaveUp, note: 'unlimited retries, 10 ± 5 ms' },
      { driver: `${SESAME}, default retry`, kind: 'peer', clients: sesame(undefined), gaveUp, note: '10 retries, 200 ± 100 ms' },
      { driver: `${SESAME}, tuned retry`, kind: 'peer', clients: sesame(TUNED), gaveUp, note: 'unlimited retries, 10 ± 5 ms' },
    );
  }
  const rows: BenchRow[] = [];
  for (const c of cases) {
    const f = await measureHandoff(c.clients(), { ...plan, gaveUp: c.gaveUp });
    rows.push({
      case: 'contended handoff, one resource',
      driver: c.driver,
      clients: CLIENTS,
      opsPerSec: f.opsPerSec,
      medianMs: f.gapP50Ms,
      p99Ms: f.gapP99Ms,
      kind: c.kind,
      note: c.note,
      handoff: f,
    });
  }
  return rows;
}

async function redisReachable(url: string): Promise<boolean> {
  const probe = new Redis(url, { lazyConnect: true, connectTimeout: 1000, maxRetriesPerRequest: 0, retryStrategy: () => null });
  probe.on('error', () => {});
  try {
    await probe.connect();
    return (await probe.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    probe.disconnect();
  }
}
