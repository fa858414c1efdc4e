/**
 * One fresh PostgreSQL database per test file, with the tables, connections and leak checks the
 * ormlock suites need. See {@link useTestDatabase}.
 */
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { basename } from 'node:path';
import { PrismaPg } from '@prisma/adapter-pg';
import { drizzle as drizzleNodePg, type NodePgDatabase } from 'drizzle-orm/node-postgres';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, expect, inject } from 'vitest';
import * as schema from '../../drizzle/schema.js';
import { PrismaClient } from '../../prisma/generated/client.js';
import { waitForNoLeaks } from './leak-check.js';
import { applyMigrations, type MigrationSet } from './migrations.js';
import type { TestServerContext } from './provided-context.js';
import { testVariant } from './test-variant.js';

/** Connection settings a test may pass to `pool()` / `client()`; the URL is always the test database's. */
export type TestConnectionConfig = Omit<pg.PoolConfig, 'connectionString' | 'host' | 'port' | 'database' | 'user' | 'password'>;

/**
 * The Drizzle instance returned by {@link TestDatabase.drizzle}, with `drizzle/schema.ts`: typed as
 * node-postgres, which it is unless `ORMLOCK_TEST_DRIZZLE=postgres-js` (then `$client` is a
 * postgres.js `Sql`; tests should not reach for `$client`).
 */
export type TestDrizzle = NodePgDatabase<typeof schema> & { $client: pg.Pool };

/** Options of {@link useTestDatabase}. */
export interface TestDatabaseOptions {
  /** Which committed migrations create the tables (`accounts`, `jobs`, `"Counter"`, `memberships`). Default `'none'`. */
  migrations?: MigrationSet;
  /** Runs after the migrations, on a connection that is then closed (e.g. to create a lease table). */
  setup?: (client: pg.Client) => Promise<void>;
  /**
   * The check after every test. `false` turns it off (only for tests that leak on purpose and
   * clean up themselves). `extra` adds checks of your own: return one line per problem.
   */
  leakCheck?: false | { graceMs?: number; extra?: (checker: pg.Client) => Promise<string[]> };
}

/** A database created for one test file; everything it hands out is closed in `afterAll`. */
export interface TestDatabase {
  /** Database name, unique per call (lower-case letters, digits and `_`). */
  readonly name: string;
  /** Connection URL of the database (superuser). */
  readonly url: string;
  /** Major version of the server, e.g. `15` or `18`. */
  readonly serverVersion: number;
  /**
   * Schema of the test tables (`ORMLOCK_TEST_SCHEMA`, default `public`); it is the database's
   * `search_path`, so unqualified names find the tables. Pass it to what takes a schema option
   * (lease tables); quote it with {@link quoteIdent} in SQL text.
   */
  readonly schema: string;
  /** pgbouncer's pool mode when the run goes through it (`ORMLOCK_TEST_POOLER`), else `'none'`. */
  readonly pooler: 'none' | 'session' | 'transaction';
  /** A new `pg.Pool` on the database. Usable once `beforeAll` ran. */
  pool(config?: TestConnectionConfig): pg.Pool;
  /** A new, connected `pg.Client` of its own (one backend, for session locks and blocking tests). */
  client(config?: TestConnectionConfig): Promise<pg.Client>;
  /** Runs one statement on a shared pool and returns its rows. */
  query<R extends pg.QueryResultRow = Record<string, unknown>>(text: string, values?: unknown[]): Promise<R[]>;
  /**
   * A new PrismaClient over `@prisma/adapter-pg` (with the adapter's `schema` option when the
   * tables are not in `public`): from `prisma/generated` (`prisma-client` generator), or from
   * `prisma/generated-js` (`prisma-client-js`) when `ORMLOCK_TEST_PRISMA=js`. Typed as the former.
   * The adapter gets a connection string, or with `pool` a `pg.Pool` of its own made with that config.
   * With `logQueries`, Prisma emits a 'query' event for each statement it runs.
   */
  prisma(options?: { pool?: TestConnectionConfig; logQueries?: boolean }): PrismaClient;
  /**
   * A new Drizzle instance on a pool of its own, with `drizzle/schema.ts`: node-postgres, or
   * postgres.js when `ORMLOCK_TEST_DRIZZLE=postgres-js` (`config.max` and
   * `config.application_name` carry over; other settings are refused there).
   */
  drizzle(config?: TestConnectionConfig): TestDrizzle;
}

