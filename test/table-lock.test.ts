/**
 * `model()` (LOCK TABLE) through Prisma, Drizzle and `pg`: the eight modes conflict as PostgreSQL
 * documents, timeouts and NOWAIT leave the transaction usable, several tables go in a fixed order.
 */
import type pg from 'pg';
import { beforeAll, describe, expect, test } from 'vitest';
import { TABLE_LOCK_MODES, type TableLockMode, buildTableLock, planTableLock } from '../src/core/table-lock.js';
import { InvalidLockArgumentError, LockNotAvailableError, LockTimeoutError } from '../src/index.js';
import { useTestDatabase } from './helpers/database.js';
import { type RowDriver, rowDriver, track, untilWaitingOnLock } from './helpers/row-lock-drivers.js';

const db = useTestDatabase({ migrations: 'prisma' });

const MODES = Object.keys(TABLE_LOCK_MODES) as TableLockMode[];

/**
 * "Conflicting Lock Modes", PostgreSQL manual 13.3.1 (Table 13.2), written out by hand: for each
 * requested mode, the held modes it conflicts with.
 */
const TABLE_CONFLICTS: Record<TableLockMode, TableLockMode[]> = {
  accessShare: ['accessExclusive'],
  rowShare: ['exclusive', 'accessExclusive'],
  rowExclusive: ['share', 'shareRowExclusive', 'exclusive', 'accessExclusive'],
  shareUpdateExclusive: ['shareUpdateExclusive', 'share', 'shareRowExclusive', 'exclusive', 'accessExclusive'],
  share: ['rowExclusive', 'shareUpdateExclusive', 'shareRowExclusive', 'exclusive', 'accessExclusive'],
  shareRowExclusive: ['rowExclusive', 'shareUpdateExclusive', 'share', 'shareRowExclusive', 'exclusive', 'accessExclusive'],
  exclusive: ['rowShare', 'rowExclusive', 'shareUpdateExclusive', 'share', 'shareRowExclusive', 'exclusive', 'accessExclusive'],
  accessExclusive: ['accessShare', 'rowShare', 'rowExclusive', 'shareUpdateExclusive', 'share', 'shareRowExclusive', 'exclusive', 'accessExclusive'],
};

const pgMode = (mode: TableLockMode): string => `${TABLE_LOCK_MODES[mode].split(' ').map((w) => w[0] + w.slice(1).toLowerCase()).join('')}Lock`;

