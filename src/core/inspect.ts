import { describe } from './duration.js';
import { InvalidLockArgumentError } from './errors.js';
import type { Executor, Row } from './executor.js';
import { type AdvisoryKey, advisoryKeyFromLock } from './keys.js';
import { type LeaseTableOptions, leaseTableNames } from './lease-schema.js';

/** Options of `inspect()`. */
export interface InspectOptions {
  /**
   * Only locks in a blocking relationship: the locks sessions wait for, and the held locks that
   * make them wait. Default `false`: every lock of the database.
   */
  readonly blockedOnly?: boolean;
  /**
   * Only locks on these tables: a table name (`'accounts'`), a qualified one (`'public.accounts'`)
   * or, on Prisma, a model name (`'Account'`). Non-table locks (advisory, transaction ids) drop out.
   */
  readonly relation?: string | readonly string[];
  /** Keep a session's query text to this many characters. Default 200. */
  readonly queryLength?: number;
  /**
   * Also list the locks every transaction holds on its own ids (`virtualxid`, `transactionid`)
   * when nobody waits for them. Default `false`: they are noise unless someone waits.
   */
  readonly includeInternal?: boolean;
  /** Where the lease table is (default `ormlock_leases` on the `search_path`); `false` skips leases. */
  readonly leaseTable?: LeaseTableOptions | false;
}

/** An advisory lock's key, decoded from `pg_locks`. */
export type InspectedAdvisoryKey =
  | {
      /** A single signed 64-bit key (`objsubid = 1`). */
      readonly kind: 'int8';
      /** The signed 64-bit key PostgreSQL holds. */
      readonly value: bigint;
      /** The string key it was hashed from, when this process hashed it recently; else `undefined`. */
      readonly key?: string;
    }
  | {
      /** The two-int32 form, `[namespace, id]` (`objsubid = 2`). */
      readonly kind: 'pair';
      /** The first int32 (`classid`). */
      readonly namespace: number;
      /** The second int32 (`objid`). */
      readonly id: number;
    };

/** One row of `pg_locks` with the session that holds or awaits it. */
export interface LockInfo {
  /** The backend holding or awaiting the lock. */
  readonly pid: number;
  /** Its `application_name` (`''` when unset). */
  readonly application: string;
  /** The role it is connected as. */
  readonly user: string | null;
  /** The database the session is connected to. */
  readonly database: string | null;
  /** `pg_locks.locktype`: `'relation'`, `'advisory'`, `'transactionid'`, `'tuple'`, … */
  readonly lockType: string;
  /** `pg_locks.mode`, e.g. `'AccessExclusiveLock'`, `'ExclusiveLock'`. */
  readonly mode: string;
  /** `true`: held; `false`: awaited. */
  readonly granted: boolean;
  /** The table for relation, page and tuple locks; `model` is the Prisma model mapped to it, where known. */
  readonly relation: {
    /** The table's schema. */
    readonly schema: string;
    /** The table's name. */
    readonly name: string;
    /** The Prisma model mapped to the table (on `prisma.$lock.inspect()`), where known. */
    readonly model?: string;
  } | null;
  /** The key of an advisory lock. */
  readonly advisoryKey: InspectedAdvisoryKey | null;
  /** How long the lock has been awaited, in ms (the database's clock); `null` when granted. */
  readonly waitingMs: number | null;
  /** The session's state: `'active'`, `'idle in transaction'`, … */
  readonly state: string | null;
  /** The session's current or last statement, truncated to `queryLength`. */
  readonly query: string | null;
  /** When the session's transaction began; `null` outside a transaction. */
  readonly transactionStart: Date | null;
  /** For an awaited lock: the sessions it waits for (`pg_blocking_pids`). `[]` when granted. */
  readonly blockedBy: readonly number[];
  /** For a held lock: the sessions waiting for this very lock because of this holder. */
  readonly blocking: readonly number[];
}

