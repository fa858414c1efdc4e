import type pg from 'pg';
import { expect, test } from 'vitest';
import { type Inspection, type LockInfo, hashKey } from '../src/index.js';
import { leaseTableSql } from '../src/core/lease-schema.js';
import { $lock } from '../src/pg/index.js';
import { $lock as drizzleLock } from '../src/drizzle/index.js';
import { lockExtension } from '../src/prisma/index.js';
import { useTestDatabase } from './helpers/database.js';

const db = useTestDatabase({ migrations: 'prisma' });
// The chains name backends by pid across statements; a transaction-mode pooler does not keep them.
const perBackend = db.pooler !== 'transaction';

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

/** A → B → C: A holds ACCESS SHARE on accounts (idle in transaction), B waits for ACCESS EXCLUSIVE behind A, C waits for ACCESS SHARE behind B. */
async function blockingChain(): Promise<{ a: number; b: number; c: number; end(): Promise<void> }> {
  const sa = await db.client({ application_name: 'chain-a' });
  const sb = await db.client({ application_name: 'chain-b' });
  const sc = await db.client({ application_name: 'chain-c' });
  // Each pid is read inside its session's transaction: behind a transaction-mode pooler
  // (ORMLOCK_TEST_POOLER=transaction) a statement outside one may run on any backend.
  await sa.query('BEGIN');
  const a = await pidOf(sa);
  await sa.query('SELECT count(*) FROM accounts');
  await sb.query('BEGIN');
  const b = await pidOf(sb);
  const bDone = sb.query('LOCK TABLE accounts IN ACCESS EXCLUSIVE MODE');
  await until(waiting(b), 'B waits');
  await sc.query('BEGIN');
  const c = await pidOf(sc);
  const cDone = sc.query('SELECT count(*) FROM accounts');
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
      await sc.query('COMMIT');
    },
  };
}

function locksOf(inspection: Inspection, pid: number): LockInfo[] {
  return inspection.locks.filter((lock) => lock.pid === pid);
}

test.runIf(perBackend)('inspect() reports a real three-session blocking chain, with Prisma model names', async () => {
  const prisma = db.prisma().$extends(lockExtension());
  const chain = await blockingChain();
  try {
    const inspection = await prisma.$lock.inspect();
    const accounts = { schema: db.schema, name: 'accounts', model: 'Account' };
    expect(locksOf(inspection, chain.b).filter((l) => !l.granted)).toEqual([
      expect.objectContaining({ lockType: 'relation', mode: 'AccessExclusiveLock', relation: accounts, blockedBy: [chain.a], application: 'chain-b' }),
    ]);
    expect(locksOf(inspection, chain.c).filter((l) => !l.granted)).toEqual([
      expect.objectContaining({ lockType: 'relation', mode: 'AccessShareLock', relation: accounts, blockedBy: [chain.b], state: 'active' }),
    ]);
    const heldByA = locksOf(inspection, chain.a).filter((l) => l.relation?.name === 'accounts');
    expect(heldByA).toEqual([
      expect.objectContaining({ mode: 'AccessShareLock', granted: true, blocking: [chain.b], blockedBy: [], state: 'idle in transaction', waitingMs: null }),
    ]);
    expect(heldByA[0]?.transactionStart).toBeInstanceOf(Date);
    const waitOfB = locksOf(inspection, chain.b).find((l) => !l.granted);
    expect(waitOfB?.waitingMs).toBeGreaterThanOrEqual(0);
    expect(waitOfB?.query).toBe('LOCK TABLE accounts IN ACCESS EXCLUSIVE MODE');
    expect(waitOfB?.user).toBeTruthy();
    expect(waitOfB?.database).toBe(db.name);

    const blocked = await prisma.$lock.inspect({ blockedOnly: true, queryLength: 10 });
    expect(blocked.locks.map((l) => [l.pid, l.mode, l.granted]).sort()).toEqual(
      [
        [chain.a, 'AccessShareLock', true],
        [chain.b, 'AccessExclusiveLock', false],
        [chain.c, 'AccessShareLock', false],
      ].sort(),
    );
    expect(blocked.locks.every((l) => (l.query ?? '').length <= 10)).toBe(true);

    const byModel = await prisma.$lock.inspect({ relation: 'Account' });
    expect(new Set(byModel.locks.map((l) => l.pid))).toEqual(new Set([chain.a, chain.b, chain.c]));
    expect(byModel.locks.every((l) => l.relation?.name === 'accounts')).toBe(true);
    expect((await prisma.$lock.inspect({ relation: 'jobs' })).locks).toEqual([]);
  } finally {
    await chain.end();
  }
});

