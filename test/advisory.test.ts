import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  DeadlockError,
  InvalidLockArgumentError,
  LockAbortedError,
  LockNotAvailableError,
  LockTimeoutError,
  NotInTransactionError,
  hashKey,
} from '../src/index.js';
import { type AdvisoryDriver, drizzleDriver, pgDriver, prismaDriver } from './helpers/advisory-drivers.js';
import { useTestDatabase } from './helpers/database.js';

const db = useTestDatabase();

/** Advisory locks PostgreSQL reports for one string key, from any session. */
async function locksOn(key: string): Promise<{ pid: number; mode: string; granted: boolean }[]> {
  // pg_locks shows a bigint key as two unsigned 32-bit halves.
  const value = BigInt.asUintN(64, hashKey(key));
  return db.query(
    `SELECT pid, mode, granted FROM pg_locks
      WHERE locktype = 'advisory' AND objsubid = 1 AND classid = $1::oid AND objid = $2::oid
        AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
    [(value >> 32n).toString(), (value & 0xffffffffn).toString()],
  );
}

/** Resolves once some session waits for the key. */
async function untilWaiting(key: string): Promise<void> {
  for (let i = 0; i < 500; i += 1) {
    if ((await locksOn(key)).some((lock) => !lock.granted)) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`nobody started waiting for ${key}`);
}

const KEY_SQL = `('x' || left(encode(sha256(convert_to($1, 'UTF8')), 'hex'), 16))::bit(64)::bigint`;

describe.each(['prisma', 'drizzle', 'pg'] as const)('advisory locks through %s', (driverName) => {
  let driver: AdvisoryDriver;
  let other: pg.Client;

  beforeAll(async () => {
    driver = driverName === 'prisma' ? prismaDriver(db) : driverName === 'drizzle' ? drizzleDriver(db) : pgDriver(db);
    other = await db.client();
  });
  afterAll(async () => driver.close());

  const holdInOtherSession = async (key: string, shared = false): Promise<{ release(): Promise<void> }> => {
    await other.query('BEGIN');
    await other.query(`SELECT pg_advisory_xact_lock${shared ? '_shared' : ''}(${KEY_SQL})`, [key]);
    return { release: async () => void (await other.query('COMMIT')) };
  };

  test('an exclusive lock excludes another session until commit, then is gone', async () => {
    const key = `${driverName}:exclusive`;
    await driver.transaction(async (tx) => {
      expect(await tx.advisory(key)).toBe(true);
      expect(await other.query(`SELECT pg_try_advisory_lock(${KEY_SQL}) AS ok`, [key])).toMatchObject({ rows: [{ ok: false }] });
      expect(await locksOn(key)).toEqual([expect.objectContaining({ mode: 'ExclusiveLock', granted: true })]);
    });
    expect(await locksOn(key)).toEqual([]);
  });

  test('the lock is released by a rollback, and fn errors roll back', async () => {
    const key = `${driverName}:rollback`;
    await expect(
      driver.root(key, async () => {
        expect(await locksOn(key)).toHaveLength(1);
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    expect(await locksOn(key)).toEqual([]);
  });

  test('shared admits shared and excludes exclusive', async () => {
    const key = `${driverName}:shared`;
    const holder = await holdInOtherSession(key, true);
    try {
      await driver.transaction(async (tx) => {
        expect(await tx.advisory(key, { mode: 'shared', wait: false })).toBe(true);
      });
      await driver.transaction(async (tx) => {
        expect(await tx.advisory(key, { wait: false })).toBe(false);
      });
    } finally {
      await holder.release();
    }
  });

  test('the try form returns false while another session holds the key, and true after', async () => {
    const key = `${driverName}:try`;
    const holder = await holdInOtherSession(key);
    await driver.transaction(async (tx) => {
      expect(await tx.advisory(key, { wait: false })).toBe(false);
      await expect(tx.advisory(key, { wait: false, onBusy: 'throw' })).rejects.toBeInstanceOf(LockNotAvailableError);
    });
    await holder.release();
    await driver.transaction(async (tx) => {
      expect(await tx.advisory(key, { wait: false })).toBe(true);
    });
  });

  test('a timeout fails with LockTimeoutError and leaves the transaction usable, lock_timeout restored', async () => {
    const key = `${driverName}:timeout`;
    const holder = await holdInOtherSession(key);
    try {
      await driver.transaction(async (tx) => {
        await tx.query(`SELECT set_config('lock_timeout', '7s', true)`);
        const error = await tx.advisory(key, { timeout: '150ms' }).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(LockTimeoutError);
        expect((error as LockTimeoutError).timeoutMs).toBe(150);
        expect(await tx.query(`SELECT current_setting('lock_timeout') AS v`)).toEqual([{ v: '7s' }]);
        expect(await tx.advisory(key, { timeout: 100, onBusy: 'return' })).toBe(false);
      });
    } finally {
      await holder.release();
    }
    await driver.transaction(async (tx) => {
      expect(await tx.advisory(key, { timeout: '1s' })).toBe(true);
      expect(await tx.query(`SELECT current_setting('lock_timeout') AS v`)).toEqual([{ v: '0' }]);
    });
  });

  test('an AbortSignal cancels the wait on the server and keeps the transaction usable', async () => {
    const key = `${driverName}:abort`;
    const holder = await holdInOtherSession(key);
    const controller = new AbortController();
    try {
      await driver.transaction(async (tx) => {
        const waiting = tx.advisory(key, { signal: controller.signal }).catch((e: unknown) => e);
        await untilWaiting(key);
        controller.abort();
        expect(await waiting).toBeInstanceOf(LockAbortedError);
        expect((await locksOn(key)).filter((lock) => !lock.granted)).toEqual([]);
        expect(await tx.query('SELECT 1 AS one')).toEqual([{ one: 1 }]);
      });
    } finally {
      await holder.release();
    }
    await expect(driver.root(key, async () => 'never', { signal: AbortSignal.abort() })).rejects.toBeInstanceOf(LockAbortedError);
  });

  test('onBusy: skip does not run fn, return reports it, throw throws', async () => {
    const key = `${driverName}:onbusy`;
    const holder = await holdInOtherSession(key);
    let ran = 0;
    try {
      const work = async () => ++ran;
      expect(await driver.root(key, work, { wait: false, onBusy: 'skip' })).toBeUndefined();
      expect(await driver.root(key, work, { wait: false, onBusy: 'return' })).toEqual({ acquired: false });
      await expect(driver.root(key, work, { wait: false })).rejects.toBeInstanceOf(LockNotAvailableError);
      await expect(driver.root(key, work, { timeout: 50 })).rejects.toBeInstanceOf(LockTimeoutError);
      expect(ran).toBe(0);
    } finally {
      await holder.release();
    }
    expect(await driver.root(key, work2, { wait: false, onBusy: 'return' })).toEqual({ acquired: true, value: 'done' });
    async function work2(): Promise<string> {
      return 'done';
    }
  });

  test('the function form holds the lock while fn runs and returns its result', async () => {
    const key = `${driverName}:run`;
    const result = await driver.root(key, async () => {
      const [lock] = await locksOn(key);
      return lock?.granted;
    });
    expect(result).toBe(true);
    expect(await locksOn(key)).toEqual([]);
  });

  test('the transaction form outside a transaction is NotInTransactionError, not a silent no-op', async () => {
    await expect(driver.root(`${driverName}:no-tx`)).rejects.toBeInstanceOf(NotInTransactionError);
  });

  test('several keys in opposite orders from two sessions never deadlock', async () => {
    const keys = ['multi:a', 'multi:b', 'multi:c'].map((k) => `${driverName}:${k}`);
    const reversed = [...keys].reverse();
    let inside = 0;
    let overlap = false;
    const worker = async (order: string[]) => {
      for (let i = 0; i < 25; i += 1) {
        await driver.root(order, async () => {
          inside += 1;
          if (inside > 1) overlap = true;
          await new Promise((resolve) => setTimeout(resolve, 1));
          inside -= 1;
        });
      }
    };
    await Promise.all([worker(keys), worker(reversed), worker(keys), worker(reversed)]);
    expect(overlap).toBe(false);
  });

  test('a try on several keys is all or nothing', async () => {
    const [a, b] = [`${driverName}:all:a`, `${driverName}:all:b`];
    const holder = await holdInOtherSession(b);
    try {
      await driver.transaction(async (tx) => {
        expect(await tx.advisory([a, b], { wait: false })).toBe(false);
        expect((await locksOn(a)).length).toBe(0);
        expect(await tx.query('SELECT 1 AS one')).toEqual([{ one: 1 }]);
      });
    } finally {
      await holder.release();
    }
  });

  test('a deadlock between single-key locks surfaces as DeadlockError', async () => {
    const [a, b] = [`${driverName}:dl:a`, `${driverName}:dl:b`];
    await other.query('BEGIN');
    await other.query(`SELECT pg_advisory_xact_lock(${KEY_SQL})`, [b]);
    const outcome = driver
      .transaction(async (tx) => {
        await tx.advisory(a);
        await tx.advisory(b);
      })
      .then(
        () => 'ok',
        (e: unknown) => e,
      );
    await untilWaiting(b);
    // Closing the cycle: one of the two is chosen as the victim after deadlock_timeout (1 s).
    const otherOutcome = await other.query(`SELECT pg_advisory_xact_lock(${KEY_SQL})`, [a]).then(
      () => 'ok',
      (e: unknown) => e,
    );
    await other.query(otherOutcome === 'ok' ? 'COMMIT' : 'ROLLBACK');
    const mine = await outcome;
    expect([mine, otherOutcome].filter((o) => o === 'ok')).toHaveLength(1);
    if (mine !== 'ok') expect(mine).toBeInstanceOf(DeadlockError);
  });

  test('bad keys and options are rejected before any SQL is sent', async () => {
    const bad: [unknown, unknown][] = [
      ['', undefined],
      [1.5, undefined],
      [Number.NaN, undefined],
      [2 ** 53, undefined],
      [2n ** 63n, undefined],
      [[1, 2 ** 31], undefined],
      [{}, undefined],
      [null, undefined],
      [[], undefined],
      ['\uD800', undefined],
      ['k', { timeout: -1 }],
      ['k', { timeout: Number.POSITIVE_INFINITY }],
      ['k', { timeout: '5 parsecs' }],
      ['k', { wait: false, timeout: 10 }],
      ['k', { mode: 'sometimes' }],
      ['k', { onBusy: 'explode' }],
      ['k', { tmeout: 10 }],
      ['k', { signal: 'stop' }],
    ];
    await driver.transaction(async (tx) => {
      for (const [key, options] of bad) {
        await expect(tx.advisory(key as string, options as object), `key ${String(key)} ${JSON.stringify(options)}`).rejects.toBeInstanceOf(
          InvalidLockArgumentError,
        );
      }
      expect(await tx.query(`SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()`)).toEqual([{ n: 0 }]);
    });
  });
});

test('invalid input never reaches the server: not one statement is sent', async () => {
  const { $lock } = await import('../src/pg/index.js');
  const client = await db.client();
  const sent: string[] = [];
  const counting = new Proxy(client, {
    get: (target, property) =>
      property === 'query'
        ? (text: string, params?: unknown[]) => {
            sent.push(text);
            return target.query(text, params);
          }
        : Reflect.get(target, property),
  });
  await counting.query('BEGIN');
  sent.length = 0;
  const calls: (() => Promise<unknown>)[] = [
    () => $lock(counting).advisory(''),
    () => $lock(counting).advisory('k', { timeout: '-5s' }),
    () => $lock(counting).advisory(['a', 7.5]),
    () => $lock(counting).advisory('k', { scope: 'session', mode: 'weird' } as never),
    () => $lock(counting).advisory('k', 'not a function' as never, {}),
  ];
  for (const call of calls) await expect(call()).rejects.toBeInstanceOf(InvalidLockArgumentError);
  expect(sent).toEqual([]);
  await counting.query('ROLLBACK');
});

test('the same string key is the same lock from Prisma, Drizzle and pg, and matches the SQL twin', async () => {
  const [prisma, drizzle, pgd] = [prismaDriver(db), drizzleDriver(db), pgDriver(db)];
  const key = 'shared:key:ü';
  expect(await db.query(`SELECT ${KEY_SQL}::text AS twin`, [key])).toEqual([{ twin: hashKey(key).toString() }]);
  await prisma.transaction(async (tx) => {
    expect(await tx.advisory(key)).toBe(true);
    await drizzle.transaction(async (dtx) => expect(await dtx.advisory(key, { wait: false })).toBe(false));
    await pgd.transaction(async (ptx) => expect(await ptx.advisory(key, { wait: false })).toBe(false));
  });
  await drizzle.transaction(async (tx) => {
    expect(await tx.advisory(key)).toBe(true);
    await prisma.transaction(async (ptx) => expect(await ptx.advisory(key, { wait: false })).toBe(false));
  });
  await prisma.close();
});

test('a Prisma wait with no timeout of its own fails with LockTimeoutError before the interactive transaction expires', async () => {
  const { lockExtension } = await import('../src/prisma/index.js');
  const prisma = db.prisma().$extends(lockExtension());
  const other = await db.client();
  await other.query('BEGIN');
  await other.query(`SELECT pg_advisory_xact_lock(${KEY_SQL})`, ['prisma:deadline']);
  try {
    const error = await prisma
      .$transaction(async (tx) => tx.$lock.advisory('prisma:deadline'), { timeout: 600 })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LockTimeoutError);
    expect((error as Error).message).toMatch(/transaction was about to time out/);
  } finally {
    await other.query('COMMIT');
    await prisma.$disconnect();
  }
});