const CLOSE_TIMEOUT_MS = 5000;

/**
 * Registers `beforeAll` / `afterEach` / `afterAll` hooks for a fresh database; call it at the
 * top level of a test file (or of a `describe`, to scope the database to that block). Calling it
 * twice gives two databases.
 *
 * - `beforeAll`: `CREATE DATABASE` with a unique name, then the chosen migrations and `setup`.
 * - `afterEach`: fails the test if an advisory lock is still held or awaited, or a session is
 *   `idle in transaction` in this database (after up to `graceMs`, default 1 s, for commits still
 *   in flight). Leaking sessions are terminated so the next test starts clean.
 * - `afterAll`: ends every pool, client and Prisma client handed out, then
 *   `DROP DATABASE ... WITH (FORCE)`.
 *
 * @example
 * const db = useTestDatabase({ migrations: 'prisma' });
 *
 * test('two sessions', async () => {
 *   const a = await db.client();
 *   const prisma = db.prisma();
 *   await prisma.account.create({ data: { owner: 'ann', balance: '10.00' } });
 * });
 */
export function useTestDatabase(options: TestDatabaseOptions = {}): TestDatabase {
  const adminUrl: TestServerContext['ormlockAdminUrl'] = inject('ormlockAdminUrl');
  const serverVersion: TestServerContext['ormlockServerVersion'] = inject('ormlockServerVersion');
  const pooler: TestServerContext['ormlockPooler'] = inject('ormlockPooler');
  const schemaName: TestServerContext['ormlockSchema'] = inject('ormlockSchema');
  const variant = testVariant();
  const name = uniqueDatabaseName();
  const url = databaseUrl(adminUrl, name);
  const closers: (() => Promise<unknown>)[] = [];
  let sharedPool: pg.Pool | undefined;
  let checker: pg.Client | undefined;
  let created = false;

  const ready = (): void => {
    if (!created) throw new Error(`test database ${name} is not created yet: use it inside tests or hooks, not at the top level`);
  };

  const pool = (config: TestConnectionConfig = {}): pg.Pool => {
    ready();
    const p = new pg.Pool({ ...config, connectionString: url });
    // Tests terminate backends on purpose (prioritize, leak cleanup): an idle pooled client
    // losing its connection must not crash the worker with an unhandled 'error' event.
    p.on('error', () => {});
    p.on('connect', (client) => client.on('error', () => {}));
    closers.push(() => p.end());
    return p;
  };

  const db: TestDatabase = {
    name,
    url,
    serverVersion,
    schema: schemaName,
    pooler,
    pool,
    async client(config = {}) {
      ready();
      const c = new pg.Client({ ...config, connectionString: url });
      c.on('error', () => {});
      closers.push(() => c.end());
      await c.connect();
      return c;
    },
    async query(text, values) {
      sharedPool ??= pool();
      return (await sharedPool.query(text, values)).rows;
    },
    prisma(options = {}) {
      ready();
      const adapterOptions = schemaName === 'public' ? undefined : { schema: schemaName };
      const adapter = options.pool === undefined ? new PrismaPg({ connectionString: url }, adapterOptions) : new PrismaPg(pool(options.pool), adapterOptions);
      const Client = variant.prisma === 'js' ? prismaClientJs() : PrismaClient;
      // `logQueries`: every statement Prisma runs is a 'query' event (`prisma.$on('query', …)`).
      const prisma = new Client({ adapter, ...(options.logQueries ? { log: [{ emit: 'event' as const, level: 'query' as const }] } : {}) });
      closers.push(() => prisma.$disconnect());
      return prisma;
    },
    drizzle(config) {
      if (variant.drizzle === 'postgres-js') {
        ready();
        const { db: orm, end } = drizzlePostgresJs(url, config ?? {});
        closers.push(end);
        return orm;
      }
      return drizzleNodePg({ client: pool(config), schema });
    },
  };

  beforeAll(async () => {
    await withAdmin(adminUrl, async (admin) => {
      await admin.query(`CREATE DATABASE ${quoteIdent(name)} TEMPLATE template0`);
      // Before any session opens on the database, so that every one of them (pooled ones too)
      // starts with the test schema first: unqualified names find the test tables there.
      if (schemaName !== 'public') await admin.query(`ALTER DATABASE ${quoteIdent(name)} SET search_path TO ${quoteIdent(schemaName)}`);
    });
    created = true;
    const migrator = new pg.Client({ connectionString: url });
    await migrator.connect();
    try {
      if (schemaName !== 'public') await migrator.query(`CREATE SCHEMA ${quoteIdent(schemaName)}`);
      await applyMigrations(migrator, options.migrations ?? 'none');
      await options.setup?.(migrator);
    } finally {
      await migrator.end();
    }
    if (options.leakCheck !== false) {
      checker = new pg.Client({ connectionString: url, application_name: 'ormlock-leak-check' });
      checker.on('error', () => {});
      await checker.connect();
    }
  });

  afterEach(async () => {
    if (!checker || options.leakCheck === false) return;
    const { graceMs, extra } = options.leakCheck ?? {};
    const { lines, pids } = await waitForNoLeaks(checker, { graceMs, extra });
    if (pids.length > 0) await checker.query('SELECT pg_terminate_backend(pid) FROM unnest($1::int[]) AS pid', [pids]);
    expect(lines, `test left locks or open transactions in ${name}`).toEqual([]);
  });

  afterAll(async () => {
    if (checker) closers.push(() => checker!.end());
    // A client a test never released keeps pool.end() waiting forever; DROP ... WITH (FORCE)
    // below cuts it off, so closing only gets a bounded wait.
    await Promise.allSettled(closers.splice(0).map((close) => withTimeout(close(), CLOSE_TIMEOUT_MS)));
    await withAdmin(adminUrl, (admin) => admin.query(`DROP DATABASE IF EXISTS ${quoteIdent(name)} WITH (FORCE)`));
  });

  return db;
}