test.runIf(perBackend)('the pg and Drizzle layers see the same chain (without model names)', async () => {
  const chain = await blockingChain();
  try {
    const fromPg = await $lock(db.pool()).inspect({ blockedOnly: true });
    const fromDrizzle = await drizzleLock(db.drizzle()).inspect({ blockedOnly: true });
    const shape = (i: Inspection) => i.locks.map((l) => ({ pid: l.pid, mode: l.mode, granted: l.granted, relation: l.relation, blockedBy: l.blockedBy, blocking: l.blocking }));
    expect(shape(fromPg)).toEqual(shape(fromDrizzle));
    expect(fromPg.locks.find((l) => l.pid === chain.c)).toMatchObject({ relation: { schema: db.schema, name: 'accounts' }, blockedBy: [chain.b] });
    expect(fromPg.locks.find((l) => l.pid === chain.c)?.relation).not.toHaveProperty('model');
  } finally {
    await chain.end();
  }
});

test.runIf(perBackend)('advisory keys are decoded: string keys this process hashed, pairs, and plain numbers', async () => {
  const holder = await db.client({ application_name: 'advisory-holder' });
  const holderPid = await pidOf(holder);
  const pool = db.pool();
  await holder.query('BEGIN');
  await holder.query('SELECT pg_advisory_xact_lock($1::int8)', [hashKey('inspect:invoice:42').toString()]);
  await holder.query('SELECT pg_advisory_xact_lock(7, -3)');
  await holder.query('SELECT pg_advisory_xact_lock(-123456789012)');
  // A string nobody in this process hashed stays a number.
  await holder.query(`SELECT pg_advisory_xact_lock(('x' || left(encode(sha256(convert_to('never-hashed-here', 'UTF8')), 'hex'), 16))::bit(64)::bigint)`);
  try {
    const { locks } = await $lock(pool).inspect();
    const keys = locks.filter((l) => l.pid === holderPid && l.lockType === 'advisory').map((l) => l.advisoryKey);
    expect(keys).toHaveLength(4);
    expect(keys).toContainEqual({ kind: 'int8', value: hashKey('inspect:invoice:42'), key: 'inspect:invoice:42' });
    expect(keys).toContainEqual({ kind: 'pair', namespace: 7, id: -3 });
    expect(keys).toContainEqual({ kind: 'int8', value: -123456789012n });
    expect(keys.filter((k) => k?.kind === 'int8' && k.key === undefined)).toHaveLength(2);
    // The held locks of ordinary transactions' own ids are left out unless asked for.
    expect(locks.some((l) => l.pid === holderPid && l.lockType === 'virtualxid')).toBe(false);
    const all = await $lock(pool).inspect({ includeInternal: true });
    expect(all.locks.some((l) => l.pid === holderPid && l.lockType === 'virtualxid')).toBe(true);
  } finally {
    await holder.query('ROLLBACK');
  }
});

test('leases are listed when the lease table exists, and skipped when it does not', async () => {
  const pool = db.pool();
  expect((await $lock(pool).inspect()).leases).toEqual([]);
  await db.query(leaseTableSql({ table: 'inspect_leases' }));
  await db.query(
    `INSERT INTO inspect_leases (name, owner, acquired_at, renewed_at, expires_at, ttl_ms) VALUES
       ('nightly', 'worker-1', now(), now(), now() + interval '1 minute', 60000),
       ('stale', 'worker-2', now() - interval '2 minutes', now() - interval '2 minutes', now() - interval '1 minute', 60000)`,
  );
  const { leases } = await $lock(pool).inspect({ leaseTable: { table: 'inspect_leases' } });
  expect(leases).toEqual([
    expect.objectContaining({ name: 'nightly', owner: 'worker-1', expired: false, token: expect.any(BigInt) }),
    expect.objectContaining({ name: 'stale', owner: 'worker-2', expired: true }),
  ]);
  expect(leases[0]?.expiresAt).toBeInstanceOf(Date);
  expect((await $lock(pool).inspect({ leaseTable: false })).leases).toEqual([]);
});

test('inspect options are validated', async () => {
  const pool = db.pool();
  await expect($lock(pool).inspect({ blocked: true } as never)).rejects.toThrow(/options\.blocked: unknown option/);
  await expect($lock(pool).inspect({ queryLength: -1 })).rejects.toThrow(/queryLength/);
});
