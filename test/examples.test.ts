/**
 * Runs each app of `examples/` as a user would (its own process, through tsx, `DATABASE_URL`
 * pointing at this file's database) and checks what it did in the database.
 */
import { fileURLToPath } from 'node:url';
import { beforeEach, expect, test, vi } from 'vitest';
import type pg from 'pg';
import { $lock } from '../src/pg/index.js';
import { useTestDatabase } from './helpers/database.js';
import { type NodeProcess, spawnNode } from './helpers/spawn-node.js';

let leasePool: pg.Pool | undefined;
const db = useTestDatabase({
  migrations: 'prisma',
  leakCheck: {
    // An example that stops must also give its lease up (leases as ormlock lists them).
    extra: async (checker) => {
      const exists = await checker.query(`SELECT to_regclass('ormlock_leases') IS NOT NULL AS e`);
      if (!exists.rows[0]?.e) return [];
      leasePool ??= db.pool({ max: 1 });
      const leases = await $lock(leasePool).listLeases();
      return leases.filter((lease) => lease.live).map((lease) => `lease ${lease.name} still held by ${lease.owner}`);
    },
  },
});

// Each test starts from empty tables (the database is shared by the file's tests).
beforeEach(async () => {
  await db.query('TRUNCATE accounts, jobs RESTART IDENTITY CASCADE');
});

// Process start-up through tsx is slow on a loaded machine; nothing here waits on a timer.
const EXAMPLE_TIMEOUT_MS = 90_000;

function example(path: string): string {
  return fileURLToPath(new URL(`../examples/${path}`, import.meta.url));
}

function start(path: string, env: Record<string, string> = {}): NodeProcess {
  return spawnNode(example(path), [], { DATABASE_URL: db.url, ...env });
}

/** Waits until `count` lines of `proc` match `pattern`. */
async function waitForLines(proc: NodeProcess, pattern: RegExp, count: number): Promise<void> {
  await vi.waitFor(() => expect(proc.lines.filter((line) => pattern.test(line)).length).toBeGreaterThanOrEqual(count), { timeout: 30_000, interval: 20 });
}

async function insertAccount(owner: string, balance: string): Promise<number> {
  const [row] = await db.query<{ id: number }>('INSERT INTO accounts (owner, balance) VALUES ($1, $2) RETURNING id', [owner, balance]);
  return row!.id;
}

async function balances(): Promise<Record<string, string>> {
  const rows = await db.query<{ owner: string; balance: string }>('SELECT owner, balance::text FROM accounts');
  return Object.fromEntries(rows.map((r) => [r.owner, r.balance]));
}

