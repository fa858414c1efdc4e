import type { LeaseTableNames } from './lease-schema.js';

// Every statement here is ONE round trip in autocommit. Expiry is decided by clock_timestamp()
// (the database's clock, advancing inside a statement), never by a client's clock. Times come
// back as epoch milliseconds (float8) so every driver returns a plain number.

const EPOCH_MS = (column: string) => `(extract(epoch FROM ${column}) * 1000)::float8`;
const NOW_MS = `(extract(epoch FROM clock_timestamp()) * 1000)::float8`;
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
 * out of the insert, so its default (nextval of the bigserial's sequence) fills it, and a
 * take-over draws a fresh one (`token = DEFAULT`) once it holds the row's lock. {@link NAME_LOCKED}
 * keeps an insert's token from going stale while it waits.
 */
export function acquireSql(t: LeaseTableNames): string {
  return (
    `INSERT INTO ${t.qualified} AS l (name, owner, data, acquired_at, renewed_at, expires_at, ttl_ms) ` +
    `SELECT $1::text, $2::text, $3::jsonb, clock_timestamp(), clock_timestamp(), ${TTL('$4')}, $4::int WHERE ${NAME_LOCKED('$1::text')} ` +
    `ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, token = DEFAULT, data = excluded.data, ` +
    `acquired_at = excluded.acquired_at, renewed_at = excluded.renewed_at, expires_at = excluded.expires_at, ttl_ms = excluded.ttl_ms ` +
    `WHERE l.expires_at <= clock_timestamp() ` +
    `RETURNING l.token::text AS token, l.data, ${EPOCH_MS('l.expires_at')} AS expires_ms`
  );
}

/**
 * A release deletes the lease row only if it is the version its own snapshot read: the row's
 * `xmin` (the transaction that wrote this version) equals the snapshot's. A waiter in line while
 * the lease is held also rewrites the holder's row ({@link lineAcquireSql}'s `touch`),
 * so a release whose snapshot predates that join (it cannot see the waiter's line entry) finds the
 * row changed once it gets the row's lock (PostgreSQL re-checks the WHERE on the newest version),
 * deletes nothing, and is run again with a fresh snapshot that sees the waiter and hands the lease
 * to it. Without this, such a waiter would sleep, in line, until its safety retry while the lease
 * lay free. A heartbeat that renewed the row meanwhile makes the release run again too (rare).
 * `$1` is the lease's name.
 */
const UNCHANGED = (table: string) => `xmin = (SELECT c.xmin FROM ${table} c WHERE c.name = $1::text)`;

/**
 * A condition that is always true but reads every row of the given CTEs, so PostgreSQL runs
 * them (and takes their row locks) before the statement part that carries it. The lease
 * statements use it to lock the line row before the lease row, the one order every statement
 * that writes both follows, so none can deadlock with another.
 */
const AFTER = (...ctes: string[]) => `${ctes.map((cte) => `(SELECT count(*) FROM ${cte})`).join(' + ')} >= 0`;

/**
 * A condition, always true, that takes the statement's per-name transaction advisory lock, in
 * the two-key space (class {@link LEASE_LOCK_CLASS}, key: the name's hash), which no one-key
 * `pg_advisory_lock(bigint)` shares. Every statement that takes a lease by inserting its row and
 * every statement that deletes a lease row takes it before any row lock and keeps it until it
 * commits (one statement in autocommit: microseconds). Why: an `INSERT … ON CONFLICT` computes
 * its row, new token included, before it waits for a conflicting row, and when that row is
 * deleted meanwhile it inserts the row it computed. While it waited, others could take and
 * release the lease with larger tokens; the late insert would then hold the lease with a smaller
 * token than an earlier holder's, breaking fencing. Under this lock no lease row of the name is
 * deleted, and no other insert draws a token, between the draw and the commit. Statements that
 * rewrite a row they hold the lock of (a handoff, a take-over, a renewal, `DO UPDATE`) draw their
 * token after taking it (`token = DEFAULT`) and need no more. Taken before every row lock, it
 * adds no deadlock. As a condition in a statement's own WHERE (rather than a CTE) it costs
 * PostgreSQL almost nothing to plan, which matters where a driver sends statements unnamed.
 */
const NAME_LOCKED = (nameParam: string) => `pg_advisory_xact_lock(${LEASE_LOCK_CLASS}, hashtext(${nameParam})) IS NOT NULL`;

/** `adv`: a CTE that takes {@link NAME_LOCKED} (with `onlyIfAttempt`, only when the statement's `p.attempt`), for statements that order it with AFTER. */
const ADVISORY = (nameParam: string, onlyIfAttempt = false) => `adv AS (SELECT 1 ${onlyIfAttempt ? 'FROM p WHERE p.attempt AND' : 'WHERE'} ${NAME_LOCKED(nameParam)})`;

/** The first key of {@link NAME_LOCKED}'s locks: 'orml' in ASCII. Documented in docs/leases.md. */
export const LEASE_LOCK_CLASS = 0x6f726d6c;

/**
 * Release when nobody waits: $1 name, $2 owner, $3 token, $4 the name's line row
 * ({@link lineRowName}). Deletes the row only if this owner and token still hold it and nobody
 * is in line; `live` says whether the lease had not yet expired. No row back: not held, or
 * someone is in line, and the caller goes on with {@link releaseSql}, which tells the two apart.
 * Kept this small because it is the common case: planning a statement costs about as much as
 * executing it here.
 */
export function quickReleaseSql(t: LeaseTableNames): string {
  const T = t.qualified;
  return (
    `DELETE FROM ${T} WHERE name = $1::text AND owner = $2::text AND token = $3::int8 AND ${UNCHANGED(T)} ` +
    `AND NOT EXISTS (SELECT 1 FROM ${T} w WHERE w.name = $4::text) AND ${NAME_LOCKED('$1::text')} RETURNING expires_at > clock_timestamp() AS live`
  );
}

/**
 * {@link quickReleaseSql} for a driver that reads the count of changed rows
 * (`Executor.execute`): same parameters, no row back. One row deleted: released while it was
 * live. None: not held, expired, or someone is in line, and {@link releaseSql} tells which.
 */
export function quickReleaseCountSql(t: LeaseTableNames): string {
  const T = t.qualified;
  return (
    `DELETE FROM ${T} WHERE name = $1::text AND owner = $2::text AND token = $3::int8 AND expires_at > clock_timestamp() ` +
    `AND ${UNCHANGED(T)} AND NOT EXISTS (SELECT 1 FROM ${T} w WHERE w.name = $4::text) AND ${NAME_LOCKED('$1::text')}`
  );
}

/**
 * Release: $1 name, $2 owner, $3 token, $4 the channel's prefix ({@link ownerChannel} without the
 * owner's part), $5 the name's line row ({@link lineRowName}).
 * Only if this owner and token still hold the lease. `live` says whether it had not yet expired.
 * One row back while this owner and token held it when the statement began; `done` false: the row
 * changed before it could be deleted ({@link UNCHANGED}), and the caller runs the statement again.
 *
 * When a waiter is in line, the same statement hands the lease to the first in line (its owner,
 * ttl and data from its line entry, a new token from the column's sequence), takes it out of the
 * line, and NOTIFYs its process with what it now holds, so the waiter needs no round trip of its
 * own. The channel is that process's own ({@link ownerChannel}): other listening processes are not
 * sent it. Otherwise the row is deleted, and nothing is notified: NOTIFY is not free (a transaction
 * that notified holds a database-wide lock through its commit), so only a handoff pays for it.
 */
export function releaseSql(t: LeaseTableNames): string {
  const T = t.qualified;
  // The entries that leave the line: the waiter handed the lease, and this owner's own (if any).
  const leaving = `ARRAY[coalesce((SELECT owner FROM handed), $2::text), $2::text]`;
  return (
    `WITH cur AS (SELECT c.expires_at > clock_timestamp() AS live FROM ${T} c WHERE c.name = $1::text AND c.owner = $2::text AND c.token = $3::int8), ` +
    // The name's advisory lock first ({@link NAME_LOCKED}: this may delete the row), then the line
    // row ({@link AFTER}); `head` is read from the snapshot.
    `${ADVISORY('$1::text')}, ` +
    `lk AS (SELECT 1 FROM ${T} w WHERE w.name = $5::text AND ${AFTER('adv')} FOR UPDATE), ` +
    `head AS (SELECT e.key AS owner, e.value AS v FROM ${T} w, jsonb_each(w.data) e WHERE w.name = $5::text AND e.key <> $2::text AND ${AFTER('lk')} ` +
    `AND (e.value->>1)::float8 > ${NOW_MS} ORDER BY (e.value->>0)::float8, e.key LIMIT 1), ` +
    `handed AS (UPDATE ${T} AS l SET owner = head.owner, token = DEFAULT, data = nullif(head.v->3, 'null'::jsonb), acquired_at = clock_timestamp(), renewed_at = clock_timestamp(), ` +
    `expires_at = clock_timestamp() + (head.v->>2)::int * interval '1 millisecond', ttl_ms = (head.v->>2)::int ` +
    `FROM head WHERE l.name = $1::text AND l.owner = $2::text AND l.token = $3::int8 ` +
    `RETURNING l.owner, l.token::text AS token, ${EPOCH_MS('l.expires_at')} AS expires_ms), ` +
    `deleted AS (DELETE FROM ${T} AS l WHERE l.name = $1::text AND l.owner = $2::text AND l.token = $3::int8 AND l.${UNCHANGED(T)} AND NOT EXISTS (SELECT 1 FROM head) ` +
    `AND ${AFTER('adv')} RETURNING 1), ` +
    // An entry must never outlive its waiter's turn: a later release would hand the lease to a
    // process that no longer waits for it. So the line row is always updated (waiting for a
    // waiter's try that is writing it, if need be).
    `moved AS (UPDATE ${T} AS w SET data = w.data - ${leaving} WHERE w.name = $5::text AND (EXISTS (SELECT 1 FROM handed) OR EXISTS (SELECT 1 FROM deleted)) ` +
    `AND EXISTS (SELECT 1 FROM jsonb_each(w.data) e WHERE e.key <> ALL (${leaving}) AND (e.value->>1)::float8 > ${NOW_MS}) RETURNING 1), ` +
    `emptied AS (DELETE FROM ${T} AS w WHERE w.name = $5::text AND (EXISTS (SELECT 1 FROM handed) OR EXISTS (SELECT 1 FROM deleted)) ` +
    `AND NOT EXISTS (SELECT 1 FROM jsonb_each(w.data) e WHERE e.key <> ALL (${leaving}) AND (e.value->>1)::float8 > ${NOW_MS}) RETURNING 1) ` +
    `SELECT cur.live, h.owner AS handed_to, (EXISTS (SELECT 1 FROM handed) OR EXISTS (SELECT 1 FROM deleted)) AS done, ` +
    `CASE WHEN h.owner IS NULL THEN NULL ELSE pg_notify($4::text || right(h.owner, ${OWNER_CHANNEL_CHARS}), json_build_array($1::text, h.owner, h.token, h.expires_ms)::text) IS NULL END AS notified ` +
    `FROM cur LEFT JOIN handed h ON true`
  );
}

/** How many of an owner id's last characters (its random part) name its channel. */
const OWNER_CHANNEL_CHARS = 8;

/**
 * The channel a release NOTIFYs when it hands a lease to `owner` (`<channel>_<random part of the
 * owner id>`), so that only that process is sent it: one channel for all would deliver every
 * handoff of the table to every listening process. Owner ids are `host:pid:<8 hex>`. With an
 * empty owner: the prefix {@link releaseSql} completes with the receiving owner's part.
 */
export function ownerChannel(channel: string, owner: string): string {
  return `${channel}_${owner.slice(-OWNER_CHANNEL_CHARS)}`;
}

/**
 * The first character of a line row's name. Lease names may not start with it
 * ({@link checkLeaseName}), so a line row never collides with a lease.
 */
export const LINE_MARK = '\u0001';

/** The name of the row that keeps the waiter line of lease `name`. */
export function lineRowName(name: string): string {
  return `${LINE_MARK}line:${name}`;
}

/** The owner column of line rows. */
export const LINE_OWNER = 'ormlock:line';

// A line entry: `"<owner>": [joined_ms, until_ms, ttl_ms, data]` (times: database epoch ms).
const LIVE_OTHERS = (alias: string, owner: string, nowMs: string) =>
  `SELECT 1 FROM jsonb_each(${alias}.data) e WHERE e.key <> ${owner} AND (e.value->>1)::float8 > ${nowMs}`;

/**
 * Acquire in line: $1 name, $2 owner, $3 data (jsonb text or null), $4 ttl ms, $5 the line row's
 * name, $6 how long an entry stays in line without being renewed (ms), $7 the token this owner
 * holds for the name already (another lease of the same process), or null, $8 true when this
 * owner was handed the lease since its last try (its old entry is no place in line any more).
 *
 * The waiter line of a lease is one row of the lease table ({@link lineRowName}) whose `data`
 * maps each waiting owner to `[joined, until, ttl, data]` (times: database epoch ms). One
 * statement, in autocommit, with no session state (so it works through transaction-mode poolers):
 * - counts the live entries that joined before this owner (`ahead`);
 * - takes the lease only when none is ahead (first come, first served) and the lease is free or
 *   expired, exactly as {@link acquireSql} does;
 * - recognises a lease a release handed to this owner ({@link releaseSql}): `handed_token`;
 * - otherwise joins the line (dropping entries not renewed in time: waiters that died), or renews
 *   this owner's entry and keeps its place;
 * - once acquired, leaves the line, deleting the row when nobody else is in it;
 * - returns the holder's remaining time from the same snapshot, for the waiter's sleep.
 */
export function lineAcquireSql(t: LeaseTableNames): string {
  const me = '$2::text';
  const T = t.qualified;
  return (
    `WITH q AS (SELECT coalesce(w.data, '{}'::jsonb) AS line, w.xmin AS line_xmin, ${NOW_MS} AS now_ms FROM (SELECT 1) one LEFT JOIN ${T} w ON w.name = $5::text), ` +
    `mine AS (SELECT CASE WHEN NOT $8::boolean AND (q.line->${me}->>1)::float8 > q.now_ms THEN (q.line->${me}->>0)::float8 ELSE q.now_ms END AS t, ` +
    `coalesce(NOT $8::boolean AND (q.line->${me}->>1)::float8 > q.now_ms, false) AS was_in FROM q), ` +
    `ahead AS (SELECT count(*)::int AS n FROM q, mine, jsonb_each(q.line) e WHERE e.key <> ${me} AND (e.value->>1)::float8 > q.now_ms ` +
    `AND e.key IS DISTINCT FROM (SELECT h.owner FROM ${T} h WHERE h.name = $1::text AND h.expires_at > clock_timestamp()) ` +
    `AND ((e.value->>0)::float8 < mine.t OR ((e.value->>0)::float8 = mine.t AND e.key < ${me}))), ` +
    `holder AS (SELECT h.owner, h.token::text AS token, (extract(epoch FROM h.expires_at - clock_timestamp()) * 1000)::float8 AS remaining_ms, ` +
    `h.owner = ${me} AND h.token IS DISTINCT FROM $7::int8 AND h.expires_at > clock_timestamp() AS handed, ${EPOCH_MS('h.expires_at')} AS expires_ms ` +
    `FROM ${T} h WHERE h.name = $1::text), ` +
    // `held`: a live holder, other than a handoff to this owner; `attempt`: the lease looks free
    // and nobody is ahead, so this statement tries to take it.
    `p AS (SELECT EXISTS (SELECT 1 FROM holder WHERE holder.remaining_ms > 0 AND NOT holder.handed) AS held, ` +
    `n = 0 AND NOT EXISTS (SELECT 1 FROM holder WHERE holder.remaining_ms > 0) AS attempt FROM ahead), ` +
    // Taking the lease also writes the line row (leaving the line): lock that row first, as
    // releases do.
    // Taking it inserts the lease row: the name's advisory lock comes first ({@link NAME_LOCKED}).
    `${ADVISORY('$1::text', true)}, ` +
    `lk AS (SELECT 1 FROM ${T} w WHERE w.name = $5::text AND (SELECT attempt FROM p) AND ${AFTER('adv')} FOR UPDATE), ` +
    `acq AS (INSERT INTO ${T} AS l (name, owner, data, acquired_at, renewed_at, expires_at, ttl_ms) ` +
    // Not while the snapshot shows a live holder (p.attempt): ON CONFLICT would lock the holder's
    // row until this statement commits, making the holder's release (or heartbeat) wait for it.
    `SELECT $1::text, ${me}, $3::jsonb, clock_timestamp(), clock_timestamp(), ${TTL('$4')}, $4::int FROM p WHERE p.attempt AND ${AFTER('adv', 'lk')} ` +
    `ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, token = DEFAULT, data = excluded.data, ` +
    `acquired_at = excluded.acquired_at, renewed_at = excluded.renewed_at, expires_at = excluded.expires_at, ttl_ms = excluded.ttl_ms ` +
    `WHERE l.expires_at <= clock_timestamp() ` +
    `RETURNING l.token::text AS token, l.data, ${EPOCH_MS('l.expires_at')} AS expires_ms), ` +
    // Not in line yet (or its entry lapsed): join at the back. Not after trying to take the lease
    // and losing it to another acquirer (`retry`: the next try sees that holder, and touches it).
    // With no holder to touch, the place is written only if the line row is as the snapshot read
    // it (else `retry`): someone ahead may have taken the lease meanwhile. A release by such a
    // holder sees those that were ahead of this waiter, and hands the lease on, writing the line
    // row after this commit; or wrote it first, and then this statement retries.
    `joined AS (INSERT INTO ${T} AS l (name, owner, data, acquired_at, renewed_at, expires_at, ttl_ms) ` +
    `SELECT $5::text, '${LINE_OWNER}', jsonb_build_object(${me}, jsonb_build_array(mine.t, q.now_ms + $6::int, $4::int, $3::jsonb)), ` +
    `clock_timestamp(), clock_timestamp(), ${TTL('$6')}, $6::int ` +
    `FROM q, mine, p WHERE NOT mine.was_in AND NOT p.attempt AND NOT EXISTS (SELECT 1 FROM holder WHERE holder.handed) ` +
    `ON CONFLICT (name) DO UPDATE SET data = ` +
    `(SELECT coalesce(jsonb_object_agg(e.key, e.value), '{}'::jsonb) FROM jsonb_each(l.data) e WHERE e.key <> ${me} AND (e.value->>1)::float8 > ${NOW_MS}) ` +
    `|| excluded.data, renewed_at = excluded.renewed_at, expires_at = excluded.expires_at ` +
    `WHERE (SELECT held FROM p) OR l.xmin = (SELECT line_xmin FROM q) ` +
    // `fresh`: inserted, not merged (xmax is 0 only on a row this statement inserted).
    `RETURNING l.xmax = 0 AS fresh), ` +
    // In line: renew the entry, keeping its place. Only while it is still there: a release that
    // committed meanwhile may have handed the lease to this owner and taken it out of the line,
    // and joining again would put it back in line while it holds the lease.
    `renewed AS (UPDATE ${T} AS l SET data = jsonb_set(l.data, ARRAY[${me}, '1'], to_jsonb(${NOW_MS} + $6::int)), ` +
    `renewed_at = clock_timestamp(), expires_at = greatest(l.expires_at, ${TTL('$6')}) ` +
    `FROM mine, p WHERE l.name = $5::text AND mine.was_in AND (l.data->${me}) IS NOT NULL AND NOT p.attempt ` +
    `AND NOT EXISTS (SELECT 1 FROM holder WHERE holder.handed) RETURNING 1), ` +
    // A release that began before this statement commits cannot see the place it writes, and must
    // not let the lease go with this waiter asleep in line. So, behind a live holder, the
    // statement also rewrites the holder's row, last (after the line row, see {@link AFTER}; and
    // last, so it holds that row's lock only briefly): such a
    // release finds the row changed and runs again with a snapshot that sees this place
    // ({@link UNCHANGED}). No row: the holder let the lease go meanwhile; the place is written
    // anyway, and `retry`.
    `touch AS (UPDATE ${T} AS l SET ttl_ms = l.ttl_ms WHERE ${AFTER('joined', 'renewed')} AND l.name = $1::text AND (SELECT held FROM p) ` +
    `AND l.expires_at > clock_timestamp() RETURNING 1), ` +
    `leave AS (UPDATE ${T} AS l SET data = l.data - ${me} WHERE l.name = $5::text AND EXISTS (SELECT 1 FROM acq) ` +
    `AND (l.data->${me}) IS NOT NULL AND EXISTS (${LIVE_OTHERS('l', me, NOW_MS)}) RETURNING 1), ` +
    `gone AS (DELETE FROM ${T} AS l WHERE l.name = $5::text AND EXISTS (SELECT 1 FROM acq) AND NOT EXISTS (${LIVE_OTHERS('l', me, NOW_MS)}) RETURNING 1) ` +
    `SELECT a.token, a.data, a.expires_ms, (SELECT n FROM ahead) AS ahead, h.owner AS holder_owner, h.token AS holder_token, ` +
    `h.remaining_ms AS holder_remaining_ms, h.expires_ms AS holder_expires_ms, CASE WHEN h.handed THEN h.token END AS handed_token, ` +
    // Try again at once: it lost the free lease to another acquirer; the holder it saw let the
    // lease go before the touch; it is not in line (the line row changed under it); or, with no
    // holder to touch, the line row it saw was deleted meanwhile and it started a new one.
    `(a.token IS NULL AND NOT coalesce(h.handed, false) AND (p.attempt OR (p.held AND NOT EXISTS (SELECT 1 FROM touch)) ` +
    `OR NOT ((SELECT was_in FROM mine) OR EXISTS (SELECT 1 FROM joined)) ` +
    `OR (NOT p.held AND coalesce((SELECT fresh FROM joined), false) AND q.line_xmin IS NOT NULL))) AS retry, ` +
    // Not acquired: the statement wrote at most a place in line, which need not survive a crash
    // (the waiter joins again on its next try), so its commit does not wait for the WAL flush.
    // A release that hands the lease to this entry flushes it with its own commit. It also holds
    // the line row for less time, and releases wait for that row.
    `CASE WHEN a.token IS NULL THEN set_config('synchronous_commit', 'off', true) END AS async_commit ` +
    `FROM q, p LEFT JOIN acq a ON true LEFT JOIN holder h ON true`
  );
}

/**
 * Leave the line: $1 the line row's name, $2 owner, $3 the lease's name, $4 the token this owner
 * holds for it already, or null. Removes this owner's entry, and the row when nobody else is in
 * line. `handed_token`: a release handed the lease to this owner meanwhile (the caller releases it).
 */
export function lineLeaveSql(t: LeaseTableNames): string {
  const me = '$2::text';
  return (
    `WITH leave AS (UPDATE ${t.qualified} AS l SET data = l.data - ${me} WHERE l.name = $1::text AND (l.data->${me}) IS NOT NULL ` +
    `AND EXISTS (${LIVE_OTHERS('l', me, NOW_MS)}) RETURNING 1), ` +
    `gone AS (DELETE FROM ${t.qualified} AS l WHERE l.name = $1::text AND NOT EXISTS (${LIVE_OTHERS('l', me, NOW_MS)}) RETURNING 1) ` +
    `SELECT (SELECT h.token::text FROM ${t.qualified} h WHERE h.name = $3::text AND h.owner = ${me} AND h.token IS DISTINCT FROM $4::int8) AS handed_token, ` +
    `(SELECT count(*) FROM leave)::int + (SELECT count(*) FROM gone)::int AS changed`
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
 * Heartbeat: $1 owner, $2 names, $3 tokens, $4 ttls (ms): three arrays of the same length, each
 * bound as ONE text parameter in array syntax ({@link pgArrayLiteral}) so that every driver
 * (Prisma included) binds them alike, and PostgreSQL parses them far faster than JSON.
 *
 * Renews every lease of this process that is still held and unexpired, in one statement: a hash
 * join of the arrays with the owner's rows. It returns one summary row (the database time before
 * the renewals, `at_ms`, and how many were renewed) and one row per lease that was NOT renewed
 * (lost): with 10,000 leases the reply stays small.
 */
export function heartbeatSql(t: LeaseTableNames): string {
  return (
    `/* ormlock heartbeat */ WITH t0 AS (SELECT clock_timestamp() AS at), ` +
    `u AS (UPDATE ${t.qualified} AS l SET renewed_at = clock_timestamp(), expires_at = clock_timestamp() + h.ttl * interval '1 millisecond', ttl_ms = h.ttl ` +
    `FROM unnest($2::text[], $3::int8[], $4::int[]) AS h(name, token, ttl) ` +
    `WHERE l.name = h.name AND l.owner = $1::text AND l.token = h.token AND l.expires_at > clock_timestamp() ` +
    `RETURNING l.name) ` +
    `SELECT NULL::text AS lost_name, (SELECT ${EPOCH_MS('at')} FROM t0) AS at_ms, (SELECT count(*) FROM u)::int AS renewed ` +
    `UNION ALL ` +
    `SELECT n, NULL, NULL FROM unnest($2::text[]) AS n WHERE n NOT IN (SELECT u.name FROM u)`
  );
}

/** `values` as a PostgreSQL array literal (`{"a","b"}`), to bind as one text parameter. */
export function pgArrayLiteral(values: readonly (string | number)[]): string {
  let out = '{';
  for (let i = 0; i < values.length; i += 1) {
    const value = values[i]!;
    if (i > 0) out += ',';
    out += typeof value === 'number' ? String(value) : `"${value.replace(/[\\"]/g, '\\$&')}"`;
  }
  return `${out}}`;
}

/** Read one lease: $1 name. */
export function getSql(t: LeaseTableNames): string {
  return `SELECT ${SELECT_COLUMNS('l')} FROM ${t.qualified} l WHERE l.name = $1`;
}

/**
 * List leases: $1 prefix ('' for all). A prefix compare, not LIKE, so `%` and `_` mean themselves.
 * Line rows (waiters, see {@link lineAcquireSql}) are left out.
 */
export function listSql(t: LeaseTableNames): string {
  return `SELECT ${SELECT_COLUMNS('l')} FROM ${t.qualified} l WHERE left(l.name, length($1)) = $1 AND left(l.name, 1) <> chr(1) ORDER BY l.name`;
}

/**
 * Prune: $1 grace ms. Deletes rows expired for longer than the grace; tokens are unaffected. Line
 * rows left by waiters that died expire too and go the same way.
 */
export function pruneSql(t: LeaseTableNames): string {
  return (
    `WITH pruned AS (DELETE FROM ${t.qualified} WHERE expires_at <= clock_timestamp() - $1::int * interval '1 millisecond' RETURNING 1) ` +
    `SELECT count(*)::int AS pruned FROM pruned`
  );
}

/**
 * Take over (a prioritized wait, see `LeasePrioritizeOptions.takeOver`): $1 name, $2 new owner,
 * $3 data (jsonb text or null), $4 ttl ms, $5 the holder's owner, $6 its token. Only while that
 * holder still holds it: the row gets the new owner and a new token from the column's sequence,
 * so the old holder's heartbeat, extend and release find it gone, and its fenced writes are refused.
 */
export function takeOverSql(t: LeaseTableNames): string {
  return (
    `UPDATE ${t.qualified} AS l SET owner = $2::text, token = DEFAULT, data = $3::jsonb, acquired_at = clock_timestamp(), ` +
    `renewed_at = clock_timestamp(), expires_at = ${TTL('$4')}, ttl_ms = $4::int ` +
    `WHERE l.name = $1::text AND l.owner = $5::text AND l.token = $6::int8 ` +
    `RETURNING l.token::text AS token, l.data, ${EPOCH_MS('l.expires_at')} AS expires_ms`
  );
}
