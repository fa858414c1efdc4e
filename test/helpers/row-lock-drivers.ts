/**
 * The three ways an app reaches ormlock's row and table locks (Prisma, Drizzle, `pg`), behind one
 * shape, so that every row-lock test runs against each of them on the `accounts` / `jobs` tables.
 */
import { asc, eq, inArray, sql } from 'drizzle-orm';
import type pg from 'pg';
import type { RowLockOptions } from '../../src/core/row-lock.js';
import type { TableLockOptions } from '../../src/core/table-lock.js';
import { $lock as drizzleLock } from '../../src/drizzle/index.js';
import { toDrizzleSql } from '../../src/drizzle/to-drizzle-sql.js';
import { $lock as pgLock } from '../../src/pg/index.js';
import { lockExtension } from '../../src/prisma/index.js';
import type { TestDatabase } from './database.js';
import { accounts, jobs } from './models.js';

export type DriverName = 'prisma' | 'drizzle' | 'pg';
export type TableName = 'accounts' | 'jobs';

/** Row and table locks bound to one open transaction of a driver. */
export interface RowTx {
  /** Locks accounts by id, ordered by id; resolves the ids it got. */
  lockAccounts(ids: number[], options?: RowLockOptions): Promise<number[]>;
  /** Claims up to `take` pending jobs (id order) without updating them; resolves their ids. */
  claimJobs(take: number): Promise<number[]>;
  lockTables(tables: TableName[], options?: TableLockOptions): Promise<void>;
  query<T = Record<string, unknown>>(text: string, params?: unknown[]): Promise<T[]>;
}

export interface RowDriver {
  readonly name: DriverName;
  transaction<R>(fn: (tx: RowTx) => Promise<R>): Promise<R>;
  /** Claims up to `take` pending jobs and marks them `running` by `worker`, in one statement, outside a transaction. */
  claimAndMark(take: number, worker: string): Promise<number[]>;
  /** `row()` outside a transaction: must throw NotInTransactionError. */
  rowOutside(): Promise<unknown>;
  modelOutside(): Promise<unknown>;
  claimWithoutSetOutside(): Promise<unknown>;
}

const ids = (rows: { id: unknown }[]): number[] => rows.map((row) => Number(row.id));

