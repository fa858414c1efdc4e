/**
 * Starts pgbouncer (the Debian package `pgbouncer`) in front of the test server, so the whole
 * suite can run through a session or transaction pooler. Called once, from `test/global-setup.ts`
 * when `ORMLOCK_TEST_POOLER` is set; test files then get pgbouncer's URL as their admin URL.
 */
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chownSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { freePort } from './free-port.js';

/** pgbouncer's `pool_mode`: a server connection per client, or per transaction. */
export type PoolMode = 'session' | 'transaction';

/** A running pgbouncer. */
export interface Pgbouncer {
  readonly mode: PoolMode;
  /** URL of the server's maintenance database, through pgbouncer (same user and password). */
  readonly adminUrl: string;
  /** pgbouncer's version line, e.g. `PgBouncer 1.18.0`. */
  readonly version: string;
  /** Stops pgbouncer and removes its files. */
  stop(): Promise<void>;
}

/** Reads `ORMLOCK_TEST_POOLER`: `session`, `transaction`, or unset / `none` for a direct connection. */
export function poolModeFromEnv(env: NodeJS.ProcessEnv = process.env): PoolMode | undefined {
  const value = env['ORMLOCK_TEST_POOLER'];
  if (value === undefined || value === '' || value === 'none') return undefined;
  if (value === 'session' || value === 'transaction') return value;
  throw new Error(`ORMLOCK_TEST_POOLER=${value}: expected session, transaction or none`);
}

const START_TIMEOUT_MS = 10_000;

/**
 * Starts pgbouncer on a free port of 127.0.0.1, routing every database name (`* = …`) to the
 * server of `serverUrl`, so the per-file databases of `useTestDatabase` need no configuration.
 * Clients are trusted; pgbouncer logs in to the server as each client's user (the password of
 * `serverUrl`'s user comes from the auth file; other roles need a server that trusts them).
 */
export async function startPgbouncer(serverUrl: string, mode: PoolMode): Promise<Pgbouncer> {
  const binary = findPgbouncer();
  const server = new URL(serverUrl);
  const user = decodeURIComponent(server.username || 'postgres');
  const password = decodeURIComponent(server.password);
  const host = server.hostname === 'localhost' ? '127.0.0.1' : server.hostname;
  const serverPort = server.port || '5432';

  // pgbouncer refuses to run as root: run it as the `postgres` user then, who must be able to read
  // the config and write the pid file. Not under a 0700 mkdtemp() folder for the same reason.
  const dir = join(tmpdir(), `ormlock-pgbouncer-${process.pid}-${randomBytes(4).toString('hex')}`);
  mkdirSync(dir, { mode: 0o755 });
  const runAs = process.getuid?.() === 0 ? 'postgres' : undefined;

  let lastError: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const ini = join(dir, 'pgbouncer.ini');
    const log = join(dir, 'pgbouncer.log');
    writeFileSync(join(dir, 'userlist.txt'), `${quoteUserlist(user)} ${quoteUserlist(password)}\n`);
    writeFileSync(
      ini,
      [
        '[databases]',
        // No user: pgbouncer logs in as each client's user, so tests can connect as roles they create.
        `* = host=${host} port=${serverPort}`,
        '',
        '[pgbouncer]',
        'listen_addr = 127.0.0.1',
        `listen_port = ${port}`,
        'unix_socket_dir =',
        `pidfile = ${join(dir, 'pgbouncer.pid')}`,
        `logfile = ${log}`,
        // Clients are trusted. A user not in auth_file (roles the tests create) is looked up on the
        // server through auth_query as the admin user.
        'auth_type = trust',
        `auth_file = ${join(dir, 'userlist.txt')}`,
        `auth_user = ${user}`,
        `admin_users = ${user}`,
        `pool_mode = ${mode}`,
        // Tests open many connections at once (blocking tests, pools per ORM); in session mode
        // every client needs a server connection of its own, so the pool must not queue them.
        'max_client_conn = 1000',
        'default_pool_size = 150',
        'reserve_pool_size = 0',
        'server_reset_query = DISCARD ALL',
        'server_check_delay = 0',
        // Drivers send these at startup; pgbouncer 1.18 would refuse the connection otherwise.
        'ignore_startup_parameters = extra_float_digits,options,search_path,statement_timeout,lock_timeout',
        'log_connections = 0',
        'log_disconnections = 0',
        '',
      ].join('\n'),
    );
    if (runAs) for (const file of ['', 'pgbouncer.ini', 'userlist.txt']) chownByName(join(dir, file), runAs);

    const child = spawn(binary, runAs ? ['-u', runAs, ini] : [ini], { stdio: ['ignore', 'ignore', 'pipe'], detached: false });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => void (stderr += chunk.toString()));
    let exited: number | null | undefined;
    child.once('exit', (code) => void (exited = code));
    const adminUrl = new URL(serverUrl);
    adminUrl.hostname = '127.0.0.1';
    adminUrl.port = String(port);

    const stop = async (): Promise<void> => {
      if (exited === undefined) {
        const gone = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGINT');
        await Promise.race([gone, new Promise((resolve) => setTimeout(resolve, 3000))]);
        if (exited === undefined) child.kill('SIGKILL');
      }
    };
    try {
      await waitUntilReady(adminUrl.toString(), () => exited);
      return {
        mode,
        adminUrl: adminUrl.toString(),
        version: versionOf(binary),
        stop: async () => {
          await stop();
          rmSync(dir, { recursive: true, force: true });
        },
      };
    } catch (error) {
      await stop();
      const logText = readText(log);
      lastError = new Error(`pgbouncer (${mode} mode) did not start on port ${port}: ${(error as Error).message}\n${stderr}${logText}`.trim(), {
        cause: error,
      });
    }
  }
  rmSync(dir, { recursive: true, force: true });
  throw lastError;
}

