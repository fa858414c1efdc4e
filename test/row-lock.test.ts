/**
 * `row()` through Prisma, Drizzle and `pg`, against real PostgreSQL sessions: what blocks what,
 * NOWAIT, SKIP LOCKED, timeouts, cancellation, lock strengths, and the transaction rule.
 */
import type pg from 'pg';
import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import type { RowLockStrength } from '../src/core/row-lock.js';
import { InvalidLockArgumentError, LockAbortedError, LockNotAvailableError, LockTimeoutError, NotInTransactionError } from '../src/index.js';
import { $lock as pgLock } from '../src/pg/index.js';
import { useTestDatabase } from './helpers/database.js';
import { type RowDriver, holdRows, rowDriver, track, untilWaitingOnLock } from './helpers/row-lock-drivers.js';

const db = useTestDatabase({ migrations: 'prisma' });

const STRENGTHS: RowLockStrength[] = ['keyShare', 'share', 'noKeyUpdate', 'update'];
const STRENGTH_SQL: Record<RowLockStrength, string> = { keyShare: 'KEY SHARE', share: 'SHARE', noKeyUpdate: 'NO KEY UPDATE', update: 'UPDATE' };

/**
 * "Conflicting Row-Level Locks", PostgreSQL manual 13.3.2: which requested lock (key) conflicts
 * with which held lock.
 */
const ROW_CONFLICTS: Record<RowLockStrength, RowLockStrength[]> = {
  keyShare: ['update'],
  share: ['noKeyUpdate', 'update'],
  noKeyUpdate: ['share', 'noKeyUpdate', 'update'],
  update: ['keyShare', 'share', 'noKeyUpdate', 'update'],
};

beforeEach(async () => {
  await db.query('TRUNCATE accounts RESTART IDENTITY CASCADE');
  await db.query(`INSERT INTO accounts (owner, balance) SELECT 'owner ' || i, i FROM generate_series(1, 5) AS i`);
});

