import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { describe, expect, inject, test } from 'vitest';
import { type CliIo, runCli } from '../src/cli/run-cli.js';
import { inspectionToJson } from '../src/index.js';
import { $lock } from '../src/pg/index.js';
import { useTestDatabase } from './helpers/database.js';
import { spawnNode } from './helpers/spawn-node.js';
import type {} from './helpers/provided-context.js';

const db = useTestDatabase({ setup: async (client) => void (await client.query('CREATE TABLE public.cli_target (id int)')) });
const CLI = fileURLToPath(new URL('../src/cli/index.ts', import.meta.url));
const ROOT = fileURLToPath(new URL('../', import.meta.url));

async function run(args: string[], env: Record<string, string | undefined> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const io: CliIo = { stdout: (s) => void (stdout += s), stderr: (s) => void (stderr += s), cwd: process.cwd(), env, isTTY: false };
  const code = await runCli(args, io);
  return { code, stdout, stderr };
}

async function pidOf(client: pg.Client): Promise<number> {
  return Number((await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]?.pid);
}

async function until(condition: () => Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 1000; i += 1) {
    if (await condition()) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`timed out waiting until ${what}`);
}

const waiting = (pid: number) => async () => (await db.query(`SELECT 1 FROM pg_locks WHERE pid = $1 AND NOT granted`, [pid])).length > 0;
const isAlive = async (pid: number) => (await db.query('SELECT 1 FROM pg_stat_activity WHERE pid = $1', [pid])).length > 0;

/** A → B → C on cli_target, as in the inspect tests. */
async function blockingChain(): Promise<{ a: number; b: number; c: number; end(): Promise<void> }> {
  const sa = await db.client({ application_name: 'cli-chain-a' });
  const sb = await db.client({ application_name: 'cli-chain-b' });
  const sc = await db.client({ application_name: 'cli-chain-c' });
  const [a, b, c] = [await pidOf(sa), await pidOf(sb), await pidOf(sc)];
  await sa.query('BEGIN');
  await sa.query('SELECT count(*) FROM public.cli_target');
  await sb.query('BEGIN');
  const bDone = sb.query('LOCK TABLE public.cli_target IN ACCESS EXCLUSIVE MODE');
  await until(waiting(b), 'B waits');
  const cDone = sc.query('SELECT count(*) FROM public.cli_target');
  await until(waiting(c), 'C waits');
  return {
    a,
    b,
    c,
    async end() {
      await sa.query('ROLLBACK');
      await bDone;
      await sb.query('COMMIT');
      await cDone;
    },
  };
}

/** The fields of a lock that do not change while nothing moves. */
const stable = (locks: unknown) =>
  (locks as Record<string, unknown>[])
    .map(({ pid, application, user, database, lockType, mode, granted, relation, advisoryKey, state, blockedBy, blocking }) => ({
      pid,
      application,
      user,
      database,
      lockType,
      mode,
      granted,
      relation,
      advisoryKey,
      state,
      blockedBy,
      blocking,
    }))
    .sort((x, y) => JSON.stringify(x).localeCompare(JSON.stringify(y)));

// These tests name backends by pid across statements (holders, bystanders, victims); a
// transaction-mode pooler hands each statement outside a transaction to any backend.
const perBackend = db.pooler !== 'transaction';

