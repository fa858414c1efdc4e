/**
 * The three ways an app reaches ormlock's advisory locks (Prisma, Drizzle, `pg`), behind one
 * shape so that every advisory test runs against each of them.
 */
import type pg from 'pg';
import type { AdvisoryMethod } from '../../src/index.js';
import { $lock as drizzleLock } from '../../src/drizzle/index.js';
import { toDrizzleSql } from '../../src/drizzle/to-drizzle-sql.js';
import { $lock as pgLock } from '../../src/pg/index.js';
import { lockExtension } from '../../src/prisma/index.js';
import type { TestDatabase } from './database.js';

/** `tx`-bound `advisory`, plus a way to run SQL in the same transaction. */
export interface TxHandle {
  readonly advisory: AdvisoryMethod<unknown, unknown>;
  query<T = Record<string, unknown>>(text: string, params?: unknown[]): Promise<T[]>;
}

export interface AdvisoryDriver {
  readonly name: 'prisma' | 'drizzle' | 'pg';
  /** Runs `fn` in a transaction of the driver, with `$lock` bound to it. */
  transaction<R>(fn: (tx: TxHandle) => Promise<R>): Promise<R>;
  /** The form that opens transactions itself (`prisma.$lock.advisory`, `$lock(db).advisory`, `$lock(pool).advisory`). */
  readonly root: AdvisoryMethod<unknown, unknown>;
  /** Closes what the driver opened (the test database also closes everything in afterAll). */
  close(): Promise<void>;
}

export function prismaDriver(db: TestDatabase): AdvisoryDriver {
  const prisma = db.prisma().$extends(lockExtension());
  return {
    name: 'prisma',
    transaction: (fn) =>
      prisma.$transaction(
        (tx) =>
          fn({
            advisory: tx.$lock.advisory as AdvisoryMethod<unknown, unknown>,
            query: (text, params = []) => tx.$queryRawUnsafe(text, ...params),
          }),
        { timeout: 20_000, maxWait: 10_000 },
      ),
    root: prisma.$lock.advisory as AdvisoryMethod<unknown, unknown>,
    close: () => prisma.$disconnect(),
  };
}

export function drizzleDriver(db: TestDatabase): AdvisoryDriver {
  const drizzle = db.drizzle();
  return {
    name: 'drizzle',
    transaction: (fn) =>
      drizzle.transaction((tx) =>
        fn({
          advisory: drizzleLock(tx, { db: drizzle }).advisory as AdvisoryMethod<unknown, unknown>,
          query: async <T>(text: string, params: unknown[] = []) => {
            // node-postgres resolves { rows }, postgres.js (ORMLOCK_TEST_DRIZZLE=postgres-js) the rows themselves.
            const result: unknown = await tx.execute(toDrizzleSql(text, params));
            return (Array.isArray(result) ? result : (result as { rows: T[] }).rows) as T[];
          },
        }),
      ),
    root: drizzleLock(drizzle).advisory as AdvisoryMethod<unknown, unknown>,
    close: async () => {},
  };
}

export function pgDriver(db: TestDatabase): AdvisoryDriver {
  const pool = db.pool();
  return {
    name: 'pg',
    async transaction(fn) {
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        const result = await fn({
          advisory: pgLock(client, { cancelVia: pool }).advisory as AdvisoryMethod<unknown, unknown>,
          query: async (text, params = []) => (await client.query(text, params)).rows,
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
    root: pgLock(pool).advisory as AdvisoryMethod<unknown, unknown>,
    close: async () => {},
  };
}

/** A second session that holds advisory locks with plain SQL until told to let go. */
export async function holdWithSql(client: pg.Client, sql: string, params: unknown[]): Promise<{ release(): Promise<void> }> {
  await client.query('BEGIN');
  await client.query(sql, params);
  return { release: () => client.query('COMMIT').then(() => undefined) };
}
