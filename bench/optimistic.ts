/**
 * Increments under contention: optimistic (read, then compare-and-swap on the version column,
 * retried by `withRetry`) against pessimistic (a transaction that takes the row lock with
 * `SELECT … FOR UPDATE`, then updates). Low contention: every client has a row of its own. High
 * contention: all clients increment one row. Each client has a connection of its own.
 *
 * The optimistic rows' `note` says how many conflicts (retries) an increment took on average.
 */
import { PrismaPg } from '@prisma/adapter-pg';
import { eq } from 'drizzle-orm';
import { drizzle } from 'drizzle-orm/node-postgres';
import pg from 'pg';
import { counters } from '../drizzle/schema.js';
import { PrismaClient } from '../prisma/generated/client.js';
import { summarize } from './stats.js';
import type { BenchContext, BenchRow } from './types.js';
import { core, drizzleLayer, prismaLayer } from './ormlock.js';

const { updateVersioned } = drizzleLayer;
const { StaleVersionError, withRetry } = core;
const { lockExtension } = prismaLayer;

const CLIENTS = 16;
// Generous: under high contention an increment can lose several races in a row.
const RETRY = { retries: 100 } as const;

/** One client's increment of counter `name`; resolves how many conflicts it took. */
type Increment = (name: string) => Promise<number>;

interface Strategy {
  driver: string;
  /** Who wrote it, for the chart: hand-written SQL, ormlock, or the way apps write it today. */
  author: 'floor' | 'ormlock' | 'peer';
  kind: 'optimistic' | 'pessimistic';
  /** Opens one client (its own connection) and returns its increment and a closer. */
  open(url: string): { increment: Increment; close(): Promise<unknown> };
}

function retried(fn: (name: string) => Promise<void>): Increment {
  return async (name) => {
    let conflicts = 0;
    await withRetry(() => fn(name), { ...RETRY, onRetry: () => (conflicts += 1) });
    return conflicts;
  };
}

const strategies: Strategy[] = [
  {
    driver: 'raw pg (CAS)',
    author: 'floor',
    kind: 'optimistic',
    open(url) {
      const pool = new pg.Pool({ connectionString: url, max: 1 }).on('error', () => {});
      return {
        close: () => pool.end(),
        increment: retried(async (name) => {
          const { rows } = await pool.query<{ value: number; version: number }>('SELECT value, version FROM "Counter" WHERE name = $1', [name]);
          const row = rows[0]!;
          const updated = await pool.query('UPDATE "Counter" SET value = $2, version = version + 1 WHERE name = $1 AND version = $3', [
            name,
            row.value + 1,
            row.version,
          ]);
          if (updated.rowCount === 0) throw new StaleVersionError('version-mismatch', row.version, undefined, { table: 'Counter' });
        }),
      };
    },
  },
  {
    driver: 'raw pg (FOR UPDATE)',
    author: 'floor',
    kind: 'pessimistic',
    open(url) {
      const pool = new pg.Pool({ connectionString: url, max: 1 }).on('error', () => {});
      return {
        close: () => pool.end(),
        increment: async (name) => {
          const client = await pool.connect();
          try {
            await client.query('BEGIN');
            const { rows } = await client.query<{ value: number }>('SELECT value FROM "Counter" WHERE name = $1 FOR UPDATE', [name]);
            await client.query('UPDATE "Counter" SET value = $2 WHERE name = $1', [name, rows[0]!.value + 1]);
            await client.query('COMMIT');
          } catch (error) {
            await client.query('ROLLBACK');
            throw error;
          } finally {
            client.release();
          }
          return 0;
        },
      };
    },
  },
  {
    driver: 'ormlock drizzle updateVersioned',
    author: 'ormlock',
    kind: 'optimistic',
    open(url) {
      const pool = new pg.Pool({ connectionString: url, max: 1 }).on('error', () => {});
      const db = drizzle({ client: pool });
      return {
        close: () => pool.end(),
        increment: retried(async (name) => {
          const [row] = await db.select().from(counters).where(eq(counters.name, name));
          await updateVersioned(db, counters, { where: eq(counters.name, name), version: row!.version, set: { value: row!.value + 1 } });
        }),
      };
    },
  },
  {
    driver: 'drizzle (FOR UPDATE)',
    author: 'peer',
    kind: 'pessimistic',
    open(url) {
      const pool = new pg.Pool({ connectionString: url, max: 1 }).on('error', () => {});
      const db = drizzle({ client: pool });
      return {
        close: () => pool.end(),
        increment: async (name) => {
          await db.transaction(async (tx) => {
            const [row] = await tx.select().from(counters).where(eq(counters.name, name)).for('update');
            await tx.update(counters).set({ value: row!.value + 1 }).where(eq(counters.name, name));
          });
          return 0;
        },
      };
    },
  },
  {
    driver: 'ormlock prisma updateVersioned',
    author: 'ormlock',
    kind: 'optimistic',
    open(url) {
      const prisma = new PrismaClient({ adapter: new PrismaPg({ connectionString: url, max: 1 }) }).$extends(lockExtension());
      return {
        close: () => prisma.$disconnect(),
        increment: retried(async (name) => {
          const row = await prisma.counter.findUniqueOrThrow({ where: { name } });
          await prisma.counter.updateVersioned({ where: { name }, version: row.version, data: { value: row.value + 1 } });
        }),
      };
    },
  },
  {
    driver: 'prisma (FOR UPDATE)',
    author: 'peer',
    kind: 'pessimistic',
    open(url) {
      const prisma = new PrismaClient({ adapter: new PrismaPg({ connectionString: url, max: 1 }) });
      return {
        close: () => prisma.$disconnect(),
        increment: async (name) => {
          await prisma.$transaction(
            async (tx) => {
              const [locked] = await tx.$queryRawUnsafe<{ value: number }[]>('SELECT value FROM "Counter" WHERE name = $1 FOR UPDATE', name);
              await tx.counter.update({ where: { name }, data: { value: locked!.value + 1 } });
            },
            { timeout: 60_000, maxWait: 60_000 },
          );
          return 0;
        },
      };
    },
  },
];