function findPgbouncer(): string {
  for (const candidate of ['/usr/sbin/pgbouncer', '/usr/bin/pgbouncer', '/usr/local/bin/pgbouncer']) {
    if (spawnSync(candidate, ['--version']).status === 0) return candidate;
  }
  const which = spawnSync('sh', ['-c', 'command -v pgbouncer'], { encoding: 'utf8' });
  if (which.status === 0 && which.stdout.trim()) return which.stdout.trim();
  throw new Error('ORMLOCK_TEST_POOLER is set, but pgbouncer is not installed (Debian/Ubuntu: apt-get install -y pgbouncer)');
}

function versionOf(binary: string): string {
  return spawnSync(binary, ['--version'], { encoding: 'utf8' }).stdout.split('\n')[0]?.trim() ?? 'PgBouncer';
}

async function waitUntilReady(url: string, exitCode: () => number | null | undefined): Promise<void> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  let lastError: unknown;
  while (Date.now() < deadline) {
    if (exitCode() !== undefined) throw new Error(`pgbouncer exited with code ${exitCode()}`);
    const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2000 });
    client.on('error', () => {});
    try {
      await client.connect();
      await client.query('SELECT 1');
      return;
    } catch (error) {
      lastError = error;
      await new Promise((resolve) => setTimeout(resolve, 100));
    } finally {
      await client.end().catch(() => {});
    }
  }
  throw new Error(`no answer within ${START_TIMEOUT_MS} ms: ${String(lastError)}`);
}

/** A userlist.txt field: double-quoted, with `"` doubled. */
function quoteUserlist(value: string): string {
  return `"${value.replaceAll('"', '""')}"`;
}

function chownByName(path: string, user: string): void {
  const id = spawnSync('id', ['-u', user], { encoding: 'utf8' });
  const gid = spawnSync('id', ['-g', user], { encoding: 'utf8' });
  if (id.status !== 0 || gid.status !== 0) throw new Error(`pgbouncer must not run as root, and there is no '${user}' user to run it as`);
  chownSync(path, Number(id.stdout.trim()), Number(gid.stdout.trim()));
}

function readText(path: string): string {
  try {
    return readFileSync(path, 'utf8').slice(-2000);
  } catch {
    return '';
  }
}
