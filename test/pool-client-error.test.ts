/**
 * `$lock(pool).advisory(key, fn)` holds a pooled client while `fn` runs. node-postgres gives a
 * checked-out client no 'error' listener, so a backend terminated while `fn` awaits between two
 * statements (pg_terminate_backend, `prioritize` from another process, a server restart) used to
 * be an unhandled 'error' event that ended the whole process. It must reject the call instead.
 * (Found by the chaos run, `npm run test:chaos`.)
 */
import { fileURLToPath } from 'node:url';
import { sql } from 'drizzle-orm';
import { describe, expect, test } from 'vitest';
import { $lock } from '../src/drizzle/index.js';
import { useTestDatabase } from './helpers/database.js';
import { spawnNode } from './helpers/spawn-node.js';
import { testVariant } from './helpers/test-variant.js';

const db = useTestDatabase();

test('a terminated backend under the function form rejects the call and the process lives on', async () => {
  await using child = spawnNode(fileURLToPath(new URL('./helpers/fixtures/terminated-holder.ts', import.meta.url)), [db.url]);
  const pid = Number((await child.waitForLine(/^holding \d+$/)).split(' ')[1]);
  expect(await db.query('SELECT pg_terminate_backend($1) AS ok', [pid])).toEqual([{ ok: true }]);
  await child.waitForLine('alive');
  // The next statement fails (the client is no longer queryable), and so does the call.
  expect(child.lines.filter((line) => line.startsWith('rejected '))).toHaveLength(1);
  expect(child.lines).not.toContain('rejected none');
  expect(await child.exited).toEqual({ code: 0, signal: null });
});

// On postgres.js (ORMLOCK_TEST_DRIZZLE=postgres-js) Drizzle's pool is not node-postgres', and these
// node-postgres settings (connectionTimeoutMillis, query_timeout) do not exist.
describe.skipIf(testVariant().drizzle === 'postgres-js')('Drizzle on a node-postgres pool', () => {
  // Drizzle's own db.transaction() on a node-postgres pool checks a client out and sends BEGIN
  // before its try/finally: when BEGIN fails (the connection died while the client sat idle in the
  // pool: a restart, a failover, a terminated backend), that client is never given back, and the
  // pool stays one connection short for good. With `max: 1` the next call waited forever.
  // (Found by the chaos run: a worker whose pool had leaked every slot stalled.)
  test('a connection lost before BEGIN does not cost the pool a client', async () => {
    const orm = db.drizzle({ max: 1, connectionTimeoutMillis: 3_000 });
    const pool = orm.$client;
    // The next checkout hands out a client whose socket has just closed, as after a restart.
    let armed = true;
    pool.on('acquire', (client) => {
      if (!armed) return;
      armed = false;
      (client as unknown as { connection: { stream: { destroy(): void } } }).connection.stream.destroy();
    });
    await expect($lock(orm).advisory('pool-leak', async () => 'ran')).rejects.toThrow();
    expect(armed).toBe(false);
    // The pool has its one slot back: the next call gets a new connection and runs.
    await expect($lock(orm).advisory('pool-leak', async (tx) => (await tx.execute(sql`SELECT 1 AS one`)).rows)).resolves.toEqual([{ one: 1 }]);
    expect(pool.totalCount).toBe(1);
  });

  test('a transaction left unfinished is not handed to the next checkout, and fn\'s own error is what the caller gets', async () => {
    const orm = db.drizzle({ max: 1 });
    const pool = orm.$client;
    const backends: number[] = [];
    const pidOf = async (tx: { execute: typeof orm.execute }) => Number((await tx.execute(sql`SELECT pg_backend_pid() AS pid`)).rows[0]!['pid']);
    // fn fails, and the connection is gone before Drizzle's ROLLBACK: the caller sees fn's error.
    const failure = new Error('the work failed');
    const outcome = $lock(orm).advisory('unfinished', async (tx) => {
      backends.push(await pidOf(tx));
      (tx as unknown as { session: { client: { connection: { stream: { destroy(): void } } } } }).session.client.connection.stream.destroy();
      throw failure;
    });
    await expect(outcome).rejects.toBe(failure);
    // A clean run reuses its connection; the dead one was dropped.
    await $lock(orm).advisory('unfinished', async (tx) => void backends.push(await pidOf(tx)));
    await $lock(orm).advisory('unfinished', async (tx) => void backends.push(await pidOf(tx)));
    expect(backends[1]).not.toBe(backends[0]);
    expect(backends[2]).toBe(backends[1]);
    expect(pool.totalCount).toBe(1);
  });

  test('a connection still inside its transaction after a client-side timeout is not reused', async () => {
    // query_timeout gives up on a statement on the client only: the server goes on running it, and
    // Drizzle's ROLLBACK (timed out in turn) leaves the connection inside the transaction.
    const orm = db.drizzle({ max: 1, query_timeout: 300 });
    const pidOf = async (tx: { execute: typeof orm.execute }) => Number((await tx.execute(sql`SELECT pg_backend_pid() AS pid`)).rows[0]!['pid']);
    let first = 0;
    const outcome = $lock(orm).advisory('timed-out', async (tx) => {
      first = await pidOf(tx);
      await tx.execute(sql`SELECT pg_sleep(1)`);
    });
    await expect(outcome).rejects.toMatchObject({ cause: { message: expect.stringMatching(/timeout/i) } });
    // (Another key: the old backend holds the first one until its sleep ends and it sees the socket closed.)
    const [row] = await $lock(orm).advisory('after-timeout', async (tx) => (await tx.execute(sql`SELECT pg_backend_pid() AS pid`)).rows);
    expect(row!['pid']).not.toBe(first);
  });
});
