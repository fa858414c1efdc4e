/**
 * The work the chaos workers do under each kind of lock, and the tables it writes. Shared by the
 * worker processes (`chaos-worker.ts`) and the driver's final probe (`chaos-driver.ts`).
 *
 * Every critical section is a read-modify-write of a counter row (read `n`, pause, write the
 * value read plus one) plus one ledger row, so a section that ran alongside another one of the
 * same name shows up as a doubled `seq` and a counter that disagrees with the ledger.
 */
import type { NodePgDatabase } from 'drizzle-orm/node-postgres';
import type pg from 'pg';
import { $lock as drizzleLock } from '../../src/drizzle/index.js';
import { toDrizzleSql } from '../../src/drizzle/to-drizzle-sql.js';
import { type Duration, fencingCondition } from '../../src/index.js';
import { $lock, type PgPoolLike } from '../../src/pg/index.js';

/** The three kinds of lock the suite contends on. */
export const LOCK_KINDS = ['advisory', 'row', 'lease'] as const;
export type LockKind = (typeof LOCK_KINDS)[number];

/** The few names every kind is contended on. */
export const LOCK_NAMES = ['a', 'b', 'c'] as const;

/** Lease ttl in the chaos run: short, so that a killed or frozen holder expires quickly. */
export const LEASE_TTL_MS = 1_000;

/** How long a worker waits for any lock before giving up and picking another. */
export const WAIT: Duration = '3s';

/** Tables of the run: created once by the driver. */
export const CHAOS_SCHEMA_SQL = `
CREATE TABLE IF NOT EXISTS chaos_counter (
  kind text NOT NULL,
  name text NOT NULL,
  n bigint NOT NULL DEFAULT 0,
  fence bigint,
  PRIMARY KEY (kind, name)
);
CREATE TABLE IF NOT EXISTS chaos_ledger (
  id bigserial PRIMARY KEY,
  kind text NOT NULL,
  name text NOT NULL,
  token bigint NOT NULL,
  seq bigint NOT NULL,
  started_at timestamptz(6) NOT NULL,
  ended_at timestamptz(6) NOT NULL,
  worker integer NOT NULL
);
CREATE SEQUENCE IF NOT EXISTS chaos_row_token;
CREATE TABLE IF NOT EXISTS chaos_faults (
  id bigserial PRIMARY KEY,
  fault text NOT NULL,
  kind text,
  name text,
  worker integer,
  at timestamptz(6) NOT NULL DEFAULT clock_timestamp()
);
`;

/** Inserts the counter rows (one per kind and name). */
export async function seedCounters(client: pg.ClientBase | pg.Pool): Promise<void> {
  for (const kind of LOCK_KINDS) {
    for (const name of LOCK_NAMES) {
      await client.query('INSERT INTO chaos_counter (kind, name) VALUES ($1, $2) ON CONFLICT DO NOTHING', [kind, name]);
    }
  }
}

/** What a section tells its caller, as it happens. */
export interface SectionEvents {
  /** The lock is held (or, in `--break` mode, would be): the backend doing the work is `pid`. */
  enter(kind: LockKind, name: string, pid: number): void;
  /** A lease was acquired with `token` (the driver checks no token is handed out twice). */
  leased?(name: string, token: bigint): void;
  /** A lease holder's write was refused by the fencing guard: a newer token had written. */
  fenced(name: string, token: bigint, stage: 'claim' | 'write'): void;
}

/** How one section runs. */
export interface SectionContext {
  readonly pool: pg.Pool;
  readonly worker: number;
  /** Seconds of work inside the lock (on the server: `pg_sleep`, so a cancel has a target). */
  readonly workSeconds: number;
  /** No lock at all: the run that proves the checker catches broken mutual exclusion. */
  readonly broken: boolean;
  readonly events: SectionEvents;
  /** How long a lease waits for its holder (default {@link WAIT}). */
  readonly leaseWait?: Duration;
  /** Take advisory locks through Drizzle (`$lock(db)` from `ormlock/drizzle`) on this database. */
  readonly drizzle?: NodePgDatabase;
}

/** Runs one statement of a section and returns its rows: on a pg client or in a Drizzle transaction. */
type Run = <R>(text: string, params: readonly unknown[]) => Promise<R[]>;

const onClient =
  (client: pg.ClientBase): Run =>
  async <R>(text: string, params: readonly unknown[]) =>
    (await client.query(text, params as unknown[])).rows as R[];

/** Runs one critical section of `kind` on `name`; resolves `true` if its ledger row was written. */
export async function runSection(kind: LockKind, name: string, ctx: SectionContext): Promise<boolean> {
  if (kind === 'advisory') return advisorySection(name, ctx);
  if (kind === 'row') return rowSection(name, ctx);
  return leaseSection(name, ctx);
}

interface Entry {
  pid: number;
  token: string;
  started: string;
  n: string;
}

// Reads the counter and stamps the section's start on the database clock (as text: a JS Date
// would drop the microseconds the overlap check compares). The token: under an advisory lock,
// txid_current() is the first thing that assigns the transaction an id, and it runs under the
// lock, so ids follow lock order. A row lock assigns the id itself, when it starts to wait, so
// ids follow arrival order instead: the row section draws a number from a sequence under the lock.
const tokenSql = (kind: LockKind): string => (kind === 'row' ? `nextval('chaos_row_token')` : 'txid_current()');
const enterSql = (kind: LockKind): string => `SELECT pg_backend_pid() AS pid, ${tokenSql(kind)}::text AS token, clock_timestamp()::text AS started,
  (SELECT n FROM chaos_counter WHERE kind = $1 AND name = $2)::text AS n`;

