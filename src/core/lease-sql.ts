import type { LeaseTableNames } from './lease-schema.js';

// Every statement here is ONE round trip in autocommit. Expiry is decided by clock_timestamp()
// (the database's clock, advancing inside a statement), never by a client's clock. Times come
// back as epoch milliseconds (float8) so every driver returns a plain number.

const EPOCH_MS = (column: string) => `(extract(epoch FROM ${column}) * 1000)::float8`;
const TTL = (param: string) => `(clock_timestamp() + ${param}::int * interval '1 millisecond')`;

/** The columns a lease read returns. */
export interface LeaseRow {
  [column: string]: unknown;
  name: string;
  owner: string;
  token: string;
  data: unknown;
  acquired_ms: number;
  renewed_ms: number;
  expires_ms: number;
  ttl_ms: number;
  /** Milliseconds until expiry by the database's clock (≤ 0: expired). */
  remaining_ms: number;
}

const SELECT_COLUMNS = (alias: string) =>
  `${alias}.name, ${alias}.owner, ${alias}.token::text AS token, ${alias}.data, ` +
  `${EPOCH_MS(`${alias}.acquired_at`)} AS acquired_ms, ${EPOCH_MS(`${alias}.renewed_at`)} AS renewed_ms, ` +
  `${EPOCH_MS(`${alias}.expires_at`)} AS expires_ms, ${alias}.ttl_ms, ` +
  `(extract(epoch FROM ${alias}.expires_at - clock_timestamp()) * 1000)::float8 AS remaining_ms`;

/**
 * Acquire: $1 name, $2 owner, $3 data (jsonb text or null), $4 ttl ms.
 *
 * One statement: insert the row, or take over a row whose holder's time is up. A live holder's
 * row makes ON CONFLICT's WHERE false, so nothing is written and no row comes back (the caller
 * then reads the holder with {@link getSql}, only on that busy path). The token column is left
 * out of the insert, so its default (nextval of the bigserial's sequence) fills it, and
 * `token = excluded.token` gives a take-over a fresh, larger token too.
 */
export function acquireSql(t: LeaseTableNames): string {
  return (
    `INSERT INTO ${t.qualified} AS l (name, owner, data, acquired_at, renewed_at, expires_at, ttl_ms) ` +
    `VALUES ($1, $2, $3::jsonb, clock_timestamp(), clock_timestamp(), ${TTL('$4')}, $4::int) ` +
    `ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, token = excluded.token, data = excluded.data, ` +
    `acquired_at = excluded.acquired_at, renewed_at = excluded.renewed_at, expires_at = excluded.expires_at, ttl_ms = excluded.ttl_ms ` +
    `WHERE l.expires_at <= clock_timestamp() ` +
    `RETURNING l.token::text AS token, l.data, ${EPOCH_MS('l.expires_at')} AS expires_ms`
  );
}

/**
 * Release: $1 name, $2 owner, $3 token, $4 channel, $5 the name's queue key. Deletes the row only
 * if this owner and token still hold it. `live` says whether the lease had not yet expired.
 *
 * Waiters are woken with NOTIFY only when one is in line: the first in line holds the queue key
 * as a session lock, so a shared try-lock on it fails. NOTIFY is not free: a committing
 * transaction that notified holds a database-wide lock through its commit, which would serialize
 * every release of every process.
 */
export function releaseSql(t: LeaseTableNames): string {
  return (
    `WITH released AS (DELETE FROM ${t.qualified} WHERE name = $1 AND owner = $2 AND token = $3::int8 ` +
    `RETURNING expires_at > clock_timestamp() AS live) ` +
    `SELECT r.live, CASE WHEN pg_try_advisory_xact_lock_shared($5::int8) THEN false ELSE pg_notify($4, $1) IS NULL END AS notified FROM released r`
  );
}

/** Extend: $1 name, $2 owner, $3 token, $4 ttl ms. Only while still held and not expired. */
export function extendSql(t: LeaseTableNames): string {
  return (
    `UPDATE ${t.qualified} SET renewed_at = clock_timestamp(), expires_at = ${TTL('$4')}, ttl_ms = $4::int ` +
    `WHERE name = $1 AND owner = $2 AND token = $3::int8 AND expires_at > clock_timestamp() ` +
    `RETURNING ${EPOCH_MS('expires_at')} AS expires_ms`
  );
}

/**
 * Heartbeat: $1 owner, $2 a JSON array of `{ name, token, ttl }`. Renews every lease of this
 * process that is still held and unexpired, in one statement. It returns one summary row (the
 * database time before the renewals, `at_ms`, and how many were renewed) and one row per lease
 * that was NOT renewed (lost): with 10,000 leases the reply stays small. JSON rather than array
 * parameters so that every driver (Prisma included) binds it the same way, as one text value.
 */
export function heartbeatSql(t: LeaseTableNames): string {
  return (
    `WITH h AS (SELECT * FROM jsonb_to_recordset($2::jsonb) AS h(name text, token int8, ttl int)), ` +
    `t0 AS (SELECT clock_timestamp() AS at), ` +
    `u AS (UPDATE ${t.qualified} AS l SET renewed_at = clock_timestamp(), expires_at = clock_timestamp() + h.ttl * interval '1 millisecond', ttl_ms = h.ttl ` +
    `FROM h WHERE l.name = h.name AND l.owner = $1 AND l.token = h.token AND l.expires_at > clock_timestamp() ` +
    `RETURNING l.name, l.token) ` +
    `SELECT NULL::text AS lost_name, NULL::text AS lost_token, (SELECT ${EPOCH_MS('at')} FROM t0) AS at_ms, (SELECT count(*) FROM u)::int AS renewed ` +
    `UNION ALL ` +
    `SELECT h.name, h.token::text, NULL, NULL FROM h WHERE NOT EXISTS (SELECT 1 FROM u WHERE u.name = h.name AND u.token = h.token)`
  );
}

/** Read one lease: $1 name. */
export function getSql(t: LeaseTableNames): string {
  return `SELECT ${SELECT_COLUMNS('l')} FROM ${t.qualified} l WHERE l.name = $1`;
}

/** List leases: $1 prefix ('' for all). A prefix compare, not LIKE, so `%` and `_` mean themselves. */
export function listSql(t: LeaseTableNames): string {
  return `SELECT ${SELECT_COLUMNS('l')} FROM ${t.qualified} l WHERE left(l.name, length($1)) = $1 ORDER BY l.name`;
}

/** Prune: $1 grace ms. Deletes rows expired for longer than the grace; tokens are unaffected. */
export function pruneSql(t: LeaseTableNames): string {
  return (
    `WITH pruned AS (DELETE FROM ${t.qualified} WHERE expires_at <= clock_timestamp() - $1::int * interval '1 millisecond' RETURNING 1) ` +
    `SELECT count(*)::int AS pruned FROM pruned`
  );
}