export function rowDriver(name: DriverName, db: TestDatabase): RowDriver {
  if (name === 'prisma') {
    const prisma = db.prisma().$extends(lockExtension());
    const MODEL = { accounts: 'Account', jobs: 'Job' } as const;
    return {
      name,
      transaction: (fn) =>
        prisma.$transaction(
          (tx) =>
            fn({
              lockAccounts: async (list, options) =>
                ids(await tx.$lock.row('Account', { where: { id: { in: list } }, orderBy: { id: 'asc' }, ...options })),
              claimJobs: async (take) => ids(await tx.$lock.claim('Job', { where: { status: 'pending' }, orderBy: { id: 'asc' }, take })),
              lockTables: (tables, options) => tx.$lock.model(tables.map((t) => MODEL[t]), options),
              query: (text, params = []) => tx.$queryRawUnsafe(text, ...params),
            }),
          { timeout: 20_000, maxWait: 10_000 },
        ),
      claimAndMark: async (take, worker) =>
        ids(await prisma.$lock.claim('Job', { where: { status: 'pending' }, orderBy: { id: 'asc' }, take, set: { status: 'running', lockedBy: worker, attempts: { increment: 1 } } })),
      rowOutside: () => prisma.$lock.row('Account', { where: { id: 1 } }),
      modelOutside: () => prisma.$lock.model('Account'),
      claimWithoutSetOutside: () => prisma.$lock.claim('Job', { take: 1 }),
    };
  }
  if (name === 'drizzle') {
    const orm = db.drizzle();
    const TABLE = { accounts, jobs } as const;
    return {
      name,
      transaction: (fn) =>
        orm.transaction((tx) => {
          const lock = drizzleLock(tx, { db: orm });
          return fn({
            lockAccounts: async (list, options) =>
              ids(await lock.row(accounts, { where: inArray(accounts.id, list), orderBy: asc(accounts.id), ...options })),
            claimJobs: async (take) => ids(await lock.claim(jobs, { where: eq(jobs.status, 'pending'), orderBy: jobs.id, limit: take })),
            lockTables: (tables, options) => lock.model(tables.map((t) => TABLE[t]), options),
            query: async <T>(text: string, params: unknown[] = []) => {
              // node-postgres resolves { rows }, postgres.js the rows themselves.
              const result = (await tx.execute(toDrizzleSql(text, params))) as unknown;
              return (Array.isArray(result) ? result : (result as { rows: T[] }).rows) as T[];
            },
          });
        }),
      claimAndMark: async (take, worker) =>
        ids(
          await drizzleLock(orm).claim(jobs, {
            where: eq(jobs.status, 'pending'),
            orderBy: jobs.id,
            limit: take,
            set: { status: 'running', lockedBy: worker, attempts: sql`${jobs.attempts} + 1` },
          }),
        ),
      rowOutside: () => drizzleLock(orm).row(accounts, { where: eq(accounts.id, 1) }),
      modelOutside: () => drizzleLock(orm).model(accounts),
      claimWithoutSetOutside: () => drizzleLock(orm).claim(jobs),
    };
  }
  const pool = db.pool({ max: 20 });
  return {
    name,
    async transaction(fn) {
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        const lock = pgLock(client, { cancelVia: pool });
        const result = await fn({
          lockAccounts: async (list, options) => ids(await lock.row<{ id: number }>('accounts', { where: { id: list }, orderBy: { id: 'asc' }, ...options })),
          claimJobs: async (take) => ids(await lock.claim<{ id: string }>('jobs', { where: { status: 'pending' }, orderBy: { id: 'asc' }, limit: take })),
          lockTables: (tables, options) => lock.model(tables, options),
          query: async <T>(text: string, params: unknown[] = []) => (await client.query(text, params)).rows as T[],
        });
        await client.query('COMMIT');
        return result;
      } catch (error) {
        await client.query('ROLLBACK');
        throw error;
      } finally {
        client.release();
      }
    },
    claimAndMark: async (take, worker) =>
      ids(
        await pgLock(pool).claim<{ id: string }>('jobs', {
          where: { status: 'pending' },
          orderBy: { id: 'asc' },
          limit: take,
          set: { status: 'running', locked_by: worker },
        }),
      ),
    rowOutside: () => pgLock(pool).row('accounts', { where: { id: 1 } }),
    modelOutside: () => pgLock(pool).model('accounts'),
    claimWithoutSetOutside: () => pgLock(pool).claim('jobs'),
  };
}

/** A transaction of plain `pg` on its own connection, held open until released. */
export async function holdRows(client: pg.Client, statement: string, params: unknown[] = []): Promise<{ release(): Promise<void> }> {
  await client.query('BEGIN');
  await client.query(statement, params);
  return { release: () => client.query('COMMIT').then(() => undefined) };
}

/**
 * Resolves once backend `pid` waits on a lock; throws if it never does. Used instead of timing:
 * "B blocks" means PostgreSQL itself reports B waiting for a lock.
 */
export async function untilWaitingOnLock(checker: { query(text: string, params?: unknown[]): Promise<{ rows: { w: string | null }[] }> }, pid: number): Promise<void> {
  for (let i = 0; i < 1000; i += 1) {
    const { rows } = await checker.query('SELECT wait_event_type AS w FROM pg_stat_activity WHERE pid = $1', [pid]);
    if (rows[0]?.w === 'Lock') return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`backend ${pid} never waited on a lock`);
}

/** A promise whose state can be read synchronously. */
export function track<T>(promise: Promise<T>): { promise: Promise<T>; readonly settled: boolean } {
  const state = { settled: false };
  const tracked = promise.finally(() => {
    state.settled = true;
  });
  // The tracked promise is awaited by the test; avoid an unhandled rejection in between.
  tracked.catch(() => {});
  return {
    promise: tracked,
    get settled() {
      return state.settled;
    },
  };
}