/** Printed under the table by `bench/run.ts`. */
export const optimisticNotes: string[] = [
  `increments by ${CLIENTS} clients, each on a connection of its own; optimistic = read, then compare-and-swap on the version column in withRetry (default backoff); pessimistic = BEGIN, SELECT … FOR UPDATE, UPDATE, COMMIT. Low contention: a row per client; high: all on one row. Optimistic and pessimistic of a driver run in alternating rounds, and every round checks that no increment was lost.`,
];

/**
 * Optimistic vs pessimistic increments, low and high contention, for pg, Drizzle and Prisma.
 * The two strategies of a driver run in alternating rounds on the same rows, so a drift of the
 * machine's speed (other load) hits both alike; every round checks that no increment was lost.
 */
export async function benchOptimistic(ctx: BenchContext): Promise<BenchRow[]> {
  const plan = ctx.quick ? { rounds: 1, opsPerRound: 10 } : { rounds: 6, opsPerRound: 50 };
  const admin = new pg.Pool({ connectionString: ctx.url, max: 2 }).on('error', () => {});
  const total = async (): Promise<number> =>
    Number((await admin.query<{ total: string }>(`SELECT coalesce(sum(value), 0)::text AS total FROM "Counter" WHERE name LIKE 'bench:%'`)).rows[0]?.total);
  const rows: BenchRow[] = [];
  try {
    for (const contention of ['low', 'high'] as const) {
      const names = Array.from({ length: CLIENTS }, (_, i) => (contention === 'low' ? `bench:${i}` : 'bench:hot'));
      for (let pair = 0; pair < strategies.length; pair += 2) {
        const contenders = strategies.slice(pair, pair + 2);
        await admin.query(`DELETE FROM "Counter" WHERE name LIKE 'bench:%'`);
        await admin.query(`INSERT INTO "Counter" (name) SELECT DISTINCT unnest($1::text[])`, [names]);
        const opened = contenders.map((strategy) => ({ strategy, clients: names.map(() => strategy.open(ctx.url)), samples: [] as number[], elapsedMs: 0, conflicts: 0 }));
        try {
          // Warm up every connection (and Prisma's engine) outside the timing.
          for (const { clients } of opened) await Promise.all(clients.map((client, i) => client.increment(names[i]!)));
          for (let round = 0; round < plan.rounds; round += 1) {
            for (const run of opened) {
              const before = await total();
              const start = performance.now();
              await Promise.all(
                run.clients.map(async (client, i) => {
                  for (let op = 0; op < plan.opsPerRound; op += 1) {
                    const began = performance.now();
                    run.conflicts += await client.increment(names[i]!);
                    run.samples.push(performance.now() - began);
                  }
                }),
              );
              run.elapsedMs += performance.now() - start;
              const after = await total();
              if (after - before !== CLIENTS * plan.opsPerRound) {
                throw new Error(`${run.strategy.driver}: lost updates (${after - before} of ${CLIENTS * plan.opsPerRound} increments)`);
              }
            }
          }
        } finally {
          await Promise.all(opened.flatMap(({ clients }) => clients.map((client) => client.close())));
        }
        for (const { strategy, samples, elapsedMs, conflicts } of opened) {
          rows.push({
            case: `increment, ${contention} contention (${contention === 'low' ? 'a row per client' : 'one row'}), ${strategy.kind}`,
            driver: strategy.driver,
            kind: strategy.author,
            clients: CLIENTS,
            ...(strategy.kind === 'optimistic' ? { note: `${(conflicts / samples.length).toFixed(3)} retries/op` } : {}),
            opsPerSec: (samples.length * 1000) / elapsedMs,
            ...summarize(samples),
          });
        }
      }
    }
  } finally {
    await admin.query(`DELETE FROM "Counter" WHERE name LIKE 'bench:%'`).catch(() => undefined);
    await admin.end();
  }
  return rows;
}
