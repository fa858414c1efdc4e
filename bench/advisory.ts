/**
 * Advisory lock acquire + release: BEGIN, pg_advisory_xact_lock, COMMIT, hand-written against
 * each driver (the floor) and through ormlock, one client, alternating rounds. Two forms: the
 * outside-transaction helper `advisory(key, fn)` that opens the transaction itself, and
 * `advisory(key)` inside a transaction the caller holds; plus pg's session-scoped lock; and the
 * helper form with 16 clients, each on a connection of its own and a key of its own.
 */
import { PrismaPg } from '@prisma/adapter-pg';
import { sql } from 'drizzle-orm';
import { drizzle } from 'drizzle-orm/node-postgres';
import pg from 'pg';
import { PrismaClient } from '../prisma/generated/client.js';
import { type ClientOp, compare, compareConcurrent } from './stats.js';
import type { BenchContext, BenchRow } from './types.js';
import { core, drizzleLayer, pgLayer, prismaLayer } from './ormlock.js';

const drizzleLock = drizzleLayer.$lock;
const pgLock = pgLayer.$lock;
const { lockExtension } = prismaLayer;
const { hashKey } = core;

export async function benchAdvisory(ctx: BenchContext): Promise<BenchRow[]> {
  const plan = ctx.quick ? { rounds: 2, perRound: 40, warmup: 10 } : { rounds: 6, perRound: 500, warmup: 200 };
  const pool = new pg.Pool({ connectionString: ctx.url, max: 1 }).on('error', () => {});
  const db = drizzle({ client: new pg.Pool({ connectionString: ctx.url, max: 1 }).on('error', () => {}) });
  const prisma = new PrismaClient({ adapter: new PrismaPg({ connectionString: ctx.url, max: 1 }) }).$extends(lockExtension());
  const key = (i: number) => `bench:${i % 64}`;
  const raw = (i: number) => hashKey(key(i)).toString();
  const rows: BenchRow[] = [];
  try {
    const noop = async () => undefined;
    const pgInTx = async (i: number, lock: (client: pg.PoolClient) => Promise<unknown>) => {
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        await lock(client);
        await client.query('COMMIT');
      } finally {
        client.release();
      }
      return i;
    };
    const pgFigures = await compare(
      {
        raw: async (i) => {
          const client = await pool.connect();
          try {
            await client.query('BEGIN');
            await client.query('SELECT pg_advisory_xact_lock($1::int8)', [raw(i)]);
            await client.query('COMMIT');
          } finally {
            client.release();
          }
        },
        ormlock: (i) => pgLock(pool).advisory(key(i), noop),
        'ormlock in tx': (i) => pgInTx(i, (client) => pgLock(client).advisory(key(i))),
      },
      plan,
    );
    // Session scope: lock and unlock on a connection held across calls (pg only).
    const held = await pool.connect();
    let sessionFigures;
    try {
      sessionFigures = await compare(
        {
          raw: async (i) => {
            await held.query('SELECT pg_advisory_lock($1::int8)', [raw(i)]);
            const { rows } = await held.query<{ ok: boolean }>('SELECT pg_advisory_unlock($1::int8) AS ok', [raw(i)]);
            if (!rows[0]?.ok) throw new Error('unlock returned false');
          },
          ormlock: async (i) => (await pgLock(held).advisory(key(i), { scope: 'session' }))!.release(),
        },
        plan,
      );
    } finally {
      held.release();
    }
    const drizzleFigures = await compare(
      {
        raw: (i) => db.transaction(async (tx) => void (await tx.execute(sql`SELECT pg_advisory_xact_lock(${raw(i)}::int8)`))),
        ormlock: (i) => drizzleLock(db).advisory(key(i), noop),
        'ormlock in tx': (i) => db.transaction(async (tx) => void (await drizzleLock(tx).advisory(key(i)))),
      },
      plan,
    );
    const prismaFigures = await compare(
      {
        raw: (i) => prisma.$transaction(async (tx) => void (await tx.$executeRawUnsafe('SELECT pg_advisory_xact_lock($1::int8)', raw(i)))),
        ormlock: (i) => prisma.$lock.advisory(key(i), noop),
        'ormlock in tx': (i) => prisma.$transaction(async (tx) => void (await tx.$lock.advisory(key(i)))),
      },
      plan,
    );
    const groups = [
      ['pg', pgFigures],
      ['drizzle', drizzleFigures],
      ['prisma', prismaFigures],
    ] as const;
    // One case per form, each with its own copy of the floor row so the table reads per case.
    for (const [form, caseName] of [
      ['ormlock', 'advisory xact, helper opens the transaction: advisory(key, fn)'],
      ['ormlock in tx', 'advisory xact, inside your transaction: advisory(key)'],
    ] as const) {
      for (const [driver, figures] of groups) {
        const floor = figures['raw']!;
        const f = figures[form]!;
        rows.push({ case: caseName, driver: `raw ${driver}`, clients: 1, ...floor, kind: 'floor' });
        rows.push({ case: caseName, driver: `ormlock ${driver}`, clients: 1, ...f, kind: 'ormlock', ratio: f.medianMs / floor.medianMs });
      }
    }
    const sessionCase = 'advisory session lock + unlock on a held connection';
    rows.push({ case: sessionCase, driver: 'raw pg', clients: 1, ...sessionFigures['raw']!, kind: 'floor' });
    rows.push({
      case: sessionCase,
      driver: 'ormlock pg',
      clients: 1,
      ...sessionFigures['ormlock']!,
      kind: 'ormlock',
      ratio: sessionFigures['ormlock']!.medianMs / sessionFigures['raw']!.medianMs,
      note: 'release() checks the unlock',
    });
  } finally {
    await pool.end();
    await db.$client.end();
    await prisma.$disconnect();
  }
  rows.push(...(await sixteenClients(ctx)));
  return rows;
}