async function transactionBody(kind: LockKind, name: string, run: Run, ctx: SectionContext): Promise<boolean> {
  const [entry] = await run<Entry>(enterSql(kind), [kind, name]);
  ctx.events.enter(kind, name, entry!.pid);
  await run('SELECT pg_sleep($1)', [ctx.workSeconds]);
  const seq = (BigInt(entry!.n) + 1n).toString();
  await run('UPDATE chaos_counter SET n = $3 WHERE kind = $1 AND name = $2', [kind, name, seq]);
  await run(
    `INSERT INTO chaos_ledger (kind, name, token, seq, started_at, ended_at, worker)
     VALUES ($1, $2, $3, $4, $5::timestamptz, clock_timestamp(), $6)`,
    [kind, name, entry!.token, seq, entry!.started, ctx.worker],
  );
  return true;
}

async function advisorySection(name: string, ctx: SectionContext): Promise<boolean> {
  if (ctx.broken) return inTransaction(ctx.pool, (client) => transactionBody('advisory', name, onClient(client), ctx));
  if (ctx.drizzle) {
    return drizzleLock(ctx.drizzle).advisory(
      `chaos:${name}`,
      (tx) => transactionBody('advisory', name, async (text, params) => (await tx.execute(toDrizzleSql(text, params))).rows as never[], ctx),
      { timeout: WAIT },
    );
  }
  const pool: PgPoolLike = ctx.pool;
  return $lock(pool).advisory(`chaos:${name}`, (client) => transactionBody('advisory', name, onClient(client as unknown as pg.PoolClient), ctx), { timeout: WAIT });
}

async function rowSection(name: string, ctx: SectionContext): Promise<boolean> {
  return inTransaction(ctx.pool, async (client) => {
    if (!ctx.broken) await $lock(client).row('chaos_counter', { where: { kind: 'row', name }, timeout: WAIT });
    return transactionBody('row', name, onClient(client), ctx);
  });
}

/**
 * A checked-out node-postgres client has no 'error' listener: a backend terminated while the
 * client sits between two statements would crash the process. Listen while we hold it; the
 * failure reaches the next statement anyway, and the client is destroyed on release.
 */
async function checkOut(pool: pg.Pool): Promise<{ client: pg.PoolClient; done: (error?: Error) => void }> {
  const client = await pool.connect();
  let failed: Error | undefined;
  const onError = (error: Error): void => void (failed ??= error);
  client.on('error', onError);
  return {
    client,
    done(error) {
      client.removeListener('error', onError);
      client.release(error ?? failed);
    },
  };
}

async function inTransaction<R>(pool: pg.Pool, fn: (client: pg.PoolClient) => Promise<R>): Promise<R> {
  const { client, done } = await checkOut(pool);
  let broken: Error | undefined;
  try {
    await client.query('BEGIN');
    const result = await fn(client);
    await client.query('COMMIT');
    return result;
  } catch (error) {
    await client.query('ROLLBACK').catch((rollbackError: Error) => (broken = rollbackError));
    throw error;
  } finally {
    done(broken);
  }
}

async function leaseSection(name: string, ctx: SectionContext): Promise<boolean> {
  if (ctx.broken) {
    // No lease: every section makes up a token of its own, as a process without a lease would.
    return fencedWork(name, BigInt(ctx.worker), ctx);
  }
  return $lock(ctx.pool).withLease(`chaos:${name}`, (lease) => {
    ctx.events.leased?.(name, lease.fencingToken);
    return fencedWork(name, lease.fencingToken, ctx);
  }, {
    ttl: LEASE_TTL_MS,
    wait: ctx.leaseWait ?? WAIT,
  });
}

/**
 * A lease holder's work, in autocommit statements guarded by its fencing token. It first claims
 * the counter row (writes its token), so that a holder whose lease expired while it was paused
 * between its read and its write finds a newer token there and its write is refused. The work
 * deliberately ignores `lease.signal`: the guard alone must keep a late holder out.
 */
async function fencedWork(name: string, token: bigint, ctx: SectionContext): Promise<boolean> {
  const { client, done } = await checkOut(ctx.pool);
  let broken: Error | undefined;
  const guard = ctx.broken ? 'true' : fencingCondition('fence', '$2');
  try {
    const claim = await client.query<{ pid: number; n: string; started: string }>(
      `UPDATE chaos_counter SET fence = $2 WHERE kind = 'lease' AND name = $1 AND ${guard}
       RETURNING pg_backend_pid() AS pid, n::text AS n, clock_timestamp()::text AS started`,
      [name, token.toString()],
    );
    const row = claim.rows[0];
    if (row === undefined) {
      ctx.events.fenced(name, token, 'claim');
      return false;
    }
    ctx.events.enter('lease', name, row.pid);
    await client.query('SELECT pg_sleep($1)', [ctx.workSeconds]);
    const seq = (BigInt(row.n) + 1n).toString();
    const write = await client.query(
      `WITH c AS (
         UPDATE chaos_counter SET n = $3, fence = $2 WHERE kind = 'lease' AND name = $1 AND ${guard}
         RETURNING clock_timestamp() AS ended_at
       )
       INSERT INTO chaos_ledger (kind, name, token, seq, started_at, ended_at, worker)
       SELECT 'lease', $1, $2, $3, $4::timestamptz, c.ended_at, $5 FROM c`,
      [name, token.toString(), seq, row.started, ctx.worker],
    );
    if (write.rowCount === 0) {
      ctx.events.fenced(name, token, 'write');
      return false;
    }
    return true;
  } catch (error) {
    broken = error as Error;
    throw error;
  } finally {
    done(broken);
  }
}
