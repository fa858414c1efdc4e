import { fileURLToPath } from 'node:url';
import { afterEach, beforeAll, describe, expect, test } from 'vitest';
import {
  ensureLeaseTable,
  fencingCondition,
  InvalidLockArgumentError,
  type LeaseMethods,
  LeaseLostError,
  type LeaseRecord,
  LockTimeoutError,
  type BlockerInfo,
} from '../src/index.js';
import { $lock as drizzleLockOf } from '../src/drizzle/index.js';
import { $lock as pgLockOf } from '../src/pg/index.js';
import { lockExtension as lockExtensionOf } from '../src/prisma/index.js';
import { useTestDatabase } from './helpers/database.js';
import { spawnNode } from './helpers/spawn-node.js';

// `prioritize` on lease waits: the holder is taken over (a lease holds no backend to signal), and
// the backends that block the wait's own statements are cancelled or terminated.

const worker = fileURLToPath(new URL('./helpers/fixtures/lease-worker.ts', import.meta.url));

const db = useTestDatabase({
  setup: async (client) => {
    await ensureLeaseTable({ query: async (text, params) => (await client.query(text, params as unknown[])).rows });
    await client.query(`CREATE TABLE lease_fenced (id int PRIMARY KEY, body text NOT NULL, fence bigint)`);
  },
  leakCheck: {
    graceMs: 3000,
    extra: async (checker) =>
      (await checker.query<{ name: string; owner: string }>('SELECT name, owner FROM ormlock_leases')).rows.map((row) => `lease ${row.name} left held by ${row.owner}`),
  },
});

const pooling = db.pooler === 'transaction' ? ('transaction' as const) : undefined;
const quick = { after: '20ms', every: '40ms' } as const;

describe.each(['pg', 'drizzle', 'prisma'] as const)('prioritized lease waits through %s', (driverName) => {
  let holderLocks: LeaseMethods;
  let waiterLocks: LeaseMethods;

  beforeAll(() => {
    const make = (): LeaseMethods => {
      if (driverName === 'pg') return pgLockOf(db.pool({ max: 3 }), { pooling });
      if (driverName === 'drizzle') return drizzleLockOf(db.drizzle({ max: 3 }), { pooling });
      return db.prisma().$extends(lockExtensionOf({ pooling })).$lock;
    };
    holderLocks = make();
    waiterLocks = make();
  });

  test('the wait takes the lease over from a live holder, with a larger token; the old holder finds it gone', async () => {
    const name = `${driverName}:takeover`;
    const holder = await holderLocks.lease(name, { ttl: '30s' });
    const previous: LeaseRecord[] = [];
    const lease = await waiterLocks.lease(name, { ttl: '10s', wait: '20s', prioritize: { action: 'terminate', ...quick, onTakeOver: (p) => previous.push(p) } });
    try {
      expect(lease.fencingToken).toBeGreaterThan(holder.fencingToken);
      expect(lease.owner).not.toBe(holder.owner);
      expect(previous).toHaveLength(1);
      expect(previous[0]).toMatchObject({ name, owner: holder.owner, fencingToken: holder.fencingToken, live: true });
      // Taken from a holder whose lease was live by the database's clock.
      const now = await waiterLocks.getLease(name);
      expect(now).toMatchObject({ owner: lease.owner, fencingToken: lease.fencingToken });
      expect(now!.acquiredAt.getTime()).toBeLessThan(previous[0]!.expiresAt.getTime());
      // The old holder: extend and release both report the loss; its signal aborts.
      await expect(holder.extend()).rejects.toBeInstanceOf(LeaseLostError);
      expect(holder.state).toBe('lost');
      expect(holder.signal.aborted).toBe(true);
      await expect(holder.release()).rejects.toBeInstanceOf(LeaseLostError);
      expect(lease.state).toBe('held');
    } finally {
      await lease.release();
    }
    expect(await waiterLocks.getLease(name)).toBeNull();
  });

  test('takeOver: false or a predicate that refuses leaves the holder alone, and the wait times out', async () => {
    const name = `${driverName}:spared`;
    const holder = await holderLocks.lease(name, { ttl: '30s' });
    try {
      await expect(waiterLocks.lease(name, { wait: '300ms', prioritize: { action: 'terminate', ...quick, takeOver: false } })).rejects.toBeInstanceOf(LockTimeoutError);
      const seen: string[] = [];
      const spare = (h: LeaseRecord) => {
        seen.push(h.owner);
        return h.owner !== holder.owner;
      };
      await expect(waiterLocks.lease(name, { wait: '300ms', prioritize: { action: 'cancel', ...quick, takeOver: spare } })).rejects.toBeInstanceOf(LockTimeoutError);
      expect(seen.length).toBeGreaterThan(0);
      expect(new Set(seen)).toEqual(new Set([holder.owner]));
      // Still held by the holder, with the same token.
      await holder.extend();
      expect((await waiterLocks.getLease(name))?.fencingToken).toBe(holder.fencingToken);
    } finally {
      await holder.release();
    }
  });

  test('prioritize(fn) applies to lease waits inside fn', async () => {
    const name = `${driverName}:scoped`;
    const holder = await holderLocks.lease(name, { ttl: '30s' });
    const taken = await (waiterLocks as unknown as { prioritize: (fn: () => Promise<unknown>, o: object) => Promise<unknown> }).prioritize(
      async () => {
        const lease = await waiterLocks.lease(name, { wait: '20s' });
        const token = lease.fencingToken;
        await lease.release();
        return token;
      },
      { action: 'cancel', ...quick },
    );
    expect(taken).toBeGreaterThan(holder.fencingToken);
    await expect(holder.release()).rejects.toBeInstanceOf(LeaseLostError);
  });
});

