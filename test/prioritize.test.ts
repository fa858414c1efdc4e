import { randomBytes } from 'node:crypto';
import { integer, pgSchema } from 'drizzle-orm/pg-core';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, test } from 'vitest';
import { InvalidLockArgumentError, LockTimeoutError, PrioritizeFailedError, PrioritizePermissionError, hashKey, type BlockerInfo } from '../src/index.js';
import { runLockStatement } from '../src/core/wait.js';
import { planPrioritize, startPrioritizer } from '../src/core/prioritize.js';
import { clientExecutor, poolSideChannel } from '../src/pg/pg-executor.js';
import { $lock } from '../src/pg/index.js';
import { $lock as drizzleLock } from '../src/drizzle/index.js';
import { lockExtension } from '../src/prisma/index.js';
import { useTestDatabase } from './helpers/database.js';
import type {} from './helpers/provided-context.js';

const db = useTestDatabase({
  migrations: 'prisma',
  setup: async (client) => {
    await client.query('CREATE TABLE public.prio_target (id int)');
    await client.query('CREATE TABLE public.prio_other (id int)');
    await client.query('INSERT INTO public.prio_target VALUES (1)');
    // For Drizzle, which cannot name the public schema: a schema of its own, off any search_path.
    await client.query('CREATE SCHEMA prio_drizzle');
    await client.query('CREATE TABLE prio_drizzle.target (id int)');
  },
});

const TARGET = { schema: 'public', name: 'prio_target' } as const;
// Schema-qualified, so that it is found whatever the run's search_path (the quoted-schema variant).
const drizzleTarget = pgSchema('prio_drizzle').table('target', { id: integer('id') });

async function pidOf(client: pg.Client): Promise<number> {
  return Number((await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]?.pid);
}

async function isAlive(pid: number): Promise<boolean> {
  return (await db.query('SELECT 1 FROM pg_stat_activity WHERE pid = $1', [pid])).length > 0;
}

/** Resolves once `pid` holds a granted lock on the relation, or (relation undefined) waits on a lock. */
async function until(condition: () => Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 1000; i += 1) {
    if (await condition()) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`timed out waiting until ${what}`);
}

const holdsRelation = (pid: number, table: string) => async () =>
  (await db.query(`SELECT 1 FROM pg_locks WHERE pid = $1 AND relation = $2::regclass AND granted`, [pid, table])).length > 0;

const waiting = (pid: number) => async () => (await db.query(`SELECT 1 FROM pg_locks WHERE pid = $1 AND NOT granted`, [pid])).length > 0;

const KEY_SQL = 'SELECT pg_advisory_xact_lock($1::int8)';

// These tests name backends by pid across statements (holders, bystanders, victims); a
// transaction-mode pooler hands each statement outside a transaction to any backend.
const perBackend = db.pooler !== 'transaction';