const CLIENTS = 16;

/** `advisory(key, fn)` against BEGIN + lock + COMMIT by hand, 16 clients at once, no contention. */
async function sixteenClients(ctx: BenchContext): Promise<BenchRow[]> {
  const plan = ctx.quick ? { rounds: 2, perClient: 10, warmup: 3 } : { rounds: 4, perClient: 150, warmup: 30 };
  const pool = new pg.Pool({ connectionString: ctx.url, max: CLIENTS }).on('error', () => {});
  const db = drizzle({ client: new pg.Pool({ connectionString: ctx.url, max: CLIENTS }).on('error', () => {}) });
  const prisma = new PrismaClient({ adapter: new PrismaPg({ connectionString: ctx.url, max: CLIENTS }) }).$extends(lockExtension());
  const keyOf = (client: number) => `bench:16:${client}`;
  const each = (make: (key: string, raw: string) => ClientOp): ClientOp[] =>
    Array.from({ length: CLIENTS }, (_, client) => make(keyOf(client), hashKey(keyOf(client)).toString()));
  const noop = async () => undefined;
  const rows: BenchRow[] = [];
  try {
    const groups = {
      pg: await compareConcurrent(
        {
          raw: each((_, raw) => async () => {
            const client = await pool.connect();
            try {
              await client.query('BEGIN');
              await client.query('SELECT pg_advisory_xact_lock($1::int8)', [raw]);
              await client.query('COMMIT');
            } finally {
              client.release();
            }
          }),
          ormlock: each((key) => () => pgLock(pool).advisory(key, noop)),
        },
        plan,
      ),
      drizzle: await compareConcurrent(
        {
          raw: each((_, raw) => () => db.transaction(async (tx) => void (await tx.execute(sql`SELECT pg_advisory_xact_lock(${raw}::int8)`)))),
          ormlock: each((key) => () => drizzleLock(db).advisory(key, noop)),
        },
        plan,
      ),
      prisma: await compareConcurrent(
        {
          raw: each((_, raw) => () => prisma.$transaction(async (tx) => void (await tx.$executeRawUnsafe('SELECT pg_advisory_xact_lock($1::int8)', raw)))),
          ormlock: each((key) => () => prisma.$lock.advisory(key, noop)),
        },
        plan,
      ),
    };
    const caseName = 'advisory xact, helper opens the transaction: advisory(key, fn)';
    for (const [driver, figures] of Object.entries(groups)) {
      const floor = figures['raw']!;
      const f = figures['ormlock']!;
      rows.push({ case: caseName, driver: `raw ${driver}`, clients: CLIENTS, ...floor, kind: 'floor', note: 'a key per client' });
      rows.push({ case: caseName, driver: `ormlock ${driver}`, clients: CLIENTS, ...f, kind: 'ormlock', ratio: f.medianMs / floor.medianMs });
    }
  } finally {
    await pool.end();
    await db.$client.end();
    await prisma.$disconnect();
  }
  return rows;
}