describe('prioritized lease waits, refusals', () => {
  test('bad options are refused before any SQL is sent', async () => {
    const sent: string[] = [];
    const pool = db.pool({ max: 1 });
    const query = pool.query.bind(pool);
    (pool as unknown as { query: (...args: unknown[]) => unknown }).query = (...args: unknown[]) => {
      sent.push(String(args[0]));
      return (query as (...a: unknown[]) => unknown)(...args);
    };
    const locks = pgLockOf(pool, { pooling });
    await expect(locks.lease('r:nowait', { prioritize: { action: 'terminate' } })).rejects.toThrow(InvalidLockArgumentError);
    await expect(locks.lease('r:zero', { wait: 0, prioritize: { action: 'terminate' } })).rejects.toThrow(/needs a wait/);
    await expect(locks.lease('r:action', { wait: '1s', prioritize: { action: 'kill' as 'cancel' } })).rejects.toThrow(InvalidLockArgumentError);
    await expect(locks.lease('r:take', { wait: '1s', prioritize: { action: 'cancel', takeOver: 'yes' as unknown as boolean } })).rejects.toThrow(/takeOver/);
    await expect(locks.lease('r:cb', { wait: '1s', prioritize: { action: 'cancel', onTakeOver: 1 as unknown as () => void } })).rejects.toThrow(/onTakeOver/);
    expect(() => locks.leader('r:leader', { onElected: () => {}, prioritize: { action: 'cancel' } } as never)).toThrow(/leader election/);
    expect(sent).toEqual([]);
  });
});