describe.runIf(perBackend)('prioritize with table locks', () => {
  test('terminate: a migration gets ACCESS EXCLUSIVE past an idle-in-transaction holder; a bystander is untouched', async () => {
    const holder = await db.client({ application_name: 'ormlock-test-holder' });
    const bystander = await db.client({ application_name: 'ormlock-test-bystander' });
    // Pids read inside the transactions: behind a transaction-mode pooler a statement outside
    // one may run on any backend.
    await holder.query('BEGIN');
    await bystander.query('BEGIN');
    const [holderPid, bystanderPid] = [await pidOf(holder), await pidOf(bystander)];
    await holder.query('SELECT count(*) FROM public.prio_target');
    await bystander.query('SELECT count(*) FROM public.prio_other');
    const signalled: BlockerInfo[] = [];
    const pool = db.pool();

    const modes = await $lock(pool).prioritize(
      async (client) => {
        await $lock(client).model(TARGET, { mode: 'accessExclusive', timeout: '10s' });
        const { rows } = await client.query(`SELECT mode FROM pg_locks WHERE pid = pg_backend_pid() AND relation = 'public.prio_target'::regclass AND granted`);
        return rows.map((row: { mode: string }) => row.mode);
      },
      { action: 'terminate', every: 50, after: 50, onSignal: (blockers) => signalled.push(...blockers) },
    );

    expect(modes).toContain('AccessExclusiveLock');
    await until(async () => signalled.length > 0, 'onSignal reports the holder');
    expect(signalled.map((b) => b.pid)).toEqual([holderPid]);
    expect(signalled[0]).toMatchObject({ applicationName: 'ormlock-test-holder', state: 'idle in transaction' });
    expect(await isAlive(holderPid)).toBe(false);
    expect(await isAlive(bystanderPid)).toBe(true);
    expect((await bystander.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    await bystander.query('ROLLBACK');
  });

  test('terminate through Prisma: tx.$lock.model gets ACCESS EXCLUSIVE past a long SELECT', async () => {
    const prisma = db.prisma().$extends(lockExtension());
    const holder = await db.client({ application_name: 'ormlock-test-long-select' });
    const holderPid = await pidOf(holder);
    const longSelect = holder.query('SELECT count(*) FROM accounts, pg_sleep(60)').then(
      () => 'finished',
      (error: unknown) => error,
    );
    await until(holdsRelation(holderPid, 'accounts'), 'the long SELECT holds accounts');

    const held = await prisma.$lock.prioritize(
      async (tx) => {
        await tx.$lock.model('Account', { timeout: '10s' });
        return tx.$queryRawUnsafe<{ mode: string }[]>(`SELECT mode FROM pg_locks WHERE pid = pg_backend_pid() AND relation = 'accounts'::regclass AND granted`);
      },
      { action: 'terminate', every: 50, after: 50, transaction: { timeout: 20_000, maxWait: 10_000 } },
    );

    expect(held.map((row) => row.mode)).toContain('AccessExclusiveLock');
    expect(await longSelect).toBeInstanceOf(Error);
    expect(await isAlive(holderPid)).toBe(false);
  });

  test('per call: tx.$lock.row with prioritize terminates the holder of the row; other rows and sessions untouched', async () => {
    const prisma = db.prisma().$extends(lockExtension());
    const [a, b] = await Promise.all([
      prisma.account.create({ data: { owner: 'prio-a', balance: 1 } }),
      prisma.account.create({ data: { owner: 'prio-b', balance: 2 } }),
    ]);
    const holder = await db.client({ application_name: 'ormlock-test-row-holder' });
    const bystander = await db.client({ application_name: 'ormlock-test-row-bystander' });
    await holder.query('BEGIN');
    await bystander.query('BEGIN');
    const [holderPid, bystanderPid] = [await pidOf(holder), await pidOf(bystander)];
    await holder.query('SELECT id FROM accounts WHERE id = $1 FOR UPDATE', [a.id]);
    await bystander.query('SELECT id FROM accounts WHERE id = $1 FOR UPDATE', [b.id]);

    const locked = await prisma.$transaction(
      (tx) => tx.$lock.row('Account', { where: { id: a.id }, timeout: '10s', prioritize: { action: 'terminate', every: 50, after: 50 } }),
      { timeout: 20_000, maxWait: 10_000 },
    );

    expect(locked.map((row) => row.owner)).toEqual(['prio-a']);
    expect(await isAlive(holderPid)).toBe(false);
    expect(await isAlive(bystanderPid)).toBe(true);
    await bystander.query('ROLLBACK');
  });

  test('per call: $lock(tx).model on Drizzle with prioritize cancels the blocking statement only', async () => {
    const drizzle = db.drizzle();
    const holder = await db.client({ application_name: 'ormlock-test-model-cancel' });
    const holderPid = await pidOf(holder);
    const longSelect = holder.query('SELECT count(*) FROM prio_drizzle.target, pg_sleep(60)').then(
      () => 'finished',
      (error: unknown) => error,
    );
    await until(holdsRelation(holderPid, 'prio_drizzle.target'), 'the long SELECT holds prio_drizzle.target');

    await drizzle.transaction(async (tx) => {
      await drizzleLock(tx, { db: drizzle }).model(drizzleTarget, { timeout: '10s', prioritize: { action: 'cancel', every: 50, after: 50 } });
    });

    expect(await longSelect).toMatchObject({ code: '57014' });
    expect(await isAlive(holderPid)).toBe(true);
  });

  test('per call: the option is refused where the lock never waits, before any SQL', async () => {
    const client = await db.client();
    await client.query('BEGIN');
    const prioritize = { action: 'cancel' } as const;
    await expect($lock(client).row(TARGET, { nowait: true, prioritize } as never)).rejects.toThrow(/prioritize.*cannot be combined with nowait/);
    await expect($lock(client).row(TARGET, { skipLocked: true, prioritize } as never)).rejects.toThrow(/cannot be combined with skipLocked/);
    await expect($lock(client).model(TARGET, { nowait: true, prioritize } as never)).rejects.toThrow(/prioritize.*cannot be combined with nowait/);
    await expect($lock(client).row(TARGET, { prioritize: { action: 'kill' } } as never)).rejects.toBeInstanceOf(InvalidLockArgumentError);
    // Still in a healthy transaction: nothing reached the server.
    expect((await client.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    await client.query('ROLLBACK');
  });

  test('cancel ends only the blocking statement: the session survives', async () => {
    const holder = await db.client({ application_name: 'ormlock-test-cancel' });
    const holderPid = await pidOf(holder);
    const longSelect = holder.query('SELECT count(*) FROM public.prio_target, pg_sleep(60)').then(
      () => 'finished',
      (error: unknown) => error,
    );
    await until(holdsRelation(holderPid, 'public.prio_target'), 'the long SELECT holds prio_target');
    const pool = db.pool();

    await $lock(pool).prioritize((client) => $lock(client).model(TARGET, { timeout: '10s' }), { action: 'cancel', every: 50, after: 50 });

    expect(await longSelect).toMatchObject({ code: '57014' });
    expect(await isAlive(holderPid)).toBe(true);
    expect((await holder.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
  });

  test('a bystander queued on the same table behind the migration is not in its way, and is untouched', async () => {
    const holder = await db.client({ application_name: 'ormlock-test-holder' });
    const migration = await db.client({ application_name: 'ormlock-test-migration' });
    const bystander = await db.client({ application_name: 'ormlock-test-queued' });
    const [holderPid, migrationPid, bystanderPid] = [await pidOf(holder), await pidOf(migration), await pidOf(bystander)];
    await holder.query('BEGIN');
    await holder.query('SELECT count(*) FROM public.prio_target');
    await migration.query('BEGIN');
    const text = 'LOCK TABLE public.prio_target IN ACCESS EXCLUSIVE MODE';
    const locked = migration.query(text);
    await until(waiting(migrationPid), 'the migration waits');
    const read = bystander.query('SELECT count(*) AS n FROM public.prio_target');
    await until(waiting(bystanderPid), 'the bystander queues behind the migration');
    const signalled: number[] = [];
    // Everyone is in place before the first look: the prioritizer alone decides.
    const prioritizer = startPrioritizer(poolSideChannel(db.pool()), migrationPid, text, {
      ...planPrioritize({ action: 'terminate', every: 50, after: 0 }),
      onSignal: (blockers) => signalled.push(...blockers.map((b) => b.pid)),
    });
    try {
      await locked;
    } finally {
      await prioritizer.stop();
    }
    await migration.query('COMMIT');
    expect((await read).rows).toEqual([{ n: '1' }]);
    await until(async () => signalled.length > 0, 'onSignal reports the holder');
    expect(signalled).toEqual([holderPid]);
    expect(await isAlive(holderPid)).toBe(false);
    expect(await isAlive(bystanderPid)).toBe(true);
  });

  test('a raw LOCK TABLE through runLockStatement, with the option on the wait itself', async () => {
    const holder = await db.client();
    const holderPid = await pidOf(holder);
    await holder.query('BEGIN');
    await holder.query('LOCK TABLE public.prio_target IN ROW EXCLUSIVE MODE');
    const pool = db.pool();
    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      const outcome = await runLockStatement(clientExecutor(client as unknown as pg.Client, true, poolSideChannel(pool)), 'LOCK TABLE public.prio_target IN SHARE MODE', [], {
        savepoint: false,
        what: 'prio_target',
        prioritize: planPrioritize({ action: 'terminate', every: 50, after: 50 }),
      });
      expect(outcome.acquired).toBe(true);
      await client.query('COMMIT');
    } finally {
      client.release();
    }
    expect(await isAlive(holderPid)).toBe(false);
  });

  test('a side connection that keeps failing gives the wait up with PrioritizeFailedError; the holder lives', async () => {
    const holder = await db.client();
    const holderPid = await pidOf(holder);
    await holder.query('BEGIN');
    await holder.query('LOCK TABLE public.prio_target IN ROW EXCLUSIVE MODE');
    const pool = db.pool();
    const real = poolSideChannel(pool);
    let failedLooks = 0;
    // Looks fail (as with a full pool); the cancel of our own wait still gets through.
    const flaky = {
      query: <T extends Record<string, unknown>>(text: string, params?: readonly unknown[]) => {
        if (text.includes('pg_blocking_pids')) {
          failedLooks += 1;
          return Promise.reject(Object.assign(new Error('sorry, too many clients already'), { code: '53300' }));
        }
        return real.query<T>(text, params);
      },
    };
    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      const error = await runLockStatement(clientExecutor(client as unknown as pg.Client, true, flaky), 'LOCK TABLE public.prio_target IN SHARE MODE', [], {
        savepoint: true,
        what: 'prio_target',
        prioritize: planPrioritize({ action: 'terminate', every: 20, after: 0 }),
      }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(PrioritizeFailedError);
      expect((error as PrioritizeFailedError).cause).toMatchObject({ code: '53300' });
      expect(failedLooks).toBe(3);
      await client.query('ROLLBACK');
    } finally {
      client.release();
    }
    expect(await isAlive(holderPid)).toBe(true);
    await holder.query('ROLLBACK');
  });

  test("another database's backends are never signalled, even when they block the wait", async () => {
    // Locks on shared catalogs conflict across databases: the only way a backend of another
    // database can appear in pg_blocking_pids. The modes chosen never block new connections.
    const adminUrl = inject('ormlockAdminUrl');
    const otherName = `${db.name}_other`;
    const admin = new pg.Client({ connectionString: adminUrl });
    await admin.connect();
    await admin.query(`CREATE DATABASE "${otherName}" TEMPLATE template0`);
    const otherUrl = new URL(adminUrl);
    otherUrl.pathname = `/${otherName}`;
    const foreign = new pg.Client({ connectionString: otherUrl.toString(), application_name: 'ormlock-test-foreign' });
    foreign.on('error', () => {});
    try {
      await foreign.connect();
      const foreignPid = await pidOf(foreign);
      await foreign.query('BEGIN');
      await foreign.query('LOCK TABLE pg_catalog.pg_shseclabel IN ROW EXCLUSIVE MODE');
      const local = await db.client({ application_name: 'ormlock-test-local' });
      const localPid = await pidOf(local);
      await local.query('BEGIN');
      await local.query('LOCK TABLE pg_catalog.pg_shseclabel IN ROW EXCLUSIVE MODE');
      const signalled: number[] = [];
      const pool = db.pool();

      const error = await $lock(pool)
        .prioritize((client) => $lock(client).model({ schema: 'pg_catalog', name: 'pg_shseclabel' }, { mode: 'exclusive', timeout: '2s' }), {
          action: 'terminate',
          every: 50,
          after: 50,
          onSignal: (blockers) => signalled.push(...blockers.map((b) => b.pid)),
        })
        .catch((e: unknown) => e);

      expect(error).toBeInstanceOf(LockTimeoutError);
      await until(async () => signalled.length > 0, 'onSignal reports the local holder');
      expect(signalled).toEqual([localPid]);
      expect(await isAlive(localPid)).toBe(false);
      expect((await foreign.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
      expect(foreignPid).not.toBe(localPid);
      await foreign.query('ROLLBACK');
    } finally {
      await foreign.end().catch(() => {});
      await admin.query(`DROP DATABASE IF EXISTS "${otherName}" WITH (FORCE)`);
      await admin.end();
    }
  });
});

describe.runIf(perBackend)('prioritize with advisory locks', () => {
  const holdKey = async (key: string, applicationName: string): Promise<{ client: pg.Client; pid: number }> => {
    const client = await db.client({ application_name: applicationName });
    await client.query('BEGIN');
    await client.query(KEY_SQL, [hashKey(key).toString()]);
    return { client, pid: await pidOf(client) };
  };

  test('a filter that does not match leaves the holder alone (the wait times out)', async () => {
    const holder = await holdKey('prio:filter', 'ormlock-test-keep');
    const pool = db.pool();
    const error = await $lock(pool)
      .advisory('prio:filter', async () => 'ran', {
        timeout: '600ms',
        prioritize: { action: 'terminate', every: 50, after: 50, filter: { applicationName: ['someone-else', 'another'] } },
      })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LockTimeoutError);
    expect(await isAlive(holder.pid)).toBe(true);
    await holder.client.query('ROLLBACK');
  });

  test('a filter by user and transaction age that matches terminates the holder', async () => {
    const holder = await holdKey('prio:age', 'ormlock-test-age');
    const [{ user }] = (await db.query<{ user: string }>('SELECT current_user AS user')) as [{ user: string }];
    const pool = db.pool();
    const result = await $lock(pool).advisory('prio:age', async () => 'ran', {
      timeout: '10s',
      prioritize: { action: 'terminate', every: 50, after: 50, filter: { user, minTransactionAge: '1ms', applicationName: 'ormlock-test-age' } },
    });
    expect(result).toBe('ran');
    expect(await isAlive(holder.pid)).toBe(false);
  });

  test('a predicate sees each blocker and decides, in this process', async () => {
    const spared = await holdKey('prio:predicate', 'ormlock-test-spared');
    const seen: BlockerInfo[] = [];
    const pool = db.pool();
    const error = await $lock(pool)
      .advisory('prio:predicate', async () => 'ran', {
        // Long enough for the predicate to be asked at least once however loaded the machine is.
        timeout: '2s',
        prioritize: { action: 'terminate', every: 50, after: 50, filter: { predicate: (b) => (seen.push(b), b.applicationName !== 'ormlock-test-spared') } },
      })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LockTimeoutError);
    expect(await isAlive(spared.pid)).toBe(true);
    expect(seen[0]).toMatchObject({ pid: spared.pid, applicationName: 'ormlock-test-spared', state: 'idle in transaction' });
    expect(seen[0]?.transactionAgeMs).toBeGreaterThanOrEqual(0);
    await spared.client.query('ROLLBACK');

    const doomed = await holdKey('prio:predicate', 'ormlock-test-doomed');
    const result = await $lock(pool).advisory('prio:predicate', async () => 'ran', {
      timeout: '10s',
      prioritize: { action: 'terminate', every: 50, after: 50, filter: { predicate: (b) => b.applicationName === 'ormlock-test-doomed' } },
    });
    expect(result).toBe('ran');
    expect(await isAlive(doomed.pid)).toBe(false);
  });

  test('prisma.$lock.prioritize applies to tx.$lock.advisory waits inside it', async () => {
    const prisma = db.prisma().$extends(lockExtension());
    const holder = await holdKey('prio:prisma', 'ormlock-test-prisma-holder');
    const result = await prisma.$lock.prioritize(
      async (tx) => {
        await tx.$lock.advisory('prio:prisma', { timeout: '10s' });
        return 'locked';
      },
      { action: 'terminate', every: 50, after: 50, transaction: { timeout: 20_000, maxWait: 10_000 } },
    );
    expect(result).toBe('locked');
    expect(await isAlive(holder.pid)).toBe(false);
  });

  test('$lock(db).prioritize on Drizzle reaches $lock(tx) waits that have no side channel of their own', async () => {
    const drizzle = db.drizzle();
    const holder = await holdKey('prio:drizzle', 'ormlock-test-drizzle-holder');
    const result = await drizzleLock(drizzle).prioritize(
      async (tx) => {
        await drizzleLock(tx).advisory('prio:drizzle', { timeout: '10s' });
        return 'locked';
      },
      { action: 'terminate', every: 50, after: 50 },
    );
    expect(result).toBe('locked');
    expect(await isAlive(holder.pid)).toBe(false);
  });

  test('without the privilege to signal the blocker: PrioritizePermissionError, and the blocker lives', async () => {
    const role = `ormlock_weak_${randomBytes(4).toString('hex')}`;
    await db.query(`CREATE ROLE ${role} LOGIN`);
    const weakUrl = new URL(db.url);
    weakUrl.username = role;
    weakUrl.password = '';
    const weak = new pg.Pool({ connectionString: weakUrl.toString() });
    weak.on('error', () => {});
    try {
      const holder = await holdKey('prio:weak', 'ormlock-test-superuser-holder');
      const error = await $lock(weak)
        .advisory('prio:weak', async () => 'ran', { timeout: '10s', prioritize: { action: 'terminate', every: 50, after: 50 } })
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(PrioritizePermissionError);
      expect((error as PrioritizePermissionError).code).toBe('PRIORITIZE_PERMISSION_DENIED');
      expect(await isAlive(holder.pid)).toBe(true);
      await holder.client.query('ROLLBACK');
    } finally {
      await weak.end();
      await db.query(`DROP ROLE ${role}`);
    }
  });

  test('options are validated before any SQL is sent', async () => {
    const pool = db.pool();
    await expect($lock(pool).advisory('prio:x', async () => 1, { prioritize: { action: 'kill' } as never })).rejects.toBeInstanceOf(InvalidLockArgumentError);
    await expect($lock(pool).advisory('prio:x', async () => 1, { wait: false, prioritize: { action: 'cancel' } })).rejects.toThrow(/cannot be combined/);
    await expect($lock(pool).advisory('prio:x', async () => 1, { prioritize: { action: 'cancel', every: 1 } })).rejects.toThrow(/at least 10 ms/);
    await expect($lock(pool).advisory('prio:x', async () => 1, { prioritize: { action: 'cancel', filter: { app: 'x' } } as never })).rejects.toThrow(/filter\.app/);
    await expect($lock(pool).prioritize(async () => 1, { action: 'cancel', filter: { user: [] } })).rejects.toThrow(/filter\.user/);
  });
});

describe.runIf(perBackend)('after the wait', () => {
  let pool: pg.Pool;
  beforeAll(() => {
    pool = db.pool();
  });
  afterAll(async () => pool.end());

  test('a later statement of the same transaction that waits is not prioritized by an earlier wait', async () => {
    const holder = await db.client({ application_name: 'ormlock-test-later' });
    const holderPid = await pidOf(holder);
    await holder.query('BEGIN');
    await holder.query('LOCK TABLE public.prio_other IN ROW EXCLUSIVE MODE');
    const signalled: number[] = [];
    const error = await $lock(pool)
      .advisory(
        'prio:later',
        async (client) => {
          await client.query(`SET LOCAL lock_timeout = '500ms'`);
          await client.query('LOCK TABLE public.prio_other IN SHARE MODE');
        },
        { prioritize: { action: 'terminate', every: 10, after: 0, onSignal: (b) => signalled.push(...b.map((x) => x.pid)) } },
      )
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ code: '55P03' });
    expect(signalled).toEqual([]);
    expect(await isAlive(holderPid)).toBe(true);
    await holder.query('ROLLBACK');
  });
});