describe.each(['prisma', 'drizzle', 'pg'] as const)('model() through %s', (driverName) => {
  let driver: RowDriver;
  let other: pg.Client;
  let checker: pg.Client;
  beforeAll(async () => {
    driver = rowDriver(driverName, db);
    other = await db.client();
    checker = await db.client();
  });

  test('the 8 × 8 table lock modes conflict exactly as PostgreSQL documents', async () => {
    const seen: string[] = [];
    const expected: string[] = [];
    for (const held of MODES) {
      await other.query('BEGIN');
      await other.query(`LOCK TABLE accounts IN ${TABLE_LOCK_MODES[held]} MODE`);
      try {
        await driver.transaction(async (tx) => {
          for (const requested of MODES) {
            const outcome = await tx.lockTables(['accounts'], { mode: requested, nowait: true }).then(
              () => 'granted',
              (error: unknown) => (error instanceof LockNotAvailableError ? 'busy' : `error ${String(error)}`),
            );
            seen.push(`${requested} vs held ${held}: ${outcome}`);
            expected.push(`${requested} vs held ${held}: ${TABLE_CONFLICTS[requested].includes(held) ? 'busy' : 'granted'}`);
          }
        });
      } finally {
        await other.query('COMMIT');
      }
    }
    expect(seen).toEqual(expected);
  });

  test('the lock is taken in the requested mode and held until the transaction ends; default accessExclusive', async () => {
    const modesHeld = async (pid: number): Promise<string[]> =>
      (
        await db.query<{ mode: string }>(
          `SELECT mode FROM pg_locks WHERE pid = $1 AND locktype = 'relation' AND relation = 'accounts'::regclass ORDER BY mode`,
          [pid],
        )
      ).map((row) => row.mode);
    let pid = 0;
    await driver.transaction(async (tx) => {
      pid = Number((await tx.query<{ pid: number }>('SELECT pg_backend_pid() AS pid'))[0]?.pid);
      await tx.lockTables(['accounts'], { mode: 'shareRowExclusive' });
      expect(await modesHeld(pid)).toEqual([pgMode('shareRowExclusive')]);
      await tx.lockTables(['accounts']);
      expect(await modesHeld(pid)).toContain('AccessExclusiveLock');
    });
    expect(await modesHeld(pid)).toEqual([]);
  });

  test('a wait blocks until the holder commits', async () => {
    await other.query('BEGIN');
    await other.query('LOCK TABLE jobs IN ROW EXCLUSIVE MODE');
    await driver.transaction(async (tx) => {
      const pid = Number((await tx.query<{ pid: number }>('SELECT pg_backend_pid() AS pid'))[0]?.pid);
      const waiting = track(tx.lockTables(['jobs'], { mode: 'share' }));
      await untilWaitingOnLock(checker, pid);
      expect(waiting.settled).toBe(false);
      await other.query('COMMIT');
      await waiting.promise;
    });
  });

  test('timeout fails with LockTimeoutError, restores lock_timeout, and leaves the transaction usable', async () => {
    await other.query('BEGIN');
    await other.query('LOCK TABLE accounts IN ACCESS SHARE MODE');
    try {
      await driver.transaction(async (tx) => {
        await tx.query(`SELECT set_config('lock_timeout', '9s', true)`);
        const error = await tx.lockTables(['accounts'], { timeout: 150 }).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(LockTimeoutError);
        expect(await tx.query('SHOW lock_timeout')).toEqual([{ lock_timeout: '9s' }]);
        await tx.lockTables(['accounts'], { mode: 'rowExclusive', timeout: '1s' });
        expect(await tx.query('SHOW lock_timeout')).toEqual([{ lock_timeout: '9s' }]);
        expect(await tx.query('SELECT 1 AS one')).toEqual([{ one: 1 }]);
      });
    } finally {
      await other.query('COMMIT');
    }
  });

  test('several tables are locked together', async () => {
    await driver.transaction(async (tx) => {
      await tx.lockTables(['jobs', 'accounts', 'jobs'], { mode: 'exclusive' });
      const rows = await tx.query<{ t: string }>(
        `SELECT relation::regclass::text AS t FROM pg_locks WHERE pid = pg_backend_pid() AND locktype = 'relation' AND mode = 'ExclusiveLock' ORDER BY 1`,
      );
      expect(rows.map((row) => row.t)).toEqual(['accounts', 'jobs']);
    });
  });
});

describe('table lock plan', () => {
  test('tables are deduplicated and sorted by schema and name, so every caller locks them in the same order', () => {
    const plan = planTableLock([{ name: 'jobs' }, { schema: 'b', name: 'a' }, { name: 'accounts' }, { name: 'jobs' }], { mode: 'share', nowait: true });
    expect(buildTableLock(plan)).toBe('LOCK TABLE "accounts", "jobs", "b"."a" IN SHARE MODE NOWAIT');
  });

  test('bad options are refused', () => {
    expect(() => planTableLock([{ name: 'a' }], { mode: 'ACCESS EXCLUSIVE' })).toThrow(InvalidLockArgumentError);
    expect(() => planTableLock([{ name: 'a' }], { nowait: true, timeout: 5 })).toThrow(InvalidLockArgumentError);
    expect(() => planTableLock([{ name: 'a' }], { wait: false })).toThrow(InvalidLockArgumentError);
    expect(() => planTableLock([], {})).toThrow(InvalidLockArgumentError);
  });
});
