/**
 * `$lock(x)` is called per request and often per statement, so its object is cached per target and
 * option values and its methods are built on first use. What users rely on: the same calls work
 * whether the object is fresh or cached, methods work when taken off the object, and options that
 * differ are never mixed up (a side channel for cancelling belongs to the `$lock` it was given to).
 */
import { expect, test } from 'vitest';
import { LockAbortedError, NotInTransactionError } from '../src/index.js';
import { $lock as drizzleLock } from '../src/drizzle/index.js';
import { $lock } from '../src/pg/index.js';
import { useTestDatabase } from './helpers/database.js';

const db = useTestDatabase();

const heldKeys = async (pid: number) =>
  (await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND pid = $1 AND granted`, [pid]))[0]?.n;

test('methods taken off a $lock object work, on a pool and on a client in and out of a transaction', async () => {
  const pool = db.pool();
  const { advisory: onPool } = $lock(pool);
  expect(await onPool('lock-object:pool', async (client) => heldKeys(Number((await client.query('SELECT pg_backend_pid() AS pid')).rows[0].pid)))).toBe(1);

  const client = await db.client();
  const { advisory } = $lock(client);
  // Out of a transaction the same (cached) object refuses a transaction-scoped lock …
  await expect(advisory('lock-object:client')).rejects.toBeInstanceOf(NotInTransactionError);
  // … and inside one, it takes it: the binding is read at each call, not when the object was made.
  await client.query('BEGIN');
  expect(await advisory('lock-object:client')).toBe(true);
  const pid = Number((await client.query('SELECT pg_backend_pid() AS pid')).rows[0].pid);
  expect(await heldKeys(pid)).toBe(1);
  await client.query('COMMIT');
  expect(await heldKeys(pid)).toBe(0);
});

test('the same target and options give the same object; other options give their own', async () => {
  const pool = db.pool();
  const other = db.pool();
  const client = await db.client();
  expect($lock(client)).toBe($lock(client));
  expect($lock(client, { cancelVia: pool })).toBe($lock(client, { cancelVia: pool }));
  expect($lock(client, { cancelVia: pool })).not.toBe($lock(client, { cancelVia: other }));
  expect($lock(client, { cancelVia: pool })).not.toBe($lock(client));
  const drizzle = db.drizzle();
  expect(drizzleLock(drizzle)).toBe(drizzleLock(drizzle));
});

test('a cached $lock(tx, { db }) keeps the side channel it was given: an abort cancels the wait on the server', async () => {
  const drizzle = db.drizzle();
  const holder = await db.client();
  await holder.query('BEGIN');
  await holder.query(`SELECT pg_advisory_xact_lock(42)`);
  const controller = new AbortController();
  const outcome = drizzle.transaction(async (tx) => {
    // The first call caches the object for this tx and { db }; the second is served from the cache.
    drizzleLock(tx, { db: drizzle });
    return drizzleLock(tx, { db: drizzle }).advisory(42, { signal: controller.signal });
  });
  for (let i = 0; i < 500; i += 1) {
    if ((await db.query(`SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`)).length > 0) break;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  controller.abort();
  await expect(outcome).rejects.toBeInstanceOf(LockAbortedError);
  expect(await db.query(`SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`)).toEqual([]);
  await holder.query('ROLLBACK');
});
