import { InvalidLockArgumentError } from '../core/errors.js';
import { mapDriverError } from '../core/wait.js';
import type { Executor, SideChannel } from '../core/executor.js';
import type { PgClientLike, PgPoolLike, PgQueryResultLike, PgTransactionOptions } from './pg-like.js';

const ISOLATION = {
  'read committed': 'READ COMMITTED',
  'repeatable read': 'REPEATABLE READ',
  serializable: 'SERIALIZABLE',
} as const;

/** An executor over one node-postgres client. */
export function clientExecutor(client: PgClientLike, inTransaction: boolean, sideChannel: SideChannel | undefined): Executor {
  return {
    query: async <T>(text: string, params: readonly unknown[] = []) => (await client.query(text, params)).rows as T[],
    inTransaction,
    // No backendPid from client.processID: behind pgbouncer (or any proxy) that is the proxy's
    // cancel key, not the server backend, so waits would cancel or prioritize the wrong pid.
    // The pid is read with pg_backend_pid() when a wait needs it.
    sideChannel,
  };
}

/** The statement that opens a transaction with the caller's options, all of them ormlock's own text. */
export function beginStatement(options: PgTransactionOptions | undefined): string {
  if (options === undefined) return 'BEGIN';
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new InvalidLockArgumentError('options.transaction', 'expected { isolationLevel?, readOnly? }');
  }
  for (const name of Object.keys(options)) {
    if (name !== 'isolationLevel' && name !== 'readOnly') throw new InvalidLockArgumentError(`options.transaction.${name}`, 'unknown option');
  }
  if (options.readOnly !== undefined && typeof options.readOnly !== 'boolean') {
    throw new InvalidLockArgumentError('options.transaction.readOnly', 'expected a boolean');
  }
  const parts = ['BEGIN'];
  if (options.isolationLevel !== undefined) {
    const level = ISOLATION[options.isolationLevel];
    if (level === undefined) throw new InvalidLockArgumentError('options.transaction.isolationLevel', `expected one of ${Object.keys(ISOLATION).join(', ')}`);
    parts.push(`ISOLATION LEVEL ${level}`);
  }
  if (options.readOnly === true) parts.push('READ ONLY');
  return parts.join(' ');
}

/**
 * Runs `fn` in a transaction on `client`: BEGIN, `fn`, COMMIT; ROLLBACK if `fn` throws.
 * `onBroken` is told when the connection can no longer be trusted (a ROLLBACK that failed), so a
 * pooled client is destroyed instead of going back to the pool inside a transaction.
 */
export async function runTransaction<R>(
  client: PgClientLike,
  options: PgTransactionOptions | undefined,
  fn: () => Promise<R>,
  onBroken: (error: Error) => void = () => {},
): Promise<R> {
  await client.query(beginStatement(options));
  let result: R;
  try {
    result = await fn();
  } catch (error) {
    await client.query('ROLLBACK').catch((rollbackError: Error) => onBroken(rollbackError));
    throw error;
  }
  try {
    await client.query('COMMIT');
  } catch (error) {
    throw mapDriverError(error);
  }
  return result;
}

/**
 * Named prepared statements through node-postgres (`query({ name, text, values })`): each pooled
 * connection parses and plans a statement once, and only binds and runs it after that. Not for a
 * connection behind a transaction-mode pooler (the next statement may reach another backend).
 */
export function preparedQuery(target: PgPoolLike): NonNullable<Executor['queryPrepared']> {
  const query = target.query as unknown as (config: { name: string; text: string; values: readonly unknown[] }) => Promise<PgQueryResultLike>;
  return async <T>(name: string, text: string, params: readonly unknown[]) => (await query.call(target, { name, text, values: params })).rows as T[];
}

/**
 * The lease statements' executor on a node-postgres pool: each statement commits by itself on a
 * pooled connection, the fixed ones sent by name ({@link preparedQuery}) unless the pool sits
 * behind a transaction-mode pooler.
 */
export function poolLeaseExecutor(pool: PgPoolLike, pooling: 'none' | 'session' | 'transaction' | undefined): Executor {
  return { ...poolSideChannel(pool), inTransaction: false, queryPrepared: pooling === 'transaction' ? undefined : preparedQuery(pool) };
}

/** A second connection for cancelling waits: the pool itself. */
export function poolSideChannel(pool: PgPoolLike): SideChannel {
  return { query: async <T>(text: string, params: readonly unknown[] = []) => (await pool.query(text, params)).rows as T[] };
}

/**
 * A second connection for cancelling waits of a standalone client: a short-lived client of the
 * same class and connection parameters, opened only when a wait is aborted.
 */
export function clientSideChannel(client: PgClientLike): SideChannel | undefined {
  const Client = (client as unknown as { constructor?: new (config: unknown) => PgClientLike & { connect(): Promise<unknown>; end(): Promise<void> } }).constructor;
  const parameters = (client as { connectionParameters?: unknown }).connectionParameters;
  if (typeof Client !== 'function' || parameters === undefined) return undefined;
  return {
    query: async <T>(text: string, params: readonly unknown[] = []) => {
      const side = new Client(parameters);
      await side.connect();
      try {
        return (await side.query(text, params)).rows as T[];
      } finally {
        await side.end();
      }
    },
  };
}
