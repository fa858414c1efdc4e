import type { SQL } from 'drizzle-orm';
import type { Executor, SideChannel } from '../core/executor.js';
import { toDrizzleSql } from './to-drizzle-sql.js';

/** What ormlock needs of a Drizzle PostgreSQL database or transaction (any driver). */
export interface DrizzleExecuteLike {
  /** Runs a Drizzle `SQL` query (`db.execute(sql`…`)`). */
  execute(query: SQL): PromiseLike<unknown>;
}

/** node-postgres resolves `{ rows }`, postgres.js an array of rows. */
function rowsOf<T>(result: unknown): T[] {
  if (Array.isArray(result)) return result as T[];
  return ((result as { rows?: T[] }).rows ?? []) as T[];
}

export function drizzleQuery(target: DrizzleExecuteLike): SideChannel['query'] {
  return async <T>(text: string, params: readonly unknown[] = []) => rowsOf<T>(await target.execute(toDrizzleSql(text, params)));
}

export function drizzleExecutor(target: DrizzleExecuteLike, inTransaction: boolean, sideChannel: SideChannel | undefined): Executor {
  const nested = (target as { transaction?: unknown }).transaction;
  // In a transaction, Drizzle's nested transaction is a savepoint made by the driver's own API,
  // which postgres.js requires for a failed statement not to fail the whole transaction.
  const savepoint =
    inTransaction && typeof nested === 'function'
      ? <T>(fn: (executor: Executor) => Promise<T>): Promise<T> =>
          (nested as (run: (tx: DrizzleExecuteLike) => Promise<T>) => Promise<T>).call(target, (sp) => fn(drizzleExecutor(sp, true, sideChannel)))
      : undefined;
  return { query: drizzleQuery(target), inTransaction, sideChannel, savepoint };
}
