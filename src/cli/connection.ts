import type pgModule from 'pg';
import type { Executor, Row } from '../core/executor.js';
import { sqlStateOf } from '../core/sqlstate.js';
import { CliError, type CliIo, EXIT_USAGE } from './io.js';

/** One connection of the CLI, closed with `close()`. */
export interface CliConnection {
  readonly executor: Pick<Executor, 'query'>;
  readonly database: string;
  close(): Promise<void>;
}

/** The database URL from `--url`, else `DATABASE_URL`; checked for shape before connecting. */
export function databaseUrl(url: string | undefined, io: CliIo): string {
  const value = url ?? io.env?.['DATABASE_URL'];
  if (value === undefined || value === '') {
    throw new CliError('no database given: pass --url postgres://… or set DATABASE_URL', EXIT_USAGE);
  }
  let parsed: URL;
  try {
    parsed = new URL(value);
  } catch {
    throw new CliError(`not a valid database URL: ${redact(value)} (expected postgres://user@host:port/database)`, EXIT_USAGE);
  }
  if (parsed.protocol !== 'postgres:' && parsed.protocol !== 'postgresql:') {
    throw new CliError(`not a PostgreSQL URL: ${redact(value)} (expected postgres:// or postgresql://)`, EXIT_USAGE);
  }
  return value;
}

/** Hides a password in a URL before it is printed. */
export function redact(url: string): string {
  return url.replace(/\/\/([^:@/]*):[^@/]*@/, '//$1:***@');
}

/** Connects with node-postgres (a peer dependency), translating the usual failures into plain words. */
export async function connect(url: string): Promise<CliConnection> {
  let pg: typeof pgModule;
  try {
    pg = (await import('pg')).default;
  } catch {
    throw new CliError('the ormlock CLI needs the "pg" package: npm install pg');
  }
  const client = new pg.Client({ connectionString: url, application_name: 'ormlock-cli' });
  client.on('error', () => {});
  try {
    await client.connect();
  } catch (error) {
    await client.end().catch(() => {});
    throw new CliError(`cannot connect to ${redact(url)}: ${describeConnectError(error)}`);
  }
  const [row] = (await client.query<{ db: string }>('SELECT current_database() AS db')).rows;
  return {
    executor: { query: async <T extends Row>(text: string, params: readonly unknown[] = []) => (await client.query(text, params as unknown[])).rows as T[] },
    database: row?.db ?? '',
    close: () => client.end().catch(() => {}),
  };
}

function describeConnectError(error: unknown): string {
  const state = sqlStateOf(error);
  const message = error instanceof Error ? error.message : String(error);
  switch (state) {
    case '28P01':
    case '28000':
      return `authentication failed (${message})`;
    case '3D000':
      return `no such database (${message})`;
    default:
      return message || String((error as { code?: unknown }).code ?? error);
  }
}

/** A failed statement as a CLI error: privilege problems said plainly. */
export function queryFailure(error: unknown, doing: string): CliError {
  if (error instanceof CliError) return error;
  const message = error instanceof Error ? error.message : String(error);
  if (sqlStateOf(error) === '42501') {
    return new CliError(`permission denied to ${doing}: ${message}. Connect as a superuser, as the session's role, or as a member of pg_signal_backend`);
  }
  return new CliError(`${doing} failed: ${message}`);
}
