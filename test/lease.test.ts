import { fileURLToPath } from 'node:url';
import type pg from 'pg';
import pgModule from 'pg';
import { afterAll, beforeAll, describe, expect, inject, test } from 'vitest';
import {
  InvalidLockArgumentError,
  type Lease,
  LeaseLostError,
  type LeaseMethods,
  LeaseTableMissingError,
  LockNotAvailableError,
  LockTimeoutError,
  ensureLeaseTable,
  fencingCondition,
} from '../src/index.js';
import { LeaseHost, leaseHostOf } from '../src/core/lease-host.js';
import { leaseTableNames } from '../src/core/lease-schema.js';
import { LEASE_LOCK_CLASS, ownerChannel } from '../src/core/lease-sql.js';
import { $lock as drizzleLockOf } from '../src/drizzle/index.js';
import { $lock as pgLockOf } from '../src/pg/index.js';
import { lockExtension as lockExtensionOf } from '../src/prisma/index.js';
import { useTestDatabase } from './helpers/database.js';
import { spawnNode } from './helpers/spawn-node.js';

const worker = fileURLToPath(new URL('./helpers/fixtures/lease-worker.ts', import.meta.url));

const db = useTestDatabase({
  setup: async (client) => {
    await ensureLeaseTable({ query: async (text, params) => (await client.query(text, params as unknown[])).rows });
    await client.query('CREATE TABLE lease_probe (holders int NOT NULL, max_holders int NOT NULL, acquisitions int NOT NULL)');
    await client.query('CREATE TABLE lease_tokens (seq bigserial PRIMARY KEY, token bigint NOT NULL, pid int NOT NULL)');
    await client.query(`CREATE TABLE lease_fenced (id int PRIMARY KEY, body text NOT NULL, fence bigint)`);
  },
  // Every test must leave the lease table empty: a lease left behind blocks the next holder for its ttl.
  leakCheck: {
    graceMs: 3000,
    extra: async (checker) =>
      (await checker.query<{ name: string; owner: string }>('SELECT name, owner FROM ormlock_leases')).rows.map(
        (row) => `lease ${row.name} left held by ${row.owner}`,
      ),
  },
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

// Through a transaction-mode pooler, every layer is told so (`pooling: 'transaction'`): its lease
// waiters then poll instead of LISTENing through the pooler.
const pooling = db.pooler === 'transaction' ? ('transaction' as const) : undefined;
const pgLock: typeof pgLockOf = ((target: Parameters<typeof pgLockOf>[0], options = {}) => pgLockOf(target, { pooling, ...options })) as typeof pgLockOf;
const drizzleLock: typeof drizzleLockOf = (dbOrTx, options = {}) => drizzleLockOf(dbOrTx, { pooling, ...options });
const lockExtension: typeof lockExtensionOf = (options = {}) => lockExtensionOf({ pooling, ...options });

/** The test database's URL on the PostgreSQL server itself, past any pooler (for LISTEN). */
function directUrl(): string {
  const url = new URL(inject('ormlockServerUrl'));
  url.pathname = `/${db.name}`;
  return url.toString();
}

/** Waiters in line: the live entries of every lease's line row (see lineAcquireSql). */
async function waitersInLine(): Promise<number> {
  const [row] = await db.query<{ n: number }>(
    `SELECT coalesce(sum((SELECT count(*) FROM jsonb_each(l.data) e WHERE (e.value->>1)::float8 > extract(epoch FROM clock_timestamp()) * 1000)), 0)::int AS n
       FROM ormlock_leases l WHERE left(l.name, 1) = chr(1)`,
  );
  return row!.n;
}

async function untilWaiting(total: number): Promise<void> {
  await until(async () => (await waitersInLine()) >= total, `${total} waiter(s) in line`);
}

/** Sessions of the test database waiting for a lock (a row lock or the name's advisory lock). */
async function lockWaits(): Promise<number> {
  return (await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`))[0]!.n;
}

/** The lease host a `$lock` root made (it must have taken a lease already). */
function existingHost(root: object): LeaseHost {
  return leaseHostOf(root, leaseTableNames(), () => { throw new Error('the host should exist'); }, pooling ?? '');
}

/** Bounds a wait that only a missed handoff could make long, however slow or loaded the machine. */
const HANDOFF_BOUND_MS = 20_000;

/**
 * Takes `locks`' lease host (made by one lease taken and released) and, where its waiters hear
 * releases by NOTIFY, pushes every waiter's sleep timer out of reach: the safety retry never
 * comes, so a waiter gets a lease only if a handoff reaches it (a missed one ends the wait at its
 * signal, `HANDOFF_BOUND_MS`). Polling waiters (through a transaction-mode pooler) keep their
 * timers: polling is how they learn of a release.
 */
async function onlyHandoffsWake(locks: LeaseMethods, root: object): Promise<void> {
  await (await locks.lease(`warm:${Math.random()}`, { ttl: '5s' })).release();
  if (pooling === 'transaction') return;
  const host = existingHost(root);
  const sleepFor = host.sleep.bind(host);
  host.sleep = (name, _ms, signal, wakeIf) => sleepFor(name, 600_000, signal, wakeIf);
}

/** Polls `check` until it returns true (bounded, so a hang fails the test instead of timing out silently). */
async function until(check: () => Promise<boolean>, what: string, limitMs = 20_000): Promise<void> {
  const end = performance.now() + limitMs;
  while (performance.now() < end) {
    if (await check()) return;
    await sleep(20);
  }
  throw new Error(`gave up waiting until ${what}`);
}

// 'prisma-pool': the adapter was given a pg.Pool, and lease statements run on it by name.
describe.each(['pg', 'drizzle', 'prisma', 'prisma-pool'] as const)('leases through %s', (driverName) => {
  let locks: LeaseMethods;
  let other: LeaseMethods;

  beforeAll(() => {
    const make = (): LeaseMethods => {
      if (driverName === 'pg') return pgLock(db.pool({ max: 3 }));
      if (driverName === 'drizzle') return drizzleLock(db.drizzle({ max: 3 }));
      return db.prisma(driverName === 'prisma-pool' ? { pool: { max: 3 } } : {}).$extends(lockExtension()).$lock;
    };
    locks = make();
    other = make();
  });

  test('one holder at a time; release lets the next in with a larger token; data is stored', async () => {
    const name = `${driverName}:basic`;
    const first = await locks.lease(name, { ttl: '10s', data: { job: 'report', n: 1 } });
    expect(first.state).toBe('held');
    expect(first.data).toEqual({ job: 'report', n: 1 });
    await expect(other.lease(name)).rejects.toBeInstanceOf(LockNotAvailableError);
    expect(await other.lease(name, { onBusy: 'return' })).toBeNull();
    const info = await other.getLease(name);
    expect(info).toMatchObject({ name, owner: first.owner, fencingToken: first.fencingToken, data: { job: 'report', n: 1 }, live: true, ttlMs: 10_000 });
    expect(info!.expiresAt.getTime()).toBe(first.expiresAt.getTime());
    expect((await other.listLeases(`${driverName}:`)).map((l) => l.name)).toEqual([name]);
    expect(await other.listLeases('nothing-here:')).toEqual([]);

    // A signal read while the lease is held aborts on release; one first read afterwards is aborted already.
    const watched = await other.lease(`${name}:signal`);
    const { signal } = watched;
    expect(signal.aborted).toBe(false);
    await watched.release();
    expect(signal.aborted).toBe(true);
    expect((signal.reason as Error).message).toContain('was released');

    await first.release();
    expect(first.state).toBe('released');
    expect(first.signal.aborted).toBe(true);
    expect((first.signal.reason as Error).message).toContain('was released');
    await first.release(); // a second release does nothing
    expect(await other.getLease(name)).toBeNull();

    const second = await other.lease(name, { ttl: '10s' });
    expect(second.fencingToken).toBeGreaterThan(first.fencingToken);
    expect(second.owner).not.toBe(first.owner);
    await second.release();
  });

  test('withLease runs fn under the lease, releases it, and skips when busy', async () => {
    const name = `${driverName}:with`;
    const result = await locks.withLease(name, async (lease) => {
      expect((await other.getLease(name))?.fencingToken).toBe(lease.fencingToken);
      expect(await other.withLease(name, () => 'ran', { onBusy: 'skip' })).toBeUndefined();
      return 'done';
    });
    expect(result).toBe('done');
    expect(await other.getLease(name)).toBeNull();
    await expect(locks.withLease(name, async () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(await other.getLease(name)).toBeNull();
  });

  test('a waiter gets the lease when the holder releases, long before the holder would expire', async () => {
    const name = `${driverName}:wait`;
    const holder = await locks.lease(name, { ttl: '60s' });
    const waiting = other.lease(name, { wait: '30s', ttl: '10s' });
    // The waiter joins the line (and LISTENs where it can; Prisma: from the adapter's connection string).
    await untilWaiting(1);
    await holder.release();
    const next = await waiting;
    expect(next.fencingToken).toBeGreaterThan(holder.fencingToken);
    await next.release();
  });

  test('waiters are served first come, first served across connections', async () => {
    const name = `${driverName}:fifo`;
    const holder = await locks.lease(name, { ttl: '60s' });
    const order: number[] = [];
    const waiters: Promise<void>[] = [];
    const makers: (() => LeaseMethods)[] = [
      () => pgLock(db.pool({ max: 2 })),
      () => drizzleLock(db.drizzle({ max: 2 })),
      () => (driverName.startsWith('prisma') ? db.prisma().$extends(lockExtension()).$lock : pgLock(db.pool({ max: 2 }))),
    ];
    for (const [index, make] of makers.entries()) {
      const waiter = make();
      waiters.push(
        waiter.lease(name, { wait: '30s', ttl: '10s' }).then(async (lease) => {
          order.push(index);
          await sleep(20);
          await lease.release();
        }),
      );
      // The next waiter starts only once this one is in line.
      await untilWaiting(index + 1);
    }
    await holder.release();
    await Promise.all(waiters);
    expect(order).toEqual([0, 1, 2]);
  });

  test('a bounded wait ends with LockTimeoutError; an aborted wait ends at once', async () => {
    const name = `${driverName}:timeout`;
    const holder = await locks.lease(name, { ttl: '60s' });
    try {
      const error = await other.lease(name, { wait: '200ms' }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(LockTimeoutError);
      const controller = new AbortController();
      const waiting = other.lease(name, { wait: '30s', signal: controller.signal }).catch((e: unknown) => e);
      await sleep(50);
      controller.abort();
      expect(await waiting).toMatchObject({ code: 'LOCK_ABORTED' });
    } finally {
      await holder.release();
    }
  });

  test('heartbeats keep the lease past its ttl, moving expires_at forward on the database clock', async () => {
    const name = `${driverName}:heartbeat`;
    const lease = await locks.lease(name, { ttl: '1500ms', heartbeat: '300ms' });
    const first = (await other.getLease(name))!.expiresAt.getTime();
    await until(async () => (await other.getLease(name))!.renewedAt.getTime() > first - 1500 + 2000, 'renewed for 2 s after acquiring', 10_000);
    expect(lease.state).toBe('held');
    const info = (await other.getLease(name))!;
    expect(info.live).toBe(true);
    expect(info.fencingToken).toBe(lease.fencingToken);
    expect(info.expiresAt.getTime()).toBeGreaterThan(first + 500);
    await lease.release();
  });

  test('await using releases the lease', async () => {
    const name = `${driverName}:using`;
    {
      await using lease = await locks.lease(name);
      expect(lease.state).toBe('held');
      expect(await other.getLease(name)).not.toBeNull();
    }
    expect(await other.getLease(name)).toBeNull();
  });

  test('invalid options are refused before any SQL', async () => {
    await expect(locks.lease('x', { ttl: '1s', heartbeat: '600ms' })).rejects.toBeInstanceOf(InvalidLockArgumentError);
    await expect(locks.lease('', {})).rejects.toBeInstanceOf(InvalidLockArgumentError);
    await expect(locks.lease('x'.repeat(513))).rejects.toBeInstanceOf(InvalidLockArgumentError);
    await expect(locks.lease('x', { bogus: 1 } as never)).rejects.toBeInstanceOf(InvalidLockArgumentError);
  });
});

test('a lease is refused inside a transaction handle: it must commit on its own', async () => {
  const prisma = db.prisma().$extends(lockExtension());
  await prisma.$transaction(async (tx) => {
    await expect(tx.$lock.lease('tx-lease')).rejects.toBeInstanceOf(InvalidLockArgumentError);
  });
  const drizzle = db.drizzle({ max: 3 });
  await drizzle.transaction(async (tx) => {
    await expect(drizzleLock(tx).lease('tx-lease')).rejects.toBeInstanceOf(InvalidLockArgumentError);
  });
  const client = await db.client();
  await expect(pgLock(client).lease('tx-lease')).rejects.toBeInstanceOf(InvalidLockArgumentError);
});

describe('across processes', () => {
  test('one holder at a time: 4 processes × 15 acquisitions never overlap, and tokens rise in acquisition order', async () => {
    await db.query('INSERT INTO lease_probe VALUES (0, 0, 0)');
    const children = Array.from({ length: 4 }, () => spawnNode(worker, ['contend', db.url, 'xp:contend', '15']));
    try {
      await Promise.all(children.map((child) => child.waitForLine('done')));
      // Once the pool is ended the process exits by itself: no heartbeat timer, trust timer or
      // lingering LISTEN connection keeps it alive.
      const exits = await Promise.all(children.map((child) => child.exited));
      expect(exits.map((exit) => exit.code)).toEqual([0, 0, 0, 0]);
    } finally {
      await Promise.all(children.map((child) => child.stop()));
    }
    const [probe] = await db.query<{ holders: number; max_holders: number; acquisitions: number }>('SELECT * FROM lease_probe');
    expect(probe).toEqual({ holders: 0, max_holders: 1, acquisitions: 60 });
    const tokens = (await db.query<{ token: string }>('SELECT token::text FROM lease_tokens ORDER BY seq')).map((row) => BigInt(row.token));
    expect(tokens).toHaveLength(60);
    for (let i = 1; i < tokens.length; i += 1) expect(tokens[i]! > tokens[i - 1]!).toBe(true);
    expect(new Set((await db.query<{ pid: number }>('SELECT DISTINCT pid FROM lease_tokens')).map((r) => r.pid)).size).toBe(4);
  });

  test('a SIGKILLed holder keeps its lease until its ttl has passed on the database clock, then another takes it', async () => {
    const name = 'xp:killed';
    const locks = pgLock(db.pool({ max: 3 }));
    const child = spawnNode(worker, ['hold', db.url, name, '1500']);
    const acquired = await child.waitForLine(/^acquired /);
    const childToken = BigInt(acquired.split(' ')[1]!);
    await child.stop('SIGKILL');
    // Read after the kill: no renewal can come any more, so this is the final expiry.
    const before = await locks.getLease(name);
    expect(before?.fencingToken).toBe(childToken);

    let refused = 0;
    let lease: Lease | null = null;
    while (lease === null) {
      const state = await locks.getLease(name);
      lease = await locks.lease(name, { ttl: '10s', onBusy: 'return' });
      if (lease === null) {
        refused += 1;
        // Refused only while the dead holder's row was live by the database's clock.
        expect(state?.live).toBe(true);
        await sleep(25);
      }
    }
    expect(refused).toBeGreaterThan(0);
    const after = await locks.getLease(name);
    expect(after!.acquiredAt.getTime()).toBeGreaterThanOrEqual(before!.expiresAt.getTime());
    expect(lease.fencingToken).toBeGreaterThan(childToken);
    await lease.release();
  });

  test('a holder whose heartbeats cannot get through aborts lease.signal while the database still holds the lease for it', async () => {
    const name = 'xp:stalled';
    // ttl 4 s: the child stops trusting its lease 400 ms (a tenth) before the database expires it,
    // room enough for the check below to run on a loaded machine.
    const child = spawnNode(worker, ['hold', db.url, name, '4000']);
    try {
      await child.waitForLine(/^acquired /);
      // Stall the child's heartbeats: they wait for this row lock as they would for a dead network.
      const blocker = await db.client();
      await blocker.query('BEGIN');
      await blocker.query('SELECT 1 FROM ormlock_leases WHERE name = $1 FOR UPDATE', [name]);
      await child.waitForLine(/^lost expired/);
      const [row] = (
        await blocker.query<{ live: boolean }>('SELECT expires_at > clock_timestamp() AS live FROM ormlock_leases WHERE name = $1', [name])
      ).rows;
      // The child gave up while the database would still have refused anyone else.
      expect(row?.live).toBe(true);
      await blocker.query('ROLLBACK');
      // Its early give-back then frees the row for others.
      await until(async () => (await db.query('SELECT 1 FROM ormlock_leases WHERE name = $1', [name])).length === 0, 'the stalled lease is given back');
    } finally {
      await child.stop('SIGKILL');
    }
  });

  test('a paused holder (SIGSTOP) is fenced off: after resuming, its signal aborts and its write with the old token is refused', async () => {
    const name = 'xp:paused';
    await db.query(`INSERT INTO lease_fenced VALUES (1, 'initial', NULL)`);
    const locks = pgLock(db.pool({ max: 3 }));
    const child = spawnNode(worker, ['hold', db.url, name, '600']);
    try {
      const old = BigInt((await child.waitForLine(/^acquired /)).split(' ')[1]!);
      child.child.kill('SIGSTOP');
      const lease = await locks.lease(name, { ttl: '10s', wait: '20s' });
      expect(lease.fencingToken).toBeGreaterThan(old);
      const written = await db.query(
        `UPDATE lease_fenced SET body = 'new holder', fence = $1 WHERE id = 1 AND ${fencingCondition('fence', '$1')} RETURNING id`,
        [lease.fencingToken.toString()],
      );
      expect(written).toHaveLength(1);
      child.child.kill('SIGCONT');
      await child.waitForLine(/^lost /);
      expect(await child.waitForLine(/^fenced-write /)).toBe('fenced-write 0');
      expect(await db.query('SELECT body, fence::text FROM lease_fenced')).toEqual([{ body: 'new holder', fence: lease.fencingToken.toString() }]);
      await lease.release();
    } finally {
      await child.stop('SIGKILL');
    }
  });

  test('leader election: one leader among processes; when it dies another is elected with a larger token', async () => {
    const name = 'xp:leader';
    const children = Array.from({ length: 3 }, () => spawnNode(worker, ['leader', db.url, name, '800']));
    try {
      const first = await Promise.any(children.map((child, index) => child.waitForLine(/^elected /).then((line) => ({ index, line }))));
      const leader = children[first.index]!;
      await sleep(300);
      expect(children.filter((child) => child.lines.some((line) => line.startsWith('elected'))).length).toBe(1);
      await leader.stop('SIGKILL');
      const rest = children.filter((_, index) => index !== first.index);
      const second = await Promise.any(rest.map((child) => child.waitForLine(/^elected /)));
      expect(BigInt(second.split(' ')[1]!)).toBeGreaterThan(BigInt(first.line.split(' ')[1]!));
    } finally {
      await Promise.all(children.map((child) => child.stop('SIGKILL')));
      // The killed waiters' places in line (the name's line row) lapse too; then pruning removes both.
      await until(
        async () => (await db.query(`SELECT 1 FROM ormlock_leases WHERE name IN ($1, chr(1) || 'line:' || $1) AND expires_at > clock_timestamp()`, [name])).length === 0,
        'leader lease and line expired',
        20_000,
      );
      await pgLock(db.pool({ max: 3 })).pruneLeases();
    }
  });
});

describe('refusals and tokens', () => {
  let pool: pg.Pool;
  beforeAll(() => {
    pool = db.pool({ max: 3 });
  });
  afterAll(async () => pool.end());

  const hostOf = (): LeaseHost =>
    new LeaseHost({ executor: { query: async (text, params) => (await pool.query(text, params as unknown[])).rows as never[], inTransaction: false }, table: leaseTableNames() });

  test('release by a non-owner, or with a stale token, is refused and leaves the holder in place', async () => {
    const locks = pgLock(pool);
    const lease = await locks.lease('refuse:owner', { ttl: '10s' });
    const stranger = hostOf();
    expect(await stranger.release('refuse:owner', lease.fencingToken.toString())).toBe('not-held');
    expect((await locks.getLease('refuse:owner'))?.fencingToken).toBe(lease.fencingToken);
    await lease.release();

    // The right owner with the token of an earlier acquisition is refused too.
    const owner = hostOf();
    const first = await owner.tryAcquire('refuse:token', 10_000, null);
    expect(first.acquired && (await owner.release('refuse:token', first.row.token))).toBe('released');
    const second = await owner.tryAcquire('refuse:token', 10_000, null);
    expect(first.acquired && (await owner.release('refuse:token', first.row.token))).toBe('not-held');
    expect((await locks.getLease('refuse:token'))?.fencingToken).toBe(second.acquired ? BigInt(second.row.token) : -1n);
    expect(second.acquired && (await owner.release('refuse:token', second.row.token))).toBe('released');
  });

  test('after a release that failed, asking again never hands back the old row and its token', async () => {
    const locks = pgLock(pool);
    const lease = await locks.lease('refuse:failed-release', { ttl: '10s', heartbeat: false });
    // Hold the lease row so that the release statement waits, then cancel that statement.
    const blocker = await db.client();
    await blocker.query('BEGIN');
    await blocker.query(`SELECT 1 FROM ormlock_leases WHERE name = 'refuse:failed-release' FOR UPDATE`);
    const released = lease.release().then(
      () => undefined,
      (error: unknown) => error,
    );
    for (let i = 0; i < 500; i += 1) {
      const [row] = await db.query<{ cancelled: boolean }>(
        `SELECT pg_cancel_backend(pid) AS cancelled FROM pg_stat_activity
          WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%ormlock_leases%' AND pid <> pg_backend_pid()`,
      );
      if (row?.cancelled) break;
      await sleep(10);
    }
    expect(await released).toMatchObject({ code: 'QUERY_CANCELED' });
    await blocker.query('ROLLBACK');

    const again = await locks.lease('refuse:failed-release', { ttl: '10s', wait: '5s' });
    expect(again.fencingToken).toBeGreaterThan(lease.fencingToken);
    expect((await locks.getLease('refuse:failed-release'))?.fencingToken).toBe(again.fencingToken);
    await again.release();
  });

  test('release and extend after expiry are refused with LeaseLostError; the next holder keeps the lease', async () => {
    const locks = pgLock(pool);
    const lost: LeaseLostError[] = [];
    const lease = await locks.lease('refuse:expired', { ttl: '300ms', heartbeat: false, onLost: (error) => lost.push(error) });
    await new Promise((resolve) => lease.signal.addEventListener('abort', resolve, { once: true }));
    expect(lease.state).toBe('lost');
    expect(lease.signal.reason).toBeInstanceOf(LeaseLostError);
    expect(lost).toHaveLength(1);
    const next = await pgLock(db.pool({ max: 3 })).lease('refuse:expired', { ttl: '10s', wait: '5s' });
    await expect(lease.release()).rejects.toBeInstanceOf(LeaseLostError);
    await expect(lease.extend()).rejects.toBeInstanceOf(LeaseLostError);
    expect((await locks.getLease('refuse:expired'))?.fencingToken).toBe(next.fencingToken);
    await next.release();

    // At the SQL level: the owner's own release after the database expired the row reports it.
    const host = hostOf();
    const attempt = await host.tryAcquire('refuse:sql', 50, null);
    expect(attempt.acquired).toBe(true);
    await until(async () => (await host.get('refuse:sql'))!.remaining_ms <= 0, 'expired on the database clock');
    expect(await host.extend('refuse:sql', attempt.acquired ? attempt.row.token : '0', 1000)).toBeUndefined();
    expect(await host.release('refuse:sql', attempt.acquired ? attempt.row.token : '0')).toBe('expired');
  });

  test('a release counted without RETURNING (as on Prisma) still tells released, expired, not held and a waiter in line apart', async () => {
    const counted = (): LeaseHost =>
      new LeaseHost({
        executor: {
          query: async (text, params) => (await pool.query(text, params as unknown[])).rows as never[],
          execute: async (text, params) => (await pool.query(text, params as unknown[])).rowCount ?? 0,
          inTransaction: false,
        },
        table: leaseTableNames(),
      });
    const host = counted();
    const token = (attempt: Awaited<ReturnType<LeaseHost['tryAcquire']>>) => (attempt.acquired ? attempt.row.token : '0');

    const live = await host.tryAcquire('counted:live', 10_000, null);
    expect(await host.release('counted:live', token(live))).toBe('released');
    expect(await host.get('counted:live')).toBeUndefined();

    const stale = await host.tryAcquire('counted:stale', 10_000, null);
    expect(await counted().release('counted:stale', token(stale))).toBe('not-held');
    expect(await host.release('counted:stale', '1')).toBe('not-held');
    expect((await host.get('counted:stale'))?.token).toBe(token(stale));
    expect(await host.release('counted:stale', token(stale))).toBe('released');

    const short = await host.tryAcquire('counted:expired', 50, null);
    await until(async () => (await host.get('counted:expired'))!.remaining_ms <= 0, 'expired on the database clock');
    expect(await host.release('counted:expired', token(short))).toBe('expired');
    expect(await host.get('counted:expired')).toBeUndefined();

    // A waiter in line: the counted statement deletes nothing and the full release hands over.
    const held = await host.tryAcquire('counted:line', 10_000, null);
    const waiter = counted();
    expect((await waiter.tryInLine('counted:line', 10_000, null)).acquired).toBe(false);
    expect(await host.release('counted:line', token(held))).toBe('released');
    const handed = await host.get('counted:line');
    expect(handed?.owner).toBe(waiter.owner);
    expect(await waiter.release('counted:line', handed!.token)).toBe('released');
  });

  test('Prisma releases count rows and report a release after expiry', async () => {
    const prisma = db.prisma().$extends(lockExtension());
    const lease = await prisma.$lock.lease('counted:prisma', { ttl: '10s' });
    await lease.release();
    expect(await prisma.$lock.getLease('counted:prisma')).toBeNull();
    // The database's clock passes the lease's expiry (moved there by hand) before this process lets go.
    const late = await prisma.$lock.lease('counted:prisma', { ttl: '30s' });
    await db.query(`UPDATE ormlock_leases SET expires_at = clock_timestamp() - interval '1 second' WHERE name = 'counted:prisma'`);
    await expect(late.release()).rejects.toMatchObject({ name: 'LeaseLostError', reason: 'expired' });
    expect(await prisma.$lock.getLease('counted:prisma')).toBeNull();
    // Taken over meanwhile (another token): the release leaves the new holder alone.
    const taken = await prisma.$lock.lease('counted:prisma', { ttl: '30s' });
    await db.query(`UPDATE ormlock_leases SET token = token + 1000 WHERE name = 'counted:prisma'`);
    await expect(taken.release()).rejects.toMatchObject({ name: 'LeaseLostError', reason: 'taken' });
    expect(await prisma.$lock.getLease('counted:prisma')).not.toBeNull();
    await db.query(`DELETE FROM ormlock_leases WHERE name = 'counted:prisma'`);
  });

  test('withLease throws LeaseLostError when the lease was lost while fn ran, and fn sees the signal abort', async () => {
    const locks = pgLock(pool);
    let sawAbort = false;
    const error = await locks
      .withLease(
        'refuse:with',
        async (lease) => {
          await new Promise((resolve) => lease.signal.addEventListener('abort', resolve, { once: true }));
          sawAbort = true;
          return 'finished anyway';
        },
        { ttl: '200ms', heartbeat: false },
      )
      .catch((e: unknown) => e);
    expect(sawAbort).toBe(true);
    expect(error).toBeInstanceOf(LeaseLostError);
  });

  test('a heartbeat that finds the row gone (or taken over) aborts the lease at once with LeaseLostError', async () => {
    const locks = pgLock(pool);
    const lease = await locks.lease('beat:taken', { ttl: '20s', heartbeat: '100ms' });
    // An operator (or a bug) removes the row; the trust deadline is ~18 s away.
    await db.query('DELETE FROM ormlock_leases WHERE name = $1', ['beat:taken']);
    await new Promise((resolve) => lease.signal.addEventListener('abort', resolve, { once: true }));
    expect(lease.state).toBe('lost');
    expect(lease.signal.reason).toBeInstanceOf(LeaseLostError);
    expect((lease.signal.reason as Error).message).toContain('no longer holds it');
    await expect(lease.release()).rejects.toBeInstanceOf(LeaseLostError);
  });

  test('a release NOTIFYs only when a waiter is in line, handing it the lease', async () => {
    // LISTEN needs a session: past the pooler, on the server itself.
    const listener = new pgModule.Client({ connectionString: directUrl() });
    listener.on('error', () => {});
    await listener.connect();
    try {
      // The payload of a handoff: `[name, new owner, token, expires_ms]`.
      const heard: string[] = [];
      listener.on('notification', (message) => heard.push((JSON.parse(message.payload ?? '[]') as string[])[0] ?? ''));
      // Each process is sent only the handoffs to itself, on a channel of its own; none go to the
      // table's channel itself.
      await listener.query('LISTEN ormlock_lease');
      const locks = pgLock(pool);
      const alone = await locks.lease('notify:alone', { ttl: '10s' });
      await listener.query(`LISTEN "${ownerChannel('ormlock_lease', alone.owner)}"`);
      await alone.release();
      const held = await locks.lease('notify:waited', { ttl: '60s' });
      const waiting = pgLock(db.pool({ max: 2 })).lease('notify:waited', { wait: '30s' });
      await untilWaiting(1);
      const [entry] = await db.query<{ owner: string }>(`SELECT jsonb_object_keys(data) AS owner FROM ormlock_leases WHERE name = chr(1) || 'line:notify:waited'`);
      await listener.query(`LISTEN "${ownerChannel('ormlock_lease', entry!.owner)}"`);
      await held.release();
      await (await waiting).release();
      await until(async () => heard.length > 0, 'a notification');
      // NOTIFYs arrive in commit order, so by now the release with nobody in line would have been
      // heard if it had sent one. The release the waiter was in line for did wake it. (How many
      // the waiter's own release sent is not part of the promise.)
      expect(heard[0]).toBe('notify:waited');
      expect(heard).not.toContain('notify:alone');
    } finally {
      await listener.end();
    }
  });

  test('extend() renews with a new ttl on the database clock', async () => {
    const locks = pgLock(pool);
    const lease = await locks.lease('extend:me', { ttl: '2s', heartbeat: false });
    const before = lease.expiresAt.getTime();
    await lease.extend('20s');
    expect(lease.expiresAt.getTime()).toBeGreaterThan(before + 10_000);
    expect((await locks.getLease('extend:me'))?.ttlMs).toBe(20_000);
    await lease.release();
  });

  test('tokens strictly increase through acquire, release, expiry, take-over, pruning and re-acquisition', async () => {
    const locks = pgLock(pool);
    const tokens: bigint[] = [];
    const a = await locks.lease('tokens', { ttl: '10s' });
    tokens.push(a.fencingToken);
    await a.release();
    const b = await locks.lease('tokens', { ttl: '10s' });
    tokens.push(b.fencingToken);
    await b.release();
    // Expiry without release (a holder that died): the row stays, expired.
    const host = hostOf();
    const dead = await host.tryAcquire('tokens', 30, null);
    expect(dead.acquired).toBe(true);
    if (dead.acquired) tokens.push(BigInt(dead.row.token));
    await until(async () => (await host.get('tokens'))!.remaining_ms <= 0, 'expired');
    const c = await locks.lease('tokens', { ttl: '10s' }); // take-over of the expired row
    tokens.push(c.fencingToken);
    await c.release();
    const d = await host.tryAcquire('tokens', 30, null);
    if (d.acquired) tokens.push(BigInt(d.row.token));
    await until(async () => (await host.get('tokens'))!.remaining_ms <= 0, 'expired');
    expect(await locks.pruneLeases()).toBeGreaterThanOrEqual(1);
    expect(await locks.getLease('tokens')).toBeNull();
    const e = await locks.lease('tokens', { ttl: '10s' }); // after pruning: a fresh row
    tokens.push(e.fencingToken);
    await e.release();
    expect(tokens).toHaveLength(6);
    for (let i = 1; i < tokens.length; i += 1) expect(tokens[i]! > tokens[i - 1]!).toBe(true);
  });

  test('one heartbeat statement renews every lease the process holds', async () => {
    const statements: { text: string; params: readonly unknown[] }[] = [];
    const host = new LeaseHost({
      executor: {
        query: async (text, params = []) => {
          statements.push({ text, params });
          return (await pool.query(text, params as unknown[])).rows as never[];
        },
        inTransaction: false,
      },
      table: leaseTableNames(),
    });
    const { acquireLease, planLease } = await import('../src/core/lease.js');
    // Leases due within half their interval ride along with the first one due: a heartbeat of
    // 400 ms lets the 20 acquisitions spread over up to 200 ms (a loaded machine) and still share.
    const leases = await Promise.all(Array.from({ length: 20 }, (_, i) => acquireLease(host, `beat:${i}`, planLease({ ttl: '2s', heartbeat: '400ms' }, 'lease'))));
    try {
      const heartbeats = () => statements.filter((s) => s.text.includes('ormlock heartbeat'));
      await until(async () => heartbeats().length >= 3, 'three heartbeats');
      for (const leaseHandle of leases) expect(leaseHandle!.state).toBe('held');
      // The names go as one array parameter: `{"beat:0","beat:1",…}`.
      const batches = heartbeats().map((s) => String(s.params[1]).split('"beat:').length - 1);
      // Leases taken together are renewed together: no statement per lease.
      expect(batches.every((size) => size === 20)).toBe(true);
    } finally {
      await Promise.all(leases.map((l) => l!.release()));
    }
  });

  test('the lease table missing gives LeaseTableMissingError naming the command that creates it', async () => {
    for (const locks of [
      pgLock(pool, { leaseTable: { table: 'no_such_leases' } }),
      drizzleLock(db.drizzle({ max: 3 }), { leaseTable: { schema: 'nowhere' } }),
      db.prisma().$extends(lockExtension({ leaseTable: { table: 'no_such_leases' } })).$lock,
    ]) {
      const error = await locks.lease('x').catch((e: unknown) => e);
      expect(error).toBeInstanceOf(LeaseTableMissingError);
      expect((error as Error).message).toContain('npx ormlock migrate');
      await expect(locks.getLease('x')).rejects.toBeInstanceOf(LeaseTableMissingError);
    }
  });

  test('an acquisition that waited for a conflicting row still gets a token larger than any holder before it', async () => {
    // INSERT … ON CONFLICT computes its row, token included, before it waits for a conflicting
    // row. Two ways the token could go stale, each staged here with raw transactions: (1) while
    // it waits, another holder takes the lease with a larger token and a release (which, like
    // ormlock's, takes the name's advisory lock) deletes the row, so the insert goes ahead with
    // its old row; (2) the row it waited for commits expired, with a larger token, and the
    // acquisition takes it over.
    const locks = pgLock(pool);
    const other = await db.client();
    const releaser = await db.client();
    try {
      // (1) A live holder's row, locked by `other`; `releaser` waits to delete it.
      await db.query(`INSERT INTO ormlock_leases (name, owner, acquired_at, renewed_at, expires_at, ttl_ms) VALUES ('stale:deleted', 'elsewhere', now(), now(), now() + interval '1 hour', 3600000)`);
      await other.query('BEGIN');
      await other.query(`SELECT 1 FROM ormlock_leases WHERE name = 'stale:deleted' FOR UPDATE`);
      await releaser.query('BEGIN');
      await releaser.query('SELECT pg_advisory_xact_lock($1, hashtext($2))', [LEASE_LOCK_CLASS, 'stale:deleted']);
      const deleting = releaser.query(`DELETE FROM ormlock_leases WHERE name = 'stale:deleted'`);
      await until(async () => (await lockWaits()) >= 1, 'the release waiting for the row');
      const acquiring = locks.lease('stale:deleted', { ttl: '10s', onBusy: 'return' });
      await until(async () => (await lockWaits()) >= 2, 'the acquisition waiting');
      // Another holder takes the lease meanwhile (a larger token), and the release then deletes it.
      const [{ token: taken }] = (await other.query<{ token: string }>(`UPDATE ormlock_leases SET token = DEFAULT, owner = 'next' WHERE name = 'stale:deleted' RETURNING token::text`)).rows as [{ token: string }];
      await other.query('COMMIT');
      await deleting;
      await releaser.query('COMMIT');
      const lease = await acquiring;
      expect(lease).not.toBeNull();
      expect(lease!.fencingToken).toBeGreaterThan(BigInt(taken));
      await lease!.release();

      // (2) A row being inserted (not yet committed) that commits expired, with a larger token.
      await other.query('BEGIN');
      await other.query(`INSERT INTO ormlock_leases (name, owner, acquired_at, renewed_at, expires_at, ttl_ms) VALUES ('stale:expired', 'elsewhere', now(), now(), now() + interval '1 hour', 3600000)`);
      const takingOver = locks.lease('stale:expired', { ttl: '10s', onBusy: 'return' });
      await until(async () => (await lockWaits()) >= 1, 'the acquisition waiting for the insert');
      const [{ token: expired }] = (await other.query<{ token: string }>(`UPDATE ormlock_leases SET token = DEFAULT, expires_at = now() - interval '1 second' WHERE name = 'stale:expired' RETURNING token::text`)).rows as [{ token: string }];
      await other.query('COMMIT');
      const overtaken = await takingOver;
      expect(overtaken).not.toBeNull();
      expect(overtaken!.fencingToken).toBeGreaterThan(BigInt(expired));
      await overtaken!.release();
    } finally {
      await other.query('ROLLBACK').catch(() => {});
      await releaser.query('ROLLBACK').catch(() => {});
      await db.query(`DELETE FROM ormlock_leases WHERE name LIKE 'stale:%'`);
    }
  });

  test('a handoff heard while the last try was on its way wakes the waiter at once, not at its next retry', async () => {
    // The NOTIFY of a handoff can arrive after a try was sent (which did not see the handoff) and
    // before the waiter goes to sleep: the sleep must start woken.
    let deliver: ((payload: string) => void) | undefined;
    const host = new LeaseHost({
      executor: { query: async (text, params) => (await pool.query(text, params as unknown[])).rows as never[], inTransaction: false },
      table: leaseTableNames(),
      notify: {
        listen: async (_channel, onNotify) => {
          deliver = onNotify;
          return async () => {};
        },
      },
    });
    const leave = await host.enqueue('heard-early', undefined);
    const stop = await host.startWaiting();
    try {
      deliver!(JSON.stringify(['heard-early', host.owner, '42', Date.now() + 30_000]));
      const woken = host.sleep('heard-early', 60_000, undefined, () => host.hasHandoff('heard-early')).then(() => 'woken');
      const timer = sleep(10_000).then(() => 'timer');
      expect(await Promise.race([woken, timer])).toBe('woken');
      expect(host.takeHandoff('heard-early')).toEqual({ token: '42', expiresMs: expect.any(Number) });
    } finally {
      stop();
      leave();
    }
  });

  test('a waiter that joins the line while the holder is releasing gets the lease at once, not at its safety retry', async () => {
    // The release's snapshot is taken before the waiter's place commits (a row lock held by a
    // third connection makes the release wait with that snapshot): it cannot see the waiter.
    // Before the fix it deleted the lease and the waiter slept in line until its safety retry
    // (0.5–1.5 s) with the lease free.
    const locks = pgLock(pool);
    const otherPool = db.pool({ max: 2 });
    const otherLocks = pgLock(otherPool);
    await onlyHandoffsWake(otherLocks, otherPool);
    const held = await locks.lease('join-during-release', { ttl: '30s' });
    const blocker = await db.client();
    try {
      await blocker.query('BEGIN');
      await blocker.query(`SELECT 1 FROM ormlock_leases WHERE name = 'join-during-release' FOR UPDATE`);
      const releasing = held.release();
      await until(async () => (await lockWaits()) >= 1, 'the release waiting for the row lock');
      // The waiter's safety retry never comes: only a handoff (or a try that finds the lease free) gets it.
      const waiting = otherLocks.lease('join-during-release', { ttl: '30s', wait: '60s', signal: AbortSignal.timeout(HANDOFF_BOUND_MS) });
      // The waiter's statement either waits behind the release (touching the holder's row) or
      // has committed its place in line; either way it ran before the release resumes.
      await until(async () => (await lockWaits()) >= 2 || (await waitersInLine()) >= 1, 'the waiter in line or waiting behind the release');
      await blocker.query('COMMIT');
      await releasing;
      const next = await waiting;
      expect(next.fencingToken).toBeGreaterThan(held.fencingToken);
      await next.release();
    } finally {
      await blocker.query('ROLLBACK').catch(() => {});
    }
  });

  test('two hosts (as two processes have) taking turns on one lease hand it over every time, tokens rising, without a release reported lost', async () => {
    const pools = [db.pool({ max: 2 }), db.pool({ max: 2 })];
    const tokens: bigint[] = [];
    await Promise.all(
      pools.map(async (target) => {
        const locks = pgLock(target);
        await onlyHandoffsWake(locks, target);
        for (let i = 0; i < 150; i += 1) {
          // No safety retry comes: a missed handoff fails the test.
          const lease = await locks.lease('ping-pong', { ttl: '30s', wait: '60s', signal: AbortSignal.timeout(HANDOFF_BOUND_MS) });
          tokens.push(lease.fencingToken);
          await lease.release();
        }
      }),
    );
    expect(tokens).toHaveLength(300);
    expect(tokens.every((token, i) => i === 0 || token > tokens[i - 1]!)).toBe(true);
  });

  test('a NOTIFY of a handoff that a statement already took sends no second release', async () => {
    // A waiter's statement can see a handoff before its NOTIFY arrives. The late NOTIFY must not
    // release that token again: racing the holder's own release, one of the two would find the
    // row gone and report the lease lost.
    let deliver: ((payload: string) => void) | undefined;
    const releases: string[] = [];
    const host = new LeaseHost({
      executor: {
        query: async (text, params) => {
          const release = text.startsWith('DELETE FROM') || text.startsWith('WITH cur AS');
          if (release && (params as unknown[])[0] === 'late-notify') releases.push(String((params as unknown[])[2]));
          return (await pool.query(text, params as unknown[])).rows as never[];
        },
        inTransaction: false,
      },
      table: leaseTableNames(),
      notify: {
        listen: async (_channel, onNotify) => {
          deliver = onNotify;
          return async () => {};
        },
      },
    });
    const { acquireLease, planLease } = await import('../src/core/lease.js');
    const leave = await host.enqueue('keep-listening', undefined);
    const stop = await host.startWaiting();
    try {
      const lease = (await acquireLease(host, 'late-notify', planLease({ ttl: '30s', wait: '5s' }, 'lease')))!;
      const releasing = lease.release();
      deliver!(JSON.stringify(['late-notify', host.owner, String(lease.fencingToken), Date.now() + 30_000]));
      await releasing;
      await sleep(200);
      expect(releases).toEqual([String(lease.fencingToken)]);
    } finally {
      stop();
      leave();
    }
  });

  test('node-postgres sends the lease statements by name; a connection that lost them (DEALLOCATE ALL) or has one already falls back to unnamed statements, and the call succeeds', async () => {
    const prepared = async (p: pg.Pool) => (await p.query<{ name: string }>(`SELECT name FROM pg_prepared_statements WHERE name LIKE 'ormlock_lease_%' ORDER BY name`)).rows.map((r) => r.name);
    // One connection each, so that the statements named are on the connection looked at.
    const first = db.pool({ max: 1 });
    const second = db.pool({ max: 1 });
    const dz = db.drizzle({ max: 1 });
    try {
      const locks = pgLock(first);
      await (await locks.lease('named:a', { ttl: '10s' })).release();
      if (pooling === 'transaction') {
        // Through a transaction-mode pooler the next use of a name may reach another backend: never named.
        expect(existingHost(first).prepared).toBe(false);
        return;
      }
      expect(existingHost(first).prepared).toBe(true);
      const names = await prepared(first);
      expect(names.some((n) => n.startsWith('ormlock_lease_acquire_'))).toBe(true);
      expect(names.some((n) => n.startsWith('ormlock_lease_quickRelease_'))).toBe(true);

      // 26000: node-postgres still thinks the connection has the statement and only binds it.
      await first.query('DEALLOCATE ALL');
      const again = await locks.lease('named:a', { ttl: '10s' });
      expect(again.state).toBe('held');
      await again.release();
      expect(existingHost(first).prepared).toBe(false);
      await (await locks.lease('named:a', { ttl: '10s' })).release();
      expect(await prepared(first)).toEqual([]);

      // 42P05: the connection has the name already, which node-postgres does not know.
      const acquireName = names.find((n) => n.startsWith('ormlock_lease_acquire_'))!;
      await second.query(`PREPARE ${acquireName} AS SELECT 1`);
      const secondLocks = pgLock(second);
      const held = await secondLocks.lease('named:b', { ttl: '10s' });
      expect(held.state).toBe('held');
      expect(existingHost(second).prepared).toBe(false);
      await held.release();
      expect(await secondLocks.getLease('named:b')).toBeNull();

      // Drizzle on node-postgres names them too, on its pool (postgres.js prepares by itself).
      const client = (dz as unknown as { $client?: unknown }).$client;
      if (client instanceof pgModule.Pool) {
        await (await drizzleLock(dz).lease('named:c', { ttl: '10s' })).release();
        expect(existingHost(dz).prepared).toBe(true);
        expect((await prepared(client)).some((n) => n.startsWith('ormlock_lease_acquire_'))).toBe(true);
      }
    } finally {
      await Promise.all([first.end(), second.end()]);
    }
  });

  test('a table in a schema that needs quoting works end to end', async () => {
    const table = { schema: 'Lease "Schema"', table: 'my leases' };
    await ensureLeaseTable({ query: async (text, params) => (await pool.query(text, params as unknown[])).rows }, table);
    await ensureLeaseTable({ query: async (text, params) => (await pool.query(text, params as unknown[])).rows }, table);
    const locks = pgLock(pool, { leaseTable: table });
    const lease = await locks.lease(`'; DROP TABLE ormlock_leases; --`, { ttl: '5s' });
    expect((await locks.listLeases()).map((l) => l.name)).toEqual([`'; DROP TABLE ormlock_leases; --`]);
    await lease.release();
    expect(await locks.listLeases()).toEqual([]);
  });
});