describe('prioritized lease waits against blocking sessions', () => {
  const clients: { end(): Promise<void> }[] = [];
  afterEach(async () => {
    await Promise.allSettled(clients.splice(0).map((c) => c.end()));
  });

  test('a session that keeps the lease row locked is terminated; a bystander is untouched', async () => {
    const name = 'blocked:row';
    const blocker = await db.client({ application_name: 'ormlock-test-lease-blocker' });
    const bystander = await db.client({ application_name: 'ormlock-test-lease-bystander' });
    clients.push(blocker, bystander);
    blocker.on('error', () => {});
    // An uncommitted row for the name: the wait's insert waits for this transaction to end.
    await blocker.query('BEGIN');
    await blocker.query(
      `INSERT INTO ormlock_leases (name, owner, acquired_at, renewed_at, expires_at, ttl_ms) VALUES ($1, 'an admin', now(), now(), now() + interval '1 hour', 3600000)`,
      [name],
    );
    // The bystander holds another lease name's row the same way: not in the way of this wait.
    await bystander.query('BEGIN');
    await bystander.query(
      `INSERT INTO ormlock_leases (name, owner, acquired_at, renewed_at, expires_at, ttl_ms) VALUES ('blocked:other', 'bystander', now(), now(), now(), 0)`,
    );
    const blockerPid = (await blocker.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
    const bystanderPid = (await bystander.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;

    const signalled: BlockerInfo[] = [];
    const locks = pgLockOf(db.pool({ max: 3 }), { pooling });
    const lease = await locks.lease(name, { ttl: '10s', wait: '20s', prioritize: { action: 'terminate', ...quick, onSignal: (b) => signalled.push(...b) } });
    try {
      expect(signalled.map((b) => b.pid)).toEqual([blockerPid]);
      expect(signalled[0]).toMatchObject({ applicationName: 'ormlock-test-lease-blocker', state: 'idle in transaction' });
      const alive = await db.query<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE pid = ANY($1::int[])', [[blockerPid, bystanderPid]]);
      expect(alive.map((r) => r.pid)).toEqual([bystanderPid]);
      expect((await locks.getLease(name))?.owner).toBe(lease.owner);
    } finally {
      await lease.release();
      await bystander.query('ROLLBACK');
    }
  });

  test('filter narrows the sessions that may be signalled: one outside it keeps blocking until the wait times out', async () => {
    const name = 'blocked:filtered';
    const blocker = await db.client({ application_name: 'ormlock-test-lease-keeper' });
    clients.push(blocker);
    await blocker.query('BEGIN');
    await blocker.query(`INSERT INTO ormlock_leases (name, owner, acquired_at, renewed_at, expires_at, ttl_ms) VALUES ($1, 'keeper', now(), now(), now(), 0)`, [name]);
    const locks = pgLockOf(db.pool({ max: 3 }), { pooling });
    const waiting = locks.lease(name, { wait: '300ms', prioritize: { action: 'terminate', ...quick, filter: { applicationName: 'somebody-else' } } });
    // The statement itself waits for the keeper: end the keeper's transaction after a while and
    // check that nobody was signalled meanwhile (the keeper's session is still its own).
    await new Promise((resolve) => setTimeout(resolve, 400));
    const pid = (await blocker.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
    expect(pid).toBeGreaterThan(0);
    await blocker.query('ROLLBACK');
    const lease = await waiting.catch((error: unknown) => error);
    // The wait's bound is checked between statements: it either timed out or got the lease once the keeper let go.
    if (lease instanceof Error) expect(lease).toBeInstanceOf(LockTimeoutError);
    else await (lease as { release(): Promise<void> }).release();
  });
});

describe('prioritized lease waits across processes', () => {
  test('a holder in another process is taken over; its heartbeat then finds the lease gone and its fenced write is refused', async () => {
    const name = 'xp:prioritized';
    const locks = pgLockOf(db.pool({ max: 3 }), { pooling });
    const child = spawnNode(worker, ['hold', db.url, name, '6000']);
    try {
      const acquired = await child.waitForLine(/^acquired /);
      const childToken = BigInt(acquired.split(' ')[1]!);
      const lease = await locks.lease(name, { ttl: '10s', wait: '20s', prioritize: { action: 'terminate', ...quick } });
      try {
        expect(lease.fencingToken).toBeGreaterThan(childToken);
        // The new holder writes under its token; the child's late write with the old one is refused.
        await db.query(`INSERT INTO lease_fenced (id, body, fence) VALUES (1, 'prioritized', $1)`, [lease.fencingToken.toString()]);
        expect(await child.waitForLine(/^lost /)).toBe('lost expired');
        expect(await child.waitForLine(/^fenced-write /)).toBe('fenced-write 0');
        const [row] = await db.query<{ body: string; fence: string }>(`SELECT body, fence::text FROM lease_fenced WHERE id = 1 AND ${fencingCondition('fence', '$1')}`, [
          lease.fencingToken.toString(),
        ]);
        expect(row).toEqual({ body: 'prioritized', fence: lease.fencingToken.toString() });
      } finally {
        await lease.release();
      }
    } finally {
      await child.stop('SIGKILL');
    }
  });
});
