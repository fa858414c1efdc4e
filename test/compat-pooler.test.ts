/**
 * Session locks and poolers. A transaction-mode pooler (pgbouncer `pool_mode = transaction`) gives
 * each transaction, and each statement outside one, to any server backend: a session advisory
 * lock then stays with a backend that other clients use next. ormlock refuses session locks on a
 * connection declared `pooling: 'transaction'`, and otherwise notices at release that the backend
 * changed. The first tests run in every variant (with a hand-made "pooler" that alternates two
 * real connections); the last ones only when the run goes through pgbouncer in transaction mode.
 */
import { describe, expect, test } from 'vitest';
import { LockReleaseError, SessionLockUnsupportedError } from '../src/index.js';
import { leaseHostOf } from '../src/core/lease-host.js';
import { leaseTableNames } from '../src/core/lease-schema.js';
import { $lock, ensureLeaseTable } from '../src/pg/index.js';
import { type TestDatabase, useTestDatabase } from './helpers/database.js';
import { transactionPooling } from './helpers/pooler.js';

const db = useTestDatabase();

type Client = Awaited<ReturnType<TestDatabase['client']>>;

const pidOf = async (client: Client): Promise<number> => Number((await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]?.pid);

const holders = async (): Promise<number[]> =>
  (await db.query<{ pid: number }>(`SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) ORDER BY pid`)).map(
    (row) => row.pid,
  );

/**
 * What a transaction-mode pooler does to a client, made by hand: every statement outside a
 * transaction goes to the next of two real connections.
 */
function alternatingClient(a: Client, b: Client): Pick<Client, 'query' | 'getTransactionStatus'> {
  let turn = 0;
  return {
    query: ((text: string, values?: unknown[]) => ((turn++ % 2 === 0 ? a : b) as Client).query(text, values)) as Client['query'],
    getTransactionStatus: () => 'I',
  };
}

