/**
 * Row lock (`SELECT … FOR UPDATE` of one account by id) and table lock (`LOCK TABLE accounts`,
 * ACCESS EXCLUSIVE, ormlock's default mode), each in a transaction of its own: BEGIN, the lock,
 * COMMIT. Hand-written on each driver (the floor) and through ormlock, 1 client, alternating
 * rounds; the row lock also with 16 clients, each on its own connection and its own rows.
 */
import { PrismaPg } from '@prisma/adapter-pg';
import { eq, sql } from 'drizzle-orm';
import { drizzle } from 'drizzle-orm/node-postgres';
import pg from 'pg';
import { accounts } from '../drizzle/schema.js';
import { PrismaClient } from '../prisma/generated/client.js';
import { type ClientOp, compare, compareConcurrent } from './stats.js';
import type { BenchContext, BenchRow } from './types.js';
import { drizzleLayer, pgLayer, prismaLayer } from './ormlock.js';

const drizzleLock = drizzleLayer.$lock;
const pgLock = pgLayer.$lock;
const { lockExtension } = prismaLayer;

const ROWS = 64;
const CLIENTS = 16;

type Driver = 'pg' | 'drizzle' | 'prisma';
type Ops = Record<'raw row' | 'ormlock row' | 'raw table' | 'ormlock table', ClientOp>;

/** One client's four operations on `driver`, on a connection of its own. */
function open(driver: Driver, url: string, client: number): { ops: Ops; close(): Promise<unknown> } {
  // Client c locks rows 4c+1 … 4c+4: 16 clients share none of the 64 rows.
  const id = (i: number) => 1 + client * 4 + (i % 4);
  if (driver === 'pg') {
    const pool = new pg.Pool({ connectionString: url, max: 1 }).on('error', () => {});
    const inTx = async (fn: (c: pg.PoolClient) => Promise<unknown>) => {
      const c = await pool.connect();
      try {
        await c.query('BEGIN');
        await fn(c);
        await c.query('COMMIT');
      } finally {
        c.release();
      }
    };
    return {
      close: () => pool.end(),
      ops: {
        'raw row': (i) => inTx((c) => c.query('SELECT * FROM accounts WHERE id = $1 FOR UPDATE', [id(i)])),
        'ormlock row': (i) => inTx((c) => pgLock(c).row('accounts', { where: { id: id(i) } })),
        'raw table': () => inTx((c) => c.query('LOCK TABLE accounts IN ACCESS EXCLUSIVE MODE')),
        'ormlock table': () => inTx((c) => pgLock(c).model('accounts')),
      },
    };
  }
  if (driver === 'drizzle') {
    const db = drizzle({ client: new pg.Pool({ connectionString: url, max: 1 }).on('error', () => {}) });
    return {
      close: () => db.$client.end(),
      ops: {
        'raw row': (i) => db.transaction((tx) => tx.select().from(accounts).where(eq(accounts.id, id(i))).for('update')),
        'ormlock row': (i) => db.transaction((tx) => drizzleLock(tx).row(accounts, { where: eq(accounts.id, id(i)) })),
        'raw table': () => db.transaction((tx) => tx.execute(sql`LOCK TABLE accounts IN ACCESS EXCLUSIVE MODE`)),
        'ormlock table': () => db.transaction((tx) => drizzleLock(tx).model(accounts)),
      },
    };
  }
  const prisma = new PrismaClient({ adapter: new PrismaPg({ connectionString: url, max: 1 }) }).$extends(lockExtension());
  return {
    close: () => prisma.$disconnect(),
    ops: {
      // As apps hand-write it today (prisma/prisma#17136): $queryRaw inside an interactive transaction.
      'raw row': (i) => prisma.$transaction((tx) => tx.$queryRaw`SELECT * FROM accounts WHERE id = ${id(i)} FOR UPDATE`),
      'ormlock row': (i) => prisma.$transaction((tx) => tx.$lock.row('Account', { where: { id: id(i) } })),
      'raw table': () => prisma.$transaction((tx) => tx.$executeRaw`LOCK TABLE accounts IN ACCESS EXCLUSIVE MODE`),
      'ormlock table': () => prisma.$transaction((tx) => tx.$lock.model('Account')),
    },
  };
}

export async function benchRowTable(ctx: BenchContext): Promise<BenchRow[]> {
  const seed = new pg.Client({ connectionString: ctx.url });
  await seed.connect();
  try {
    await seed.query(`INSERT INTO accounts (owner, balance) SELECT 'bench ' || n, 100 FROM generate_series(1, ${ROWS}) AS n`);
  } finally {
    await seed.end();
  }
  const plan = ctx.quick ? { rounds: 2, perRound: 20, warmup: 5 } : { rounds: 6, perRound: 250, warmup: 50 };
  const plan16 = ctx.quick ? { rounds: 2, perClient: 3, warmup: 1 } : { rounds: 4, perClient: 25, warmup: 5 };
  const rows: BenchRow[] = [];
  for (const driver of ['pg', 'drizzle', 'prisma'] as const) {
    const one = open(driver, ctx.url, 0);
    try {
      const f = await compare(one.ops, plan);
      for (const [what, caseName] of [
        ['row', 'row lock FOR UPDATE by id, in a transaction'],
        ['table', 'table lock (LOCK TABLE, ACCESS EXCLUSIVE), in a transaction'],
      ] as const) {
        const floor = f[`raw ${what}`]!;
        const ours = f[`ormlock ${what}`]!;
        rows.push({ case: caseName, driver: `raw ${driver}`, clients: 1, kind: 'floor', ...floor });
        rows.push({ case: caseName, driver: `ormlock ${driver}`, clients: 1, kind: 'ormlock', ...ours, ratio: ours.medianMs / floor.medianMs });
      }
    } finally {
      await one.close();
    }
    const many = Array.from({ length: CLIENTS }, (_, c) => open(driver, ctx.url, c));
    try {
      const f = await compareConcurrent({ raw: many.map((m) => m.ops['raw row']), ormlock: many.map((m) => m.ops['ormlock row']) }, plan16);
      const caseName = 'row lock FOR UPDATE by id, in a transaction';
      rows.push({ case: caseName, driver: `raw ${driver}`, clients: CLIENTS, kind: 'floor', ...f['raw']!, note: 'rows of its own per client' });
      rows.push({ case: caseName, driver: `ormlock ${driver}`, clients: CLIENTS, kind: 'ormlock', ...f['ormlock']!, ratio: f['ormlock']!.medianMs / f['raw']!.medianMs });
    } finally {
      await Promise.all(many.map((m) => m.close()));
    }
  }
  return rows;
}
