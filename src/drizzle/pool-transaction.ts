import { entityKind } from 'drizzle-orm';
import type { PgTransactionConfig } from 'drizzle-orm/pg-core';
import { isPool } from '../pg/pg-like.js';

/** A Drizzle session on node-postgres: its pool, and what a session of its own client needs. */
interface NodePgSessionLike {
  readonly client: unknown;
  readonly dialect: unknown;
  readonly schema: unknown;
  readonly options: unknown;
  transaction<R>(fn: (tx: unknown) => Promise<R>, config?: PgTransactionConfig): Promise<R>;
}

type PooledClient = {
  on(event: 'error', listener: (error: Error) => void): unknown;
  off(event: 'error', listener: (error: Error) => void): unknown;
  release(error?: Error): void;
  /** node-postgres: the last ReadyForQuery status ('I' idle, 'T' in a transaction, 'E' in a failed one). */
  readonly _txStatus?: string | null;
  /** node-postgres: the statement in flight, if any. */
  readonly _activeQuery?: unknown;
};

/** Runs `fn(tx)` in a transaction as `db.transaction(fn, config)` does. */
export type TransactionRunner = <R>(fn: (tx: unknown) => Promise<R>, config?: PgTransactionConfig) => Promise<R>;

/**
 * `db.transaction` for Drizzle on a node-postgres pool, with the pooled client held by ormlock.
 *
 * Drizzle's own `db.transaction()` checks a client out and sends `BEGIN` before its
 * `try … finally` that gives the client back. When `BEGIN` fails (the connection died while the
 * client sat idle in the pool: a restart, a failover, a terminated backend), that client is never
 * released and the pool stays one connection short for good; once every slot is lost, each
 * checkout waits forever. Here the client is checked out by ormlock, the transaction runs on a
 * session of that one client (Drizzle's own session class, with the database's dialect, schema and
 * logger), and the client goes back in `finally` whatever failed, destroyed if its connection
 * reported an error. The 'error' listener also keeps a backend terminated while `fn` awaits from
 * being an unhandled 'error' event that ends the process.
 *
 * `undefined` where the database is not Drizzle's node-postgres session on a pool (postgres.js,
 * another Drizzle version): `db.transaction` is used as it is.
 */
export function pooledTransaction(db: unknown): TransactionRunner | undefined {
  const session = (db as { session?: NodePgSessionLike }).session;
  const pool = (db as { $client?: unknown }).$client;
  if (session === undefined || session.client !== pool || !isPool(pool)) return undefined;
  const Session = session.constructor as (new (client: unknown, dialect: unknown, schema: unknown, options: unknown) => NodePgSessionLike) & {
    [entityKind]?: unknown;
  };
  if (Session[entityKind] !== 'NodePgSession') return undefined;
  return async (fn, config) => {
    const client = (await pool.connect()) as unknown as PooledClient;
    let broken: Error | undefined;
    const onError = (error: Error): void => void (broken ??= error);
    client.on('error', onError);
    // What fn threw: when Drizzle's ROLLBACK then fails too (the connection is gone), the caller
    // gets fn's error, the cause, rather than the rollback's.
    let thrown: { error: unknown } | undefined;
    try {
      const run = async (tx: unknown): Promise<never> => {
        try {
          return (await fn(tx)) as never;
        } catch (error) {
          thrown = { error };
          throw error;
        }
      };
      return await new Session(client, session.dialect, session.schema, session.options).transaction(run, config);
    } catch (error) {
      throw thrown !== undefined && error !== thrown.error ? thrown.error : error;
    } finally {
      client.off('error', onError);
      // A client still in a transaction or with a statement in flight (a ROLLBACK that failed, a
      // client-side query timeout) must not serve the next checkout: it is destroyed.
      const unsettled = (client._txStatus !== undefined && client._txStatus !== null && client._txStatus !== 'I') || (client._activeQuery ?? null) !== null;
      client.release(broken ?? (unsettled ? new Error('ormlock: the connection did not end its transaction cleanly') : undefined));
    }
  };
}