/** `name` as a double-quoted PostgreSQL identifier. */
export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

const requireCjs = createRequire(import.meta.url);

/** The `prisma-client-js` client, loaded only when asked for (it is CommonJS, generated by `npm run generate`). */
function prismaClientJs(): typeof PrismaClient {
  return (requireCjs('../../prisma/generated-js/index.js') as { PrismaClient: typeof PrismaClient }).PrismaClient;
}

/** Drizzle over postgres.js, loaded only when asked for. */
function drizzlePostgresJs(url: string, config: TestConnectionConfig): { db: TestDrizzle; end: () => Promise<void> } {
  const { max, application_name: applicationName, ...rest } = config;
  const unsupported = Object.keys(rest);
  if (unsupported.length > 0) throw new Error(`db.drizzle(): ${unsupported.join(', ')} not mapped to postgres.js (ORMLOCK_TEST_DRIZZLE=postgres-js)`);
  type Postgres = (url: string, options: Record<string, unknown>) => { end(options?: { timeout?: number }): Promise<void> };
  const postgres = requireCjs('postgres') as Postgres;
  const { drizzle } = requireCjs('drizzle-orm/postgres-js') as { drizzle: (config: { client: unknown; schema: typeof schema }) => unknown };
  const client = postgres(url, {
    ...(max === undefined ? {} : { max }),
    ...(applicationName === undefined ? {} : { connection: { application_name: applicationName } }),
    onnotice: () => {},
  });
  return { db: drizzle({ client, schema }) as TestDrizzle, end: () => client.end({ timeout: 5 }) };
}

function uniqueDatabaseName(): string {
  const testPath = expect.getState().testPath;
  const label = (testPath ? basename(testPath) : 'db')
    .replace(/\.test(-d)?\.ts$/, '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '_')
    .slice(0, 30);
  return `ormlock_test_${label}_${randomBytes(5).toString('hex')}`;
}

function databaseUrl(adminUrl: string, database: string): string {
  const url = new URL(adminUrl);
  url.pathname = `/${encodeURIComponent(database)}`;
  return url.toString();
}

async function withAdmin<T>(adminUrl: string, fn: (admin: pg.Client) => Promise<T>): Promise<T> {
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    return await fn(admin);
  } finally {
    await admin.end();
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([promise, new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), ms)))]).finally(() =>
    clearTimeout(timer),
  );
}