describe('in every variant', () => {
  test("pooling: 'transaction' refuses session locks before any SQL, and keeps transaction-scoped locks", async () => {
    const client = await db.client();
    const sent: string[] = [];
    const spy = {
      query: ((text: string, values?: unknown[]) => (sent.push(text), client.query(text, values))) as Client['query'],
      getTransactionStatus: () => client.getTransactionStatus(),
    };
    const locks = $lock(spy, { pooling: 'transaction' });
    const refused = locks.advisory('report', { scope: 'session' });
    await expect(refused).rejects.toBeInstanceOf(SessionLockUnsupportedError);
    await expect(refused).rejects.toMatchObject({ code: 'SESSION_LOCK_UNSUPPORTED', message: expect.stringMatching(/transaction-mode pooler/) });
    expect(sent).toEqual([]);

    const pid = await locks.advisory('report', async () => {
      const [row] = (await spy.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows;
      expect(await holders()).toEqual([row?.pid]);
      return row?.pid;
    });
    expect(pid).toBeGreaterThan(0);
    expect(await holders()).toEqual([]);
  });

  test('a release on another backend than the acquire throws LockReleaseError naming transaction pooling', async () => {
    const [a, b] = [await db.client(), await db.client()];
    const [pidA, pidB] = [await pidOf(a), await pidOf(b)];
    // Under a real transaction pooler a and b could share a backend; the hand-made one needs two.
    if (pidA === pidB) return;
    const lock = await $lock(alternatingClient(a, b)).advisory('stranded', { scope: 'session' });
    expect(lock?.backendPid).toBe(pidA);
    expect(await holders()).toEqual([pidA]);
    const error = await lock!.release().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(LockReleaseError);
    expect(error).toMatchObject({ reason: 'backend-changed', backends: { acquired: pidA, released: pidB } });
    expect((error as Error).message).toMatch(/transaction-mode pooler/);
    // The lock is still with the first backend: stranded, and reported rather than lost silently.
    expect(await holders()).toEqual([pidA]);
    await a.query('SELECT pg_advisory_unlock_all()');
  });

  test('a lock released where it was taken reports the same backend and no error', async () => {
    const client = await db.client();
    await client.query('BEGIN');
    const lock = await $lock(client).advisory('same-backend', { scope: 'session' });
    expect(lock?.backendPid).toBe(await pidOf(client));
    await lock!.release();
    await client.query('COMMIT');
    expect(await holders()).toEqual([]);
  });
});

describe.runIf(transactionPooling())('through pgbouncer in transaction mode', () => {
  test('statements of one client outside a transaction really run on different backends', async () => {
    const client = await db.client();
    const first = await pidOf(client);
    // Keep that backend busy in a transaction of another client: the next statement must go elsewhere.
    const squatter = await takeBackend(first);
    try {
      expect(await pidOf(client)).not.toBe(first);
    } finally {
      await squatter.query('ROLLBACK');
    }
  });

  test('a session lock taken without pooling: "transaction" is detected as stranded at release', async () => {
    const client = await db.client();
    const lock = await $lock(client).advisory('nightly', { scope: 'session' });
    const acquired = lock!.backendPid!;
    expect(await holders()).toEqual([acquired]);
    const squatter = await takeBackend(acquired);
    try {
      const error = await lock!.release().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(LockReleaseError);
      expect(error).toMatchObject({ reason: 'backend-changed', backends: { acquired } });
      expect((error as Error).message).toMatch(/transaction-mode pooler/);
      // Still held by the backend the squatter now uses: give it back from there.
      expect(await holders()).toEqual([acquired]);
      await squatter.query('SELECT pg_advisory_unlock_all()');
    } finally {
      await squatter.query('COMMIT');
    }
    expect(await holders()).toEqual([]);
  });

  test('leases on a pool not declared pooling: "transaction" fall back from named statements to unnamed ones, and every call succeeds', async () => {
    const pool = db.pool({ max: 1 });
    await ensureLeaseTable(pool);
    try {
      // Not declared: ormlock sends its lease statements by name, and pgbouncer (before 1.21, or
      // without max_prepared_statements) runs the next use of a name on whichever backend is free.
      const locks = $lock(pool);
      await (await locks.lease('pooled:named', { ttl: '10s' })).release();
      const first = Number((await pool.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]?.pid);
      const squatter = await takeBackend(first);
      try {
        for (let i = 0; i < 10; i++) {
          const lease = await locks.lease('pooled:named', { ttl: '10s' });
          expect(lease.state).toBe('held');
          await lease.release();
        }
      } finally {
        await squatter.query('ROLLBACK');
      }
      expect(await locks.getLease('pooled:named')).toBeNull();
    } finally {
      await pool.end();
    }
  });

  test('transaction-scoped locks serialize work through the pooler', async () => {
    const pools = [db.pool({ max: 3 }), db.pool({ max: 3 })];
    await db.query('CREATE TABLE compat_counter (n int NOT NULL)');
    await db.query('INSERT INTO compat_counter VALUES (0)');
    await Promise.all(
      Array.from({ length: 12 }, (_, i) =>
        $lock(pools[i % 2]!).advisory('counter', async (client) => {
          const { rows } = await client.query<{ n: number }>('SELECT n FROM compat_counter');
          await new Promise((resolve) => setTimeout(resolve, 5));
          await client.query('UPDATE compat_counter SET n = $1', [Number(rows[0]?.n) + 1]);
        }),
      ),
    );
    expect(await db.query('SELECT n FROM compat_counter')).toEqual([{ n: 12 }]);
  });
});

describe('lease waiters and poolers, in every variant', () => {
  test('lease waiters trust LISTEN only once it hears its own probe NOTIFY: yes on a real session, no through a transaction-mode pooler', async () => {
    const pool = db.pool({ max: 2 });
    await ensureLeaseTable(pool);
    try {
      // Not declared pooling: 'transaction', as a user who forgot would write it.
      const locks = $lock(pool);
      expect(await locks.getLease('probe:none')).toBeNull();
      const host = leaseHostOf(pool, leaseTableNames(), () => {
        throw new Error('the lease host of this pool exists already');
      });
      const stop = await host.startWaiting();
      try {
        // Behind pgbouncer in transaction mode, LISTEN runs on a backend the pooler gives to others
        // next, and the probe is never delivered: waiters then poll instead of sleeping through handoffs.
        const expected = db.pooler !== 'transaction';
        expect(await host.listenHealth()).toBe(expected);
        expect(host.listening).toBe(expected);
      } finally {
        stop();
      }
    } finally {
      await pool.end();
    }
  });
});

/**
 * A client of its own in an open transaction on server backend `pid`: opens clients (through the
 * pooler) until one lands there. pgbouncer hands out the most recently used idle backend first, so
 * this takes one or two tries.
 */
async function takeBackend(pid: number): Promise<Client> {
  const tried: Client[] = [];
  try {
    for (let i = 0; i < 20; i++) {
      const client = await db.client();
      await client.query('BEGIN');
      if ((await pidOf(client)) === pid) return client;
      tried.push(client);
    }
    throw new Error(`no pooled client landed on backend ${pid}`);
  } finally {
    await Promise.all(tried.map((client) => client.query('ROLLBACK')));
  }
}