/** One row of the lease table. */
export interface LeaseInfo {
  /** The lease's name. */
  readonly name: string;
  /** The holder's owner id (`host:pid:random`). */
  readonly owner: string;
  /** The fencing token of the current holder. */
  readonly token: bigint;
  /** When the holder acquired it (the database's clock). */
  readonly acquiredAt: Date;
  /** When it was last renewed (the database's clock). */
  readonly renewedAt: Date;
  /** When the database expires it unless renewed. */
  readonly expiresAt: Date;
  /** Expired on the database's clock (a row a holder left behind, free to take). */
  readonly expired: boolean;
}

/** What `inspect()` saw, at one moment of the database's clock. */
export interface Inspection {
  /** The database's clock when the locks were read. */
  readonly at: Date;
  /** One record per lock of the current database (other sessions only), filtered by the options. */
  readonly locks: LockInfo[];
  /** `[]` when the lease table does not exist. */
  readonly leases: LeaseInfo[];
}

/** What a layer knows beyond the database: Prisma maps tables to its model names. */
export interface InspectContext {
  readonly modelOf?: (schema: string, table: string) => string | undefined;
}

// One statement, so locks, sessions and blockers come from one moment as far as PostgreSQL
// allows (pg_locks is one snapshot; pg_blocking_pids reads the lock manager once per waiter).
// pg_locks.waitstart is PostgreSQL 14+: it is read through to_jsonb so that 13 does not fail, and
// there the waiting statement's start stands in (the wait began at or after it).
const LOCKS_SQL = `
WITH l AS (
  SELECT l.locktype::text AS locktype, l.database::int8 AS database, l.relation::int8 AS relation, l.page, l.tuple,
         l.virtualxid::text AS virtualxid, l.transactionid::text AS transactionid,
         l.classid::int8 AS classid, l.objid::int8 AS objid, l.objsubid::int4 AS objsubid,
         l.pid, l.mode::text AS mode, l.granted, coalesce((to_jsonb(l) ->> 'waitstart')::timestamptz, a.query_start) AS waitstart,
         a.application_name::text AS application, a.usename::text AS usename, a.datname::text AS datname,
         a.state::text AS state, a.query::text AS query, a.xact_start
    FROM pg_locks l
    JOIN pg_stat_activity a ON a.pid = l.pid
   WHERE a.datid = (SELECT oid FROM pg_database WHERE datname = current_database())
     AND l.pid <> pg_backend_pid()
),
w AS (
  SELECT x.pid, pg_blocking_pids(x.pid) AS blockers FROM (SELECT DISTINCT pid FROM l WHERE NOT granted) AS x
)
SELECT l.pid, l.application, l.usename AS "user", l.datname AS "database", l.locktype AS "lockType", l.mode, l.granted,
       n.nspname::text AS "relationSchema", c.relname::text AS "relationName",
       l.classid::text AS classid, l.objid::text AS objid, l.objsubid,
       CASE WHEN l.granted THEN NULL ELSE (extract(epoch FROM clock_timestamp() - l.waitstart) * 1000)::float8 END AS "waitingMs",
       l.state, left(l.query, $1::int) AS query, l.xact_start AS "transactionStart",
       CASE WHEN l.granted THEN '{}'::int[] ELSE coalesce(w.blockers, '{}'::int[]) END AS "blockedBy",
       CASE WHEN NOT l.granted THEN '{}'::int[] ELSE ARRAY(
         SELECT DISTINCT x.pid FROM l x JOIN w wx ON wx.pid = x.pid
          WHERE NOT x.granted AND l.pid = ANY(wx.blockers)
            AND x.locktype = l.locktype
            AND x.database IS NOT DISTINCT FROM l.database AND x.relation IS NOT DISTINCT FROM l.relation
            AND x.page IS NOT DISTINCT FROM l.page AND x.tuple IS NOT DISTINCT FROM l.tuple
            AND x.virtualxid IS NOT DISTINCT FROM l.virtualxid AND x.transactionid IS NOT DISTINCT FROM l.transactionid
            AND x.classid IS NOT DISTINCT FROM l.classid AND x.objid IS NOT DISTINCT FROM l.objid
            AND x.objsubid IS NOT DISTINCT FROM l.objsubid
          ORDER BY x.pid) END AS "blocking"
  FROM l
  LEFT JOIN w ON w.pid = l.pid
  LEFT JOIN pg_class c ON l.locktype IN ('relation', 'page', 'tuple') AND c.oid = l.relation
  LEFT JOIN pg_namespace n ON n.oid = c.relnamespace
 ORDER BY l.pid, l.granted DESC, l.locktype, c.relname, l.classid, l.objid`;