test(
  'prisma-express: concurrent transfers never overdraw, and crossing transfers never deadlock',
  async () => {
    const poor = await insertAccount('poor', '10.00');
    const payee = await insertAccount('payee', '0.00');
    const c = await insertAccount('c', '100.00');
    const d = await insertAccount('d', '100.00');
    await using server = start('prisma-express/server.ts', { PORT: '0', DATABASE_SCHEMA: db.schema });
    const base = (await server.waitForLine(/^listening on http:/)).replace('listening on ', '');
    const post = async (body: unknown) => {
      const response = await fetch(`${base}/transfers`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
      return { status: response.status, body: (await response.json()) as Record<string, string> };
    };

    // Ten requests at once want 3.00 each from 10.00: exactly three can be paid.
    const spends = await Promise.all(Array.from({ length: 10 }, () => post({ from: poor, to: payee, amount: '3.00' })));
    expect(spends.map((r) => r.status).sort()).toEqual([200, 200, 200, 409, 409, 409, 409, 409, 409, 409]);
    expect(spends.find((r) => r.status === 409)?.body).toEqual({ error: 'insufficient funds' });

    // Transfers in both directions between the same two accounts at once.
    const crossing = await Promise.all(Array.from({ length: 10 }, (_, i) => post(i % 2 === 0 ? { from: c, to: d, amount: '1.25' } : { from: d, to: c, amount: '2.00' })));
    expect(crossing.map((r) => r.status)).toEqual(Array(10).fill(200));

    expect(await balances()).toEqual({ poor: '1.00', payee: '9.00', c: '103.75', d: '96.25' });
    const account = await fetch(`${base}/accounts/${poor}`);
    expect(await account.json()).toEqual({ id: poor, owner: 'poor', balance: '1.00' });
    expect((await post({ from: poor, to: poor, amount: '1.00' })).status).toBe(400);
    expect((await post({ from: poor, to: 999_999, amount: '1.00' })).status).toBe(404);
  },
  EXAMPLE_TIMEOUT_MS,
);

test(
  'drizzle-worker: three workers do every job of their queue exactly once',
  async () => {
    await db.query(`INSERT INTO jobs (queue, payload) SELECT 'emails', jsonb_build_object('to', 'user' || n || '@example.com') FROM generate_series(1, 30) AS n`);
    await db.query(`INSERT INTO jobs (queue) VALUES ('other'), ('other')`);
    const workers = ['w1', 'w2', 'w3'].map((id) => start('drizzle-worker/worker.ts', { WORKER_ID: id, EXIT_WHEN_IDLE: '1' }));
    try {
      const exits = await Promise.all(workers.map((w) => w.exited));
      expect(exits.map((e) => e.code), workers.map((w) => w.stderr()).join('\n')).toEqual([0, 0, 0]);
    } finally {
      await Promise.all(workers.map((w) => w.stop()));
    }

    const emailIds = (await db.query<{ id: string }>(`SELECT id::text FROM jobs WHERE queue = 'emails' ORDER BY jobs.id`)).map((r) => r.id);
    const reported = workers.flatMap((w) => w.lines.flatMap((line) => /^w\d done job (\d+):/.exec(line)?.[1] ?? []));
    // Every job handled once: no job in two workers' output, none missing.
    expect(reported.sort((a, b) => Number(a) - Number(b))).toEqual(emailIds);
    const states = await db.query<{ queue: string; status: string; attempts: number; n: number }>(
      `SELECT queue, status, attempts, count(*)::int AS n FROM jobs GROUP BY queue, status, attempts ORDER BY queue`,
    );
    expect(states).toEqual([
      { queue: 'emails', status: 'done', attempts: 1, n: 30 },
      { queue: 'other', status: 'pending', attempts: 0, n: 2 },
    ]);
    const [unowned] = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM jobs WHERE queue = 'emails' AND locked_by NOT IN ('w1', 'w2', 'w3')`);
    expect(unowned?.n).toBe(0);
  },
  EXAMPLE_TIMEOUT_MS,
);

test(
  'cron-lease: one leader runs the job; when it stops, the other instance takes over',
  async () => {
    await db.query(`INSERT INTO jobs (status, run_at) SELECT 'done', now() - interval '2 days' FROM generate_series(1, 4)`);
    await db.query(`INSERT INTO jobs (status, run_at) VALUES ('done', now()), ('pending', now() - interval '2 days')`);
    const env = { TICK_MS: '200', LEASE_TTL: '3s', RETENTION: '1 day' };
    await using a = start('cron-lease/cron.ts', { ...env, INSTANCE: 'a' });
    const tokenA = BigInt(/token (\d+)/.exec(await a.waitForLine('a elected leader'))![1]!);
    await a.waitForLine('a pruned 4 done jobs');

    await using b = start('cron-lease/cron.ts', { ...env, INSTANCE: 'b' });
    await b.waitForLine('b competing');
    // With b in the race, a goes on leading: it runs its job twice more and the lease names it.
    const before = a.lines.filter((l) => l.startsWith('a pruned')).length;
    await waitForLines(a, /^a pruned/, before + 2);
    const [lease] = await db.query<{ owner: string }>(`SELECT owner FROM ormlock_leases WHERE name = 'cron:prune-jobs' AND expires_at > clock_timestamp()`);
    expect(lease?.owner).toContain(`:${a.child.pid}:`);
    expect(b.lines.filter((l) => l.includes('elected'))).toEqual([]);

    // a shuts down cleanly: it gives the lease up and b takes over (without waiting for the ttl).
    expect((await a.stop()).code).toBe(0);
    expect(a.lines).toContain('a stopped');
    const tokenB = BigInt(/token (\d+)/.exec(await b.waitForLine('b elected leader'))![1]!);
    expect(tokenB).toBeGreaterThan(tokenA);
    await db.query(`INSERT INTO jobs (status, run_at) VALUES ('done', now() - interval '3 days')`);
    await b.waitForLine('b pruned 1 done jobs');
    expect((await b.stop()).code).toBe(0);

    const left = await db.query<{ status: string; old: boolean }>(`SELECT status, run_at < now() - interval '1 day' AS old FROM jobs ORDER BY status`);
    expect(left).toEqual([
      { status: 'done', old: false },
      { status: 'pending', old: true },
    ]);
  },
  EXAMPLE_TIMEOUT_MS,
);

test(
  'migration-priority: terminates the idle-in-transaction session in its way, applies every step once',
  async () => {
    const blocker = await db.client({ application_name: 'report' });
    await blocker.query('BEGIN');
    await blocker.query('SELECT count(*) FROM accounts');
    const [{ pid }] = (await blocker.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows as [{ pid: number }];

    const env = { LOCK_TIMEOUT: '2s', MIN_TRANSACTION_AGE: '200ms' };
    const migrate = start('migration-priority/migrate.ts', env);
    const { code } = await migrate.exited;
    expect(code, migrate.stderr()).toBe(0);
    expect(migrate.lines.filter((l) => l.includes('terminated pid'))).toEqual([expect.stringMatching(new RegExp(`^001_accounts_note: terminated pid ${pid} \\(report, idle in transaction, `))]);
    expect(migrate.lines).toContain('001_accounts_note: applied');
    expect(migrate.lines).toContain('002_jobs_priority: applied');
    await expect(blocker.query('SELECT 1')).rejects.toThrow();

    const columns = await db.query<{ column_name: string }>(
      `SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() AND column_name IN ('note', 'priority') ORDER BY column_name`,
    );
    expect(columns.map((c) => c.column_name)).toEqual(['note', 'priority']);

    const again = start('migration-priority/migrate.ts', env);
    expect((await again.exited).code, again.stderr()).toBe(0);
    expect(again.lines).toEqual(['001_accounts_note: already applied', '002_jobs_priority: already applied']);
  },
  EXAMPLE_TIMEOUT_MS,
);
