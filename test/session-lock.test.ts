import { expect, test } from 'vitest';
import { InvalidLockArgumentError, LockNotAvailableError, LockReleaseError, NotInTransactionError } from '../src/index.js';
import { $lock } from '../src/pg/index.js';
import { useTestDatabase } from './helpers/database.js';
import { sessionBoundTest } from './helpers/pooler.js';

const db = useTestDatabase();

/**
 * The server backend of a client, asked from the server: `client.processID` is a proxy's cancel
 * key when the run goes through pgbouncer.
 */
const pidOf = async (client: { query(text: string): Promise<{ rows: { pid?: number }[] }> }): Promise<number> =>
  Number((await client.query('SELECT pg_backend_pid() AS pid')).rows[0]?.pid);

const heldBy = async (pid: number) =>
  (await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND pid = $1 AND granted`, [pid]))[0]?.n;

sessionBoundTest('a session lock outlives transactions on its client until released, and excludes other sessions', async () => {
  const [a, b] = [await db.client(), await db.client()];
  const lock = await $lock(a).advisory('report', { scope: 'session' });
  expect(lock).not.toBeNull();
  await a.query('BEGIN');
  await a.query('COMMIT');
  expect(await heldBy(await pidOf(a))).toBe(1);
  expect(await $lock(b).advisory('report', { scope: 'session', wait: false })).toBeNull();
  await expect($lock(b).advisory('report', { scope: 'session', wait: false, onBusy: 'throw' })).rejects.toBeInstanceOf(LockNotAvailableError);
  await lock!.release();
  await lock!.release();
  expect(await heldBy(await pidOf(a))).toBe(0);
  const again = await $lock(b).advisory('report', { scope: 'session', wait: false });
  await again!.release();
});

sessionBoundTest('await using releases the lock at the end of the scope', async () => {
  const a = await db.client();
  {
    await using lock = await $lock(a).advisory(['batch', 'import'], { scope: 'session' });
    expect(lock?.released).toBe(false);
    expect(await heldBy(await pidOf(a))).toBe(2);
  }
  expect(await heldBy(await pidOf(a))).toBe(0);
});

sessionBoundTest('release() throws LockReleaseError when PostgreSQL no longer held the lock', async () => {
  const a = await db.client();
  const lock = await $lock(a).advisory('lost', { scope: 'session' });
  await a.query('SELECT pg_advisory_unlock_all()');
  await expect(lock!.release()).rejects.toBeInstanceOf(LockReleaseError);
});

sessionBoundTest('a session try on several keys gives back the ones it got when one is busy', async () => {
  const [a, b] = [await db.client(), await db.client()];
  const held = await $lock(b).advisory('k2', { scope: 'session' });
  expect(await $lock(a).advisory(['k1', 'k2', 'k3'], { scope: 'session', wait: false })).toBeNull();
  expect(await heldBy(await pidOf(a))).toBe(0);
  await held!.release();
});

test('session locks are refused on a pool; transaction locks need a transaction on a bare client', async () => {
  const pool = db.pool();
  await expect($lock(pool).advisory('x', { scope: 'session' })).rejects.toBeInstanceOf(InvalidLockArgumentError);
  const client = await db.client();
  await expect($lock(client).advisory('x')).rejects.toBeInstanceOf(NotInTransactionError);
  await client.query('BEGIN');
  expect(await $lock(client).advisory('x')).toBe(true);
  const pid = await pidOf(client);
  expect(await heldBy(pid)).toBe(1);
  await client.query('ROLLBACK');
  expect(await heldBy(pid)).toBe(0);
  expect(await $lock(client).advisory('x', async (c) => heldBy(await pidOf(c)))).toBe(1);
});