interface LockRow extends Row {
  pid: number;
  application: string | null;
  user: string | null;
  database: string | null;
  lockType: string;
  mode: string;
  granted: boolean;
  relationSchema: string | null;
  relationName: string | null;
  classid: string | null;
  objid: string | null;
  objsubid: number | null;
  waitingMs: number | string | null;
  state: string | null;
  query: string | null;
  transactionStart: Date | string | null;
  blockedBy: unknown;
  blocking: unknown;
}

interface LeaseRow extends Row {
  name: string;
  owner: string;
  token: string | bigint;
  acquiredAt: Date | string;
  renewedAt: Date | string;
  expiresAt: Date | string;
  expired: boolean;
  at: Date | string;
}

const OPTION_NAMES = new Set(['blockedOnly', 'relation', 'queryLength', 'includeInternal', 'leaseTable']);
const INTERNAL_LOCK_TYPES = new Set(['virtualxid', 'transactionid']);

/**
 * Lists the locks of the executor's database (held and awaited, every session but the one
 * asking), who waits for whom, and the leases. One snapshot; it takes no lock itself.
 */
export async function inspectLocks(executor: Pick<Executor, 'query'>, options: InspectOptions = {}, context: InspectContext = {}): Promise<Inspection> {
  const opts = checkInspectOptions(options);
  const [clock] = await executor.query<{ at: Date | string } & Row>('SELECT clock_timestamp() AS at');
  const rows = await executor.query<LockRow>(LOCKS_SQL, [opts.queryLength]);
  let locks = rows.map((row) => toLockInfo(row, context));
  if (!opts.includeInternal) locks = locks.filter((lock) => !INTERNAL_LOCK_TYPES.has(lock.lockType) || !lock.granted || lock.blocking.length > 0);
  if (opts.blockedOnly) locks = locks.filter((lock) => !lock.granted || lock.blocking.length > 0);
  if (opts.relations) {
    const wanted = opts.relations;
    locks = locks.filter(
      (lock) =>
        lock.relation !== null &&
        (wanted.has(lock.relation.name) || wanted.has(`${lock.relation.schema}.${lock.relation.name}`) || (lock.relation.model !== undefined && wanted.has(lock.relation.model))),
    );
  }
  const leases = opts.leaseTable === false ? [] : await readLeases(executor, opts.leaseTable);
  return { at: new Date(clock?.at ?? Date.now()), locks, leases };
}

function checkInspectOptions(options: unknown): {
  blockedOnly: boolean;
  relations?: ReadonlySet<string>;
  queryLength: number;
  includeInternal: boolean;
  leaseTable: LeaseTableOptions | false;
} {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) throw new InvalidLockArgumentError('options', `expected an object, got ${describe(options)}`);
  const opts = options as Record<string, unknown>;
  for (const name of Object.keys(opts)) {
    if (!OPTION_NAMES.has(name)) throw new InvalidLockArgumentError(`options.${name}`, 'unknown option');
  }
  const { blockedOnly = false, relation, queryLength = 200, includeInternal = false, leaseTable = {} } = opts;
  if (typeof blockedOnly !== 'boolean') throw new InvalidLockArgumentError('options.blockedOnly', 'expected a boolean');
  if (typeof includeInternal !== 'boolean') throw new InvalidLockArgumentError('options.includeInternal', 'expected a boolean');
  if (!Number.isSafeInteger(queryLength) || (queryLength as number) < 0) throw new InvalidLockArgumentError('options.queryLength', 'expected a non-negative integer');
  let relations: Set<string> | undefined;
  if (relation !== undefined) {
    const list = typeof relation === 'string' ? [relation] : relation;
    if (!Array.isArray(list) || !list.every((item) => typeof item === 'string')) {
      throw new InvalidLockArgumentError('options.relation', `expected a table or model name, or an array of them, got ${describe(relation)}`);
    }
    relations = new Set(list as string[]);
  }
  if (leaseTable !== false && (typeof leaseTable !== 'object' || leaseTable === null)) {
    throw new InvalidLockArgumentError('options.leaseTable', 'expected { schema?, table? } or false');
  }
  return { blockedOnly, relations, queryLength: queryLength as number, includeInternal, leaseTable: leaseTable as LeaseTableOptions | false };
}