describe.each(['prisma', 'drizzle', 'pg'] as const)('row() through %s', (driverName) => {
  let driver: RowDriver;
  let other: pg.Client;
  let checker: pg.Client;

  beforeAll(async () => {
    driver = rowDriver(driverName, db);
    other = await db.client();
    checker = await db.client();
  });
  afterAll(async () => {
    await other.query('ROLLBACK').catch(() => {});
  });

  test('a FOR UPDATE lock taken by ormlock blocks another FOR UPDATE on the same row, not on other rows', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let locked!: () => void;
    const held = new Promise<void>((resolve) => (locked = resolve));
    const holder = driver.transaction(async (tx) => {
      expect(await tx.lockAccounts([1])).toEqual([1]);
      locked();
      await gate;
    });
    await held;
    await other.query('BEGIN');
    // Another row: granted at once while row 1 is held.
    expect((await other.query('SELECT id FROM accounts WHERE id = 2 FOR UPDATE NOWAIT')).rows).toEqual([{ id: 2 }]);
    const { rows } = await other.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
    const waiter = track(other.query('SELECT id FROM accounts WHERE id = 1 FOR UPDATE'));
    await untilWaitingOnLock(checker, rows[0]!.pid);
    expect(waiter.settled).toBe(false);
    release();
    await holder;
    expect((await waiter.promise).rows).toEqual([{ id: 1 }]);
    await other.query('COMMIT');
  });

  test('row() waits for a row another transaction holds, and gets it when that one commits', async () => {
    const hold = await holdRows(other, 'SELECT id FROM accounts WHERE id = 1 FOR UPDATE');
    await driver.transaction(async (tx) => {
      // Row 2 is free: taken while row 1 is held elsewhere.
      expect(await tx.lockAccounts([2])).toEqual([2]);
      const [{ pid }] = (await tx.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')) as [{ pid: number }];
      const waiting = track(tx.lockAccounts([1]));
      await untilWaitingOnLock(checker, Number(pid));
      expect(waiting.settled).toBe(false);
      await hold.release();
      expect(await waiting.promise).toEqual([1]);
    });
  });

  test('nowait fails at once with LockNotAvailableError and leaves the transaction usable', async () => {
    const hold = await holdRows(other, 'SELECT id FROM accounts WHERE id = 1 FOR UPDATE');
    try {
      await driver.transaction(async (tx) => {
        await expect(tx.lockAccounts([1, 2], { nowait: true })).rejects.toBeInstanceOf(LockNotAvailableError);
        expect(await tx.lockAccounts([2, 3], { nowait: true })).toEqual([2, 3]);
        await tx.query(`UPDATE accounts SET owner = 'after nowait' WHERE id = 2`);
      });
    } finally {
      await hold.release();
    }
    expect(await db.query('SELECT owner FROM accounts WHERE id = 2')).toEqual([{ owner: 'after nowait' }]);
  });

  test('timeout fails with LockTimeoutError, restores lock_timeout, and leaves the transaction usable', async () => {
    const hold = await holdRows(other, 'SELECT id FROM accounts WHERE id = 3 FOR UPDATE');
    try {
      await driver.transaction(async (tx) => {
        await tx.query(`SELECT set_config('lock_timeout', '7s', true)`);
        const error = await tx.lockAccounts([3], { timeout: '200ms' }).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(LockTimeoutError);
        expect((error as LockTimeoutError).timeoutMs).toBe(200);
        expect(await tx.query('SHOW lock_timeout')).toEqual([{ lock_timeout: '7s' }]);
        // A successful bounded lock restores the setting too.
        expect(await tx.lockAccounts([4], { timeout: 1000 })).toEqual([4]);
        expect(await tx.query('SHOW lock_timeout')).toEqual([{ lock_timeout: '7s' }]);
        await tx.query(`UPDATE accounts SET owner = 'after timeout' WHERE id = 4`);
      });
    } finally {
      await hold.release();
    }
    expect(await db.query('SELECT owner FROM accounts WHERE id = 4')).toEqual([{ owner: 'after timeout' }]);
  });

  test('skipLocked leaves out the rows others hold', async () => {
    const hold = await holdRows(other, 'SELECT id FROM accounts WHERE id IN (1, 3) FOR UPDATE');
    try {
      await driver.transaction(async (tx) => {
        expect(await tx.lockAccounts([1, 2, 3, 4], { skipLocked: true })).toEqual([2, 4]);
      });
    } finally {
      await hold.release();
    }
  });

  test('an AbortSignal cancels the wait on the server and leaves the transaction usable', async () => {
    const hold = await holdRows(other, 'SELECT id FROM accounts WHERE id = 5 FOR UPDATE');
    try {
      await driver.transaction(async (tx) => {
        const [{ pid }] = (await tx.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')) as [{ pid: number }];
        const controller = new AbortController();
        const waiting = track(tx.lockAccounts([5], { signal: controller.signal }));
        await untilWaitingOnLock(checker, Number(pid));
        controller.abort(new Error('shutting down'));
        await expect(waiting.promise).rejects.toBeInstanceOf(LockAbortedError);
        expect(await tx.query('SELECT 1 AS one')).toEqual([{ one: 1 }]);
      });
    } finally {
      await hold.release();
    }
  });

  test('strength: the lock ormlock requests conflicts with held row locks exactly as PostgreSQL documents', async () => {
    const seen: string[] = [];
    const expected: string[] = [];
    for (const held of STRENGTHS) {
      const hold = await holdRows(other, `SELECT id FROM accounts WHERE id = 1 FOR ${STRENGTH_SQL[held]}`);
      try {
        await driver.transaction(async (tx) => {
          for (const requested of STRENGTHS) {
            const outcome = await tx.lockAccounts([1], { strength: requested, nowait: true }).then(
              () => 'granted',
              (error: unknown) => (error instanceof LockNotAvailableError ? 'busy' : `error ${String(error)}`),
            );
            seen.push(`${requested} vs held ${held}: ${outcome}`);
            expected.push(`${requested} vs held ${held}: ${ROW_CONFLICTS[requested].includes(held) ? 'busy' : 'granted'}`);
          }
        });
      } finally {
        await hold.release();
      }
    }
    expect(seen).toEqual(expected);
  });

  test('strength: the lock ormlock holds blocks other sessions exactly as PostgreSQL documents', async () => {
    const seen: string[] = [];
    const expected: string[] = [];
    for (const held of STRENGTHS) {
      await driver.transaction(async (tx) => {
        await tx.lockAccounts([1], { strength: held });
        for (const requested of STRENGTHS) {
          await other.query('BEGIN');
          const outcome = await other.query(`SELECT id FROM accounts WHERE id = 1 FOR ${STRENGTH_SQL[requested]} NOWAIT`).then(
            () => 'granted',
            (error: { code?: string }) => (error.code === '55P03' ? 'busy' : `error ${String(error)}`),
          );
          await other.query('ROLLBACK');
          seen.push(`${requested} vs held ${held}: ${outcome}`);
          expected.push(`${requested} vs held ${held}: ${ROW_CONFLICTS[requested].includes(held) ? 'busy' : 'granted'}`);
        }
      });
    }
    expect(seen).toEqual(expected);
  });

  test('outside a transaction, row() and model() throw NotInTransactionError, and so does claim() without set', async () => {
    await expect(driver.rowOutside()).rejects.toBeInstanceOf(NotInTransactionError);
    await expect(driver.modelOutside()).rejects.toBeInstanceOf(NotInTransactionError);
    await expect(driver.claimWithoutSetOutside()).rejects.toBeInstanceOf(NotInTransactionError);
  });

  test('nowait with skipLocked, or a timeout with nowait, is refused before any SQL', async () => {
    await driver.transaction(async (tx) => {
      await expect(tx.lockAccounts([1], { nowait: true, skipLocked: true } as never)).rejects.toBeInstanceOf(InvalidLockArgumentError);
      await expect(tx.lockAccounts([1], { nowait: true, timeout: 10 } as never)).rejects.toBeInstanceOf(InvalidLockArgumentError);
      await expect(tx.lockAccounts([1], { strength: 'exclusive' } as never)).rejects.toBeInstanceOf(InvalidLockArgumentError);
      // The transaction was not touched by the refused calls.
      expect(await tx.lockAccounts([1])).toEqual([1]);
    });
  });
});

describe('row() argument checks happen before SQL', () => {
  test('pg: a bad option sends nothing to the server', async () => {
    const client = await db.client();
    await client.query('BEGIN');
    const sent: string[] = [];
    const spy = {
      query: (text: string, values?: readonly unknown[]) => {
        sent.push(text);
        return client.query(text, values as unknown[]);
      },
      getTransactionStatus: () => client.getTransactionStatus(),
    };
    const lock = pgLock(spy);
    await expect(lock.row('accounts', { nowait: true, skipLocked: true } as never)).rejects.toBeInstanceOf(InvalidLockArgumentError);
    await expect(lock.row('accounts', { limit: -1 })).rejects.toBeInstanceOf(InvalidLockArgumentError);
    await expect(lock.row('accounts', { wait: false } as never)).rejects.toBeInstanceOf(InvalidLockArgumentError);
    await expect(lock.row('', {})).rejects.toBeInstanceOf(InvalidLockArgumentError);
    await expect(lock.model('accounts', { mode: 'rowShareExclusive' } as never)).rejects.toBeInstanceOf(InvalidLockArgumentError);
    await expect(lock.claim('jobs', { set: {} })).rejects.toBeInstanceOf(InvalidLockArgumentError);
    expect(sent).toEqual([]);
    await client.query('ROLLBACK');
  });
});

describe('drizzle casing', () => {
  test("row() and claim() follow the instance's casing option (snake_case columns from camelCase keys)", async () => {
    const { drizzle } = await import('drizzle-orm/node-postgres');
    const { eq } = await import('drizzle-orm');
    const { integer, pgTable, text } = await import('drizzle-orm/pg-core');
    const { $lock } = await import('../src/drizzle/index.js');
    await db.query('CREATE TABLE cased_items (row_id integer PRIMARY KEY, some_label text)');
    await db.query(`INSERT INTO cased_items VALUES (1, 'a'), (2, 'b'), (3, 'c')`);
    const cased = pgTable('cased_items', { rowId: integer().primaryKey(), someLabel: text() });
    const orm = drizzle({ client: db.pool(), casing: 'snake_case' });
    await orm.transaction(async (tx) => {
      expect(await $lock(tx).row(cased, { where: eq(cased.someLabel, 'b'), orderBy: cased.rowId })).toEqual([{ rowId: 2, someLabel: 'b' }]);
      expect(await $lock(tx).claim(cased, { orderBy: cased.rowId, limit: 2, set: { someLabel: 'z' } })).toEqual([
        // Row 2 is this transaction's own lock: SKIP LOCKED skips only other transactions' rows.
        { rowId: 1, someLabel: 'z' },
        { rowId: 2, someLabel: 'z' },
      ]);
    });
  });
});

describe('drizzle row values', () => {
  test('row() and claim() decode every column as select() does (bigint, numeric, jsonb, timestamp, null)', async () => {
    const { asc, gt } = await import('drizzle-orm');
    const { $lock } = await import('../src/drizzle/index.js');
    const { accounts, jobs } = await import('./helpers/models.js');
    await db.query('TRUNCATE jobs RESTART IDENTITY');
    await db.query(`SELECT setval('jobs_id_seq', 9007199254740992)`);
    await db.query(`INSERT INTO jobs (payload, locked_by) VALUES ('{"a": [1, {"b": null}]}', NULL), ('[1, 2]', 'w'), ('"text"', NULL)`);
    const orm = db.drizzle();
    await orm.transaction(async (tx) => {
      const expectedJobs = await tx.select().from(jobs).orderBy(asc(jobs.id));
      expect(await $lock(tx).row(jobs, { orderBy: asc(jobs.id) })).toEqual(expectedJobs);
      expect(typeof expectedJobs[0]?.id).toBe('bigint');
      const expectedAccounts = await tx.select().from(accounts).where(gt(accounts.id, 2)).orderBy(asc(accounts.id));
      expect(await $lock(tx).row(accounts, { where: gt(accounts.id, 2), orderBy: accounts.id, timeout: '1s' })).toEqual(expectedAccounts);
    });
  });
});