describe.runIf(perBackend)('ormlock status', () => {
  test('status --json (a real process) prints what inspect() returns', async () => {
    const chain = await blockingChain();
    try {
      await using cli = spawnNode(CLI, ['status', '--json', '--url', db.url]);
      const { code } = await cli.exited;
      expect(code, cli.stderr()).toBe(0);
      const printed = JSON.parse(cli.lines.join('\n')) as { locks: unknown[]; leases: unknown[]; at: string };
      const direct = inspectionToJson(await $lock(db.pool()).inspect()) as { locks: unknown[]; leases: unknown[] };
      expect(stable(printed.locks)).toEqual(stable(direct.locks));
      expect(printed.leases).toEqual(direct.leases);
      expect(printed.locks).toContainEqual(expect.objectContaining({ pid: chain.b, granted: false, blockedBy: [chain.a], relation: { schema: 'public', name: 'cli_target' } }));
      expect(new Date(printed.at).getTime()).not.toBeNaN();
    } finally {
      await chain.end();
    }
  });

  test('status --blocking-only --json lists only the chain', async () => {
    const chain = await blockingChain();
    try {
      const { code, stdout } = await run(['status', '--blocking-only', '--json', '--url', db.url]);
      expect(code).toBe(0);
      const { locks } = JSON.parse(stdout) as { locks: { pid: number; granted: boolean }[] };
      expect(locks.map((l) => l.pid).sort()).toEqual([chain.a, chain.b, chain.c].sort());
    } finally {
      await chain.end();
    }
  });

  test('the human layout, piped: a tree from the root blocker down, a lock table, no colour codes', async () => {
    const chain = await blockingChain();
    try {
      const { code, stdout } = await run(['status'], { DATABASE_URL: db.url });
      expect(code).toBe(0);
      expect(stdout).not.toContain('\u001b[');
      const lines = stdout.split('\n');
      const tree = lines.slice(lines.indexOf('Blocking tree') + 1, lines.findIndex((l) => l.startsWith('Locks (')));
      expect(tree[0]).toMatch(new RegExp(`^  ${chain.a} cli-chain-a  idle in transaction`));
      expect(tree[1]).toMatch(new RegExp(`^  └─ ${chain.b} cli-chain-b  waits .* for AccessExclusiveLock on public\\.cli_target`));
      expect(tree[2]).toMatch(new RegExp(`^     └─ ${chain.c} cli-chain-c  waits .* for AccessShareLock on public\\.cli_target`));
      expect(stdout).toMatch(/PID\s+APPLICATION\s+USER\s+TYPE\s+TARGET\s+MODE\s+STATUS/);
      expect(stdout).toMatch(new RegExp(`${chain.a}\\s+cli-chain-a\\s+\\S+\\s+relation\\s+public\\.cli_target\\s+AccessShareLock\\s+blocking`));
    } finally {
      await chain.end();
    }
  });

  test('in a real terminal (tmux): the tree renders in colour and the command exits 0', async () => {
    const chain = await blockingChain();
    const session = `ormlock-cli-${randomBytes(4).toString('hex')}`;
    const tmux = (...args: string[]) => execFileSync('tmux', args, { encoding: 'utf8' });
    try {
      const command = `env -u NO_COLOR DATABASE_URL='${db.url}' ${process.execPath} --import tsx ${CLI} status; echo "EXIT=$?"; sleep 60`;
      tmux('new-session', '-d', '-s', session, '-x', '250', '-y', '80', '-c', ROOT, command);
      let screen = '';
      await until(async () => {
        screen = tmux('capture-pane', '-p', '-e', '-J', '-t', session);
        return screen.includes('EXIT=');
      }, 'the CLI finished in tmux');
      const plain = stripAnsi(screen);
      expect(plain).toContain('EXIT=0');
      expect(screen).toContain('\u001b['); // colour on a terminal
      expect(plain).toMatch(new RegExp(`\\n  ${chain.a} cli-chain-a  idle in transaction`));
      expect(plain).toMatch(new RegExp(`\\n  └─ ${chain.b} cli-chain-b  waits`));
      expect(plain).toMatch(new RegExp(`\\n     └─ ${chain.c} cli-chain-c  waits`));
    } finally {
      try {
        tmux('kill-session', '-t', session);
      } catch {
        // already gone
      }
      await chain.end();
    }
  });
});