function toLockInfo(row: LockRow, context: InspectContext): LockInfo {
  const relation =
    row.relationName === null || row.relationName === undefined
      ? null
      : withModel(row.relationSchema ?? '', row.relationName, context.modelOf?.(row.relationSchema ?? '', row.relationName));
  return {
    pid: Number(row.pid),
    application: row.application ?? '',
    user: row.user ?? null,
    database: row.database ?? null,
    lockType: row.lockType,
    mode: row.mode,
    granted: row.granted === true,
    relation,
    advisoryKey: row.lockType === 'advisory' && row.classid !== null && row.objid !== null ? inspectedKey(advisoryKeyFromLock(row.classid, row.objid, row.objsubid ?? 1)) : null,
    waitingMs: row.waitingMs === null || row.waitingMs === undefined ? null : Number(row.waitingMs),
    state: row.state ?? null,
    query: row.query ?? null,
    transactionStart: row.transactionStart === null || row.transactionStart === undefined ? null : new Date(row.transactionStart),
    blockedBy: pidList(row.blockedBy),
    blocking: pidList(row.blocking),
  };
}

function withModel(schema: string, name: string, model: string | undefined): NonNullable<LockInfo['relation']> {
  return model === undefined ? { schema, name } : { schema, name, model };
}

function inspectedKey(key: AdvisoryKey): InspectedAdvisoryKey {
  if (key.kind === 'pair') return { kind: 'pair', namespace: key.namespace, id: key.id };
  return typeof key.source === 'string' ? { kind: 'int8', value: key.value, key: key.source } : { kind: 'int8', value: key.value };
}

/** node-postgres and Prisma return `int[]` as an array; other drivers may return `{1,2}`. */
function pidList(value: unknown): number[] {
  if (Array.isArray(value)) return value.map(Number);
  if (typeof value === 'string') return value.replace(/[{}]/g, '').split(',').filter(Boolean).map(Number);
  return [];
}

async function readLeases(executor: Pick<Executor, 'query'>, table: LeaseTableOptions): Promise<LeaseInfo[]> {
  const names = leaseTableNames(table);
  // The lease table belongs to the lease feature and may not exist: look before reading.
  const [found] = await executor.query<{ present: boolean } & Row>('SELECT to_regclass($1) IS NOT NULL AS present', [names.qualified]);
  if (found?.present !== true) return [];
  const rows = await executor.query<LeaseRow>(
    `SELECT name, owner, token::text AS token, acquired_at AS "acquiredAt", renewed_at AS "renewedAt", expires_at AS "expiresAt", ` +
      `expires_at <= clock_timestamp() AS expired FROM ${names.qualified} WHERE left(name, 1) <> chr(1) ORDER BY name`, // not the waiter lines' rows
  );
  return rows.map((row) => ({
    name: row.name,
    owner: row.owner,
    token: BigInt(row.token),
    acquiredAt: new Date(row.acquiredAt),
    renewedAt: new Date(row.renewedAt),
    expiresAt: new Date(row.expiresAt),
    expired: row.expired === true,
  }));
}

/**
 * An {@link Inspection} as plain JSON values: bigints as decimal strings, dates as ISO strings.
 * What `ormlock status --json` prints.
 */
export function inspectionToJson(inspection: Inspection): unknown {
  return JSON.parse(JSON.stringify(inspection, (_key, value: unknown) => (typeof value === 'bigint' ? value.toString() : value)));
}

/** `inspect()` as every layer exposes it. */
export type InspectMethod = (options?: InspectOptions) => Promise<Inspection>;

/** Builds `inspect()` over the executor a binding uses. */
export function inspectMethod(executorOf: () => Pick<Executor, 'query'>, context: InspectContext = {}): InspectMethod {
  return (options) => inspectLocks(executorOf(), options ?? {}, context);
}
