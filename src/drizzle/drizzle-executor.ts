import type { SQL } from 'drizzle-orm';
import type { Executor, Row, SideChannel } from '../core/executor.js';
import { poolSideChannel } from '../pg/pg-executor.js';
import { isPool } from '../pg/pg-like.js';
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

/** The part of a Drizzle session `db.execute` itself runs on: a query already rendered to text and values. */
interface RenderedQuerySession {
  prepareQuery(query: { sql: string; params: unknown[] }, fields: undefined, name: undefined, isResponseInArrayMode: boolean): { execute(): PromiseLike<unknown> };
}

export function drizzleQuery(target: DrizzleExecuteLike): SideChannel['query'] {
  // `db.execute(sql)` renders the SQL object (`dialect.sqlToQuery`) and hands the text and values
  // to the session's prepareQuery(…).execute(), which runs it with the driver and Drizzle's own
  // value parsing. ormlock's statements are text and values already: giving them to the session
  // directly skips building an SQL object only for Drizzle to take it apart again. Drizzle marks
  // `session` internal, so without it (another Drizzle version) ormlock goes through execute().
  const session = (target as { session?: Partial<RenderedQuerySession> }).session;
  if (session !== undefined && typeof session.prepareQuery === 'function') {
    const direct = session as RenderedQuerySession;
    return async <T>(text: string, params: readonly unknown[] = []) =>
      rowsOf<T>(await direct.prepareQuery({ sql: text, params: params as unknown[] }, undefined, undefined, false).execute());
  }
  return async <T>(text: string, params: readonly unknown[] = []) => rowsOf<T>(await target.execute(toDrizzleSql(text, params)));
}

/** The parts of Drizzle's node-postgres session a claim straight on its pool reads. */
interface NodePgSessionLike {
  readonly client?: unknown;
  readonly logger?: { logQuery(query: string, params: unknown[]): void };
}

const ENTITY_KIND = Symbol.for('drizzle:entityKind');

/**
 * A query straight on the node-postgres pool of a Drizzle database (`drizzle({ client: pool })`,
 * or `drizzle({ connection })`, which makes one), told to the database's logger as Drizzle tells
 * it; undefined on a transaction, another driver, or a pool given its own type parsers (`types`).
 *
 * Only for statements whose every column node-postgres's own parsers read exactly as Drizzle's
 * session does: ormlock's claims on tables of Drizzle's own column types, which read as text the
 * columns node-postgres would parse differently (READ_AS_TEXT in row-locks.ts). A Drizzle session
 * builds a prepared query with two query configs for every statement, runs it through several
 * layers of its own, and node-postgres copies the config it is given: about 10 µs of a claim's
 * JavaScript, in a queue worker's loop.
 */
export function directPoolQuery(target: unknown): SideChannel['query'] | undefined {
  const session = (target as { session?: NodePgSessionLike }).session;
  if (typeof session !== 'object' || session === null) return undefined;
  if ((session.constructor as { [ENTITY_KIND]?: unknown } | undefined)?.[ENTITY_KIND] !== 'NodePgSession') return undefined;
  const pool = session.client;
  if (!isPool(pool) || (pool as { options?: { types?: unknown } }).options?.types !== undefined) return undefined;
  const logger = session.logger;
  const query = poolSideChannel(pool).query;
  return <T extends Row>(text: string, params: readonly unknown[] = []) => {
    logger?.logQuery(text, params as unknown[]);
    return query<T>(text, params);
  };
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