describe('more layers and forms', () => {
  test('Prisma with lockExtension({ url }): waiters LISTEN on a connection of their own', async () => {
    // Behind a transaction-mode pooler, `url` points past it, at PostgreSQL itself.
    const prisma = db.prisma().$extends(lockExtension({ url: pooling === 'transaction' ? directUrl() : db.url }));
    const holder = await pgLock(db.pool({ max: 3 })).lease('prisma:url', { ttl: '60s' });
    const waiting = prisma.$lock.lease('prisma:url', { wait: '30s' });
    await untilWaiting(1);
    await until(
      async () => (await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'ormlock-lease-listener' AND datname = current_database()`))[0]!.n > 0,
      'the Prisma waiter listens',
    );
    await holder.release();
    await (await waiting).release();
  });

  test('Prisma whose adapter was given a pg.Pool: lease statements run on that pool, by name (not through a transaction pooler)', async () => {
    const prisma = db.prisma({ pool: { max: 1 } }).$extends(lockExtension());
    const lease = await prisma.$lock.lease('prisma:pool', { ttl: '10s' });
    expect((await prisma.$lock.getLease('prisma:pool'))?.fencingToken).toBe(lease.fencingToken);
    await lease.release();
    // One connection in the pool: this query runs in the session that ran the lease statements.
    const prepared = await prisma.$queryRawUnsafe<{ statement: string }[]>('SELECT statement FROM pg_prepared_statements');
    const leaseStatements = prepared.filter((p) => p.statement.includes('ormlock_leases'));
    if (pooling === 'transaction') expect(leaseStatements).toEqual([]);
    else expect(leaseStatements.length).toBeGreaterThanOrEqual(2);
  });

  test('Drizzle on postgres.js: leases work and waiters LISTEN through sql.listen (poll behind a transaction pooler)', async () => {
    const { default: postgres } = await import('postgres');
    const { drizzle } = await import('drizzle-orm/postgres-js');
    // pgbouncer before 1.21 keeps no prepared statements in transaction mode.
    const sql = postgres(db.url, { max: 2, onnotice: () => {}, ...(pooling === 'transaction' ? { prepare: false } : {}) });
    try {
      const locks = drizzleLock(drizzle({ client: sql }));
      const other = pgLock(db.pool({ max: 3 }));
      const holder = await other.lease('pgjs:wait', { ttl: '60s' });
      const waiting = locks.lease('pgjs:wait', { wait: '30s' });
      await untilWaiting(1);
      if (pooling !== 'transaction') {
        await until(
          async () =>
            (await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE query ILIKE 'LISTEN %ormlock_lease%' AND datname = current_database()`))[0]!
              .n > 0,
          'the postgres.js waiter listens',
        );
      }
      await holder.release();
      const lease = await waiting;
      expect(lease.fencingToken).toBeGreaterThan(holder.fencingToken);
      expect((await locks.getLease('pgjs:wait'))?.owner).toBe(lease.owner);
      await lease.release();
    } finally {
      await sql.end({ timeout: 1 });
    }
  });

  test('leader(): stop() gives leadership up (onDemoted without error) and lets another process-local contender win', async () => {
    const a = pgLock(db.pool({ max: 3 }));
    const b = pgLock(db.pool({ max: 3 }));
    const events: string[] = [];
    const first = a.leader('local:leader', {
      ttl: '5s',
      onElected: (lease) => void events.push(`a elected ${lease.fencingToken > 0n}`),
      onDemoted: (error) => void events.push(`a demoted ${error === undefined ? 'by stop' : error.reason}`),
    });
    await until(async () => first.isLeader, 'a leads');
    const second = b.leader('local:leader', { ttl: '5s', onElected: () => void events.push('b elected') });
    try {
      await sleep(100);
      expect(second.isLeader).toBe(false);
      await first.stop();
      expect(first.isLeader).toBe(false);
      await until(async () => second.isLeader, 'b leads');
      // The release hands the lease to b in the same statement, so b's onElected may run before
      // a's onDemoted has been called: both happen, once each, after a was elected.
      expect(events[0]).toBe('a elected true');
      expect([...events].sort()).toEqual(['a demoted by stop', 'a elected true', 'b elected']);
    } finally {
      await first.stop();
      await second.stop();
    }
    expect(await a.getLease('local:leader')).toBeNull();
  });
});