describe.runIf(perBackend)('ormlock cancel / terminate', () => {
  test('cancel ends only the statement: the session survives', async () => {
    const holder = await db.client();
    const pid = await pidOf(holder);
    const running = holder.query('SELECT pg_sleep(60)').then(
      () => 'finished',
      (error: unknown) => error,
    );
    await until(async () => (await db.query(`SELECT 1 FROM pg_stat_activity WHERE pid = $1 AND state = 'active'`, [pid])).length > 0, 'the sleep runs');
    const { code, stdout } = await run(['cancel', String(pid), '--url', db.url]);
    expect(code).toBe(0);
    expect(stdout).toContain(`cancelled the statement of backend ${pid}`);
    expect(await running).toMatchObject({ code: '57014' });
    expect((await holder.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
  });

  test('terminate ends the session and releases its locks', async () => {
    const holder = await db.client();
    const pid = await pidOf(holder);
    await holder.query('BEGIN');
    await holder.query('LOCK TABLE public.cli_target IN ACCESS EXCLUSIVE MODE');
    const { code } = await run(['terminate', String(pid)], { DATABASE_URL: db.url });
    expect(code).toBe(0);
    await until(async () => !(await isAlive(pid)), 'the backend is gone');
    expect(await db.query(`SELECT 1 FROM pg_locks WHERE pid = $1`, [pid])).toEqual([]);
  });

  test('a backend of another database is refused unless --any-database', async () => {
    const elsewhere = new pg.Client({ connectionString: inject('ormlockAdminUrl') });
    await elsewhere.connect();
    try {
      const pid = await pidOf(elsewhere);
      const running = elsewhere.query('SELECT pg_sleep(60)').then(
        () => 'finished',
        (error: unknown) => error,
      );
      const refused = await run(['cancel', String(pid), '--url', db.url]);
      expect(refused.code).toBe(1);
      expect(refused.stderr).toMatch(/is connected to database .*--any-database/);
      await until(async () => (await db.query(`SELECT 1 FROM pg_stat_activity WHERE pid = $1 AND state = 'active'`, [pid])).length > 0, 'the sleep runs');
      expect((await run(['cancel', String(pid), '--any-database', '--url', db.url])).code).toBe(0);
      expect(await running).toMatchObject({ code: '57014' });
    } finally {
      await elsewhere.end();
    }
  });

  test('no such backend, bad pid', async () => {
    expect(await run(['terminate', '2147483000', '--url', db.url])).toMatchObject({ code: 1, stderr: expect.stringContaining('no backend with pid 2147483000') });
    expect(await run(['terminate', 'abc', '--url', db.url])).toMatchObject({ code: 2, stderr: expect.stringContaining('expected one backend pid') });
  });

  test('missing privilege: a clear message and exit 1, the backend untouched', async () => {
    const role = `ormlock_cli_weak_${randomBytes(4).toString('hex')}`;
    await db.query(`CREATE ROLE ${role} LOGIN`);
    try {
      const victim = await db.client();
      const pid = await pidOf(victim);
      const weakUrl = new URL(db.url);
      weakUrl.username = role;
      const { code, stderr } = await run(['terminate', String(pid), '--url', weakUrl.toString()]);
      expect(code).toBe(1);
      expect(stderr).toMatch(/permission denied to terminate backend/);
      expect(await isAlive(pid)).toBe(true);
    } finally {
      await db.query(`DROP ROLE ${role}`);
    }
  });
});

describe('usage', () => {
  test.each([[['--help']], [['status', '--help']], [['cancel', '-h']], [['terminate', '--help']]])('%j prints help and exits 0', async (args) => {
    const { code, stdout } = await run(args);
    expect(code).toBe(0);
    expect(stdout).toMatch(/^Usage: ormlock/);
  });

  test('bad or missing URLs fail with a clear message', async () => {
    expect(await run(['status', '--url', 'not a url'])).toMatchObject({ code: 2, stderr: expect.stringContaining('not a valid database URL') });
    expect(await run(['status', '--url', 'mysql://x@y/z'])).toMatchObject({ code: 2, stderr: expect.stringContaining('not a PostgreSQL URL') });
    expect(await run(['status'])).toMatchObject({ code: 2, stderr: expect.stringContaining('no database given') });
    expect(await run(['status', '--url', 'postgres://nobody:secret@127.0.0.1:1/x'])).toMatchObject({
      code: 1,
      stderr: expect.stringMatching(/cannot connect to postgres:\/\/nobody:\*\*\*@127\.0\.0\.1:1\/x/),
    });
    const missing = new URL(db.url);
    missing.pathname = '/ormlock_no_such_database';
    // pgbouncer (ORMLOCK_TEST_POOLER) reports a missing database as 08P01, not 3D000: its own words then.
    expect(await run(['status', '--url', missing.toString()])).toMatchObject({
      code: 1,
      stderr: expect.stringMatching(/no such database|database "ormlock_no_such_database" does not exist/),
    });
  });

  test('unknown commands and options exit 2', async () => {
    expect(await run(['frobnicate'])).toMatchObject({ code: 2, stderr: expect.stringContaining('unknown command "frobnicate"') });
    expect(await run(['status', '--jsn'])).toMatchObject({ code: 2, stderr: expect.stringContaining('--jsn') });
    expect((await run([])).code).toBe(2);
  });

  test('migrate is dispatched to the lease feature\'s command', async () => {
    const help = await run(['migrate', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^Usage: ormlock migrate/);
    const sql = await run(['migrate', 'sql']);
    expect(sql.code).toBe(0);
    expect(sql.stdout).toMatch(/CREATE TABLE IF NOT EXISTS "ormlock_leases"/);
  });
});

/** Removes ANSI colour sequences (ESC [ … m). */
function stripAnsi(text: string): string {
  return text.split('\u001b[').map((part, index) => (index === 0 ? part : part.replace(/^[0-9;]*m/, ''))).join('');
}
