import { describe } from '../core/duration.js';
import { InvalidLockArgumentError } from '../core/errors.js';
import type { Executor, Row } from '../core/executor.js';
import {
  ROW_LOCK_OPTION_NAMES,
  type OrderTerm,
  type RowLockOptions,
  type RowLockStrength,
  type SetItem,
  type TableRef,
  type ClaimCall,
  checkOptionNames,
  claimStatement,
  claimRows,
  countOption,
  isOneRowClaim,
  isPlainObject,
  lockRows,
  planRowWait,
  qualifiedTable,
  runClaimStatement,
  shapePart,
} from '../core/row-lock.js';
import { SqlBuilder, type SqlFragment } from '../core/sql-fragment.js';
import { quoteIdent } from '../core/sql.js';
import { type TableLockOptions, lockTables, planTableLock } from '../core/table-lock.js';

/** A table: its name (not parsed: `'my.table'` is one name), or `{ schema, name }`. */
export type PgTableName =
  | string
  | {
      /** The schema; default: the connection's `search_path` decides. */
      readonly schema?: string;
      /** The table's name, as is (never parsed). */
      readonly name: string;
    };

/**
 * Which rows, as plain values by column name, all of which must hold: a value means `=`, `null`
 * means `IS NULL`, an array means `= ANY(…)` (one of).
 */
export type PgWhere = { readonly [column: string]: unknown };

/** `{ id: 'asc' }`, or several in order: `[{ run_at: 'asc' }, { id: 'asc' }]`. */
export type PgOrderBy = { readonly [column: string]: 'asc' | 'desc' } | readonly { readonly [column: string]: 'asc' | 'desc' }[];

/** What `$lock(client).row(table, query)` takes. */
export type PgRowQuery = {
  /** Which rows: plain values by column name (see {@link PgWhere}). */
  readonly where?: PgWhere;
  /** The order rows are locked and returned in. Lock in a fixed order to avoid deadlocks. */
  readonly orderBy?: PgOrderBy;
  /** Lock at most this many rows (`LIMIT`). */
  readonly limit?: number;
  /** Skip this many rows first (`OFFSET`). */
  readonly offset?: number;
} & RowLockOptions;

/** What `$lock(poolOrClient).claim(table, query)` takes. */
export interface PgClaimQuery {
  /** Which rows may be claimed: plain values by column name (see {@link PgWhere}). */
  readonly where?: PgWhere;
  /** Which rows to claim first (e.g. `{ id: 'asc' }` for FIFO). */
  readonly orderBy?: PgOrderBy;
  /** How many rows to claim at most. Default 1. */
  readonly limit?: number;
  /** Plain values to write to the claimed rows in the same statement, by column name. */
  readonly set?: { readonly [column: string]: unknown };
  /** `'update'` (default) or `'noKeyUpdate'`. */
  readonly strength?: Extract<RowLockStrength, 'update' | 'noKeyUpdate'>;
}

/** Row and table locks on a node-postgres pool or client. */
export interface PgRowLocks {
  /**
   * Locks the rows of `table` matching `where` (`SELECT * … FOR UPDATE`) and returns them as
   * node-postgres does. Needs a transaction open on the client.
   *
   * @example
   * ```ts
   * await client.query('BEGIN');
   * const rows = await $lock(client).row('accounts', { where: { id: [1, 2] }, orderBy: { id: 'asc' }, timeout: '2s' });
   * ```
   */
  row<R extends Row = Row>(table: PgTableName, query?: PgRowQuery): Promise<R[]>;
  /**
   * Claims up to `limit` rows with `FOR UPDATE SKIP LOCKED`, optionally updating them with `set`
   * in the same statement (then it also works on a pool or outside a transaction).
   */
  claim<R extends Row = Row>(table: PgTableName, query?: PgClaimQuery): Promise<R[]>;
  /** `LOCK TABLE … IN <mode> MODE` (default `'accessExclusive'`), several tables in a fixed order. */
  model(tables: PgTableName | readonly PgTableName[], options?: TableLockOptions): Promise<void>;
}

function tableRef(table: unknown, argument = 'table'): TableRef {
  if (typeof table === 'string' && table.length > 0) return { name: table };
  if (typeof table === 'object' && table !== null && typeof (table as { name?: unknown }).name === 'string') {
    const { schema, name } = table as { schema?: unknown; name: string };
    if (schema !== undefined && typeof schema !== 'string') throw new InvalidLockArgumentError(`${argument}.schema`, `expected a string, got ${describe(schema)}`);
    if (name.length === 0) throw new InvalidLockArgumentError(`${argument}.name`, 'expected a table name');
    return { schema: schema ?? null, name };
  }
  throw new InvalidLockArgumentError(argument, `expected a table name or { schema, name }, got ${describe(table)}`);
}

function whereFragment(where: unknown): SqlFragment | undefined {
  if (where === undefined) return undefined;
  if (typeof where !== 'object' || where === null || Array.isArray(where)) throw new InvalidLockArgumentError('query.where', `expected an object of column values, got ${describe(where)}`);
  const builder = new SqlBuilder();
  const parts: string[] = [];
  for (const [column, value] of Object.entries(where)) {
    if (value === undefined) continue;
    if (value === null) parts.push(`${quoteIdent(column)} IS NULL`);
    else if (Array.isArray(value)) parts.push(`${quoteIdent(column)} = ANY(${builder.param(value)})`);
    else parts.push(`${quoteIdent(column)} = ${builder.param(value)}`);
  }
  return parts.length === 0 ? undefined : { text: parts.join(' AND '), params: builder.params };
}

function orderTerms(orderBy: unknown): OrderTerm[] | undefined {
  if (orderBy === undefined) return undefined;
  const items: unknown[] = Array.isArray(orderBy) ? orderBy : [orderBy];
  return items.flatMap((item) => {
    if (typeof item !== 'object' || item === null) throw new InvalidLockArgumentError('query.orderBy', `expected { column: 'asc' | 'desc' }, got ${describe(item)}`);
    return Object.entries(item).map(([column, direction]) => ({ column, direction: direction as 'asc' | 'desc' }));
  });
}

function setItems(set: unknown): SetItem[] | undefined {
  if (set === undefined) return undefined;
  if (typeof set !== 'object' || set === null || Array.isArray(set)) throw new InvalidLockArgumentError('query.set', `expected an object of column values, got ${describe(set)}`);
  return Object.entries(set)
    .filter(([, value]) => value !== undefined)
    .map(([column, value]) => ({ column, value: value === null ? { text: 'NULL', params: [] } : { text: '$1', params: [value] } }));
}

const ROW_OPTIONS = [...ROW_LOCK_OPTION_NAMES, 'where', 'orderBy', 'limit', 'offset'];
const CLAIM_OPTIONS = ['where', 'orderBy', 'limit', 'set', 'strength'];

/** Builds `row`, `claim` and `model` over the executor a pool or client resolves to at each call. */
export function pgRowLocks(executorOf: () => Executor): PgRowLocks {
  const keys = new PrimaryKeys();
  return {
    async row<R extends Row>(table: PgTableName, query?: PgRowQuery) {
      const ref = tableRef(table);
      const opts = checkOptionNames(query, ROW_OPTIONS, 'query');
      const plan = planRowWait(opts, 'query');
      return lockRows<R>(
        executorOf(),
        {
          table: ref,
          columns: [],
          where: whereFragment(opts['where']),
          orderBy: orderTerms(opts['orderBy']),
          limit: countOption(opts['limit'], 'query.limit'),
          offset: countOption(opts['offset'], 'query.offset'),
        },
        plan,
      );
    },
    async claim<R extends Row>(table: PgTableName, query?: PgClaimQuery) {
      const ref = tableRef(table);
      const opts = checkOptionNames(query, CLAIM_OPTIONS, 'query');
      const { strength = 'update' } = opts;
      const limit = countOption(opts['limit'], 'query.limit') ?? 1;
      const executor = executorOf();
      const call = opts['set'] === undefined ? undefined : claimCall(ref, opts, limit, strength);
      // The primary key the statement matched its row by: forgotten when the claim fails (the
      // table may have changed), so the next claim reads it again.
      let key: string | undefined;
      try {
        // A claim that updates, of a shape seen before, runs its remembered statement.
        const knownKey = call !== undefined && isOneRowClaim(limit) ? keys.known(ref) : null;
        if (call !== undefined && knownKey !== undefined) {
          const shaped = withKey(call, knownKey);
          const statement = claimStatement(shaped);
          if (statement !== undefined) {
            key = knownKey ?? undefined;
            return await runClaimStatement<R>(executor, statement, shaped.params);
          }
        }
        const set = setItems(opts['set']);
        const where = whereFragment(opts['where']);
        const orderBy = orderTerms(opts['orderBy']);
        // Only a claim that updates uses the key (see buildClaimUpdate).
        const known = isOneRowClaim(limit) && set !== undefined && set.length > 0 ? keys.of(executor, ref) : undefined;
        key = known instanceof Promise ? await known : known;
        const shaped = call === undefined ? undefined : withKey(call, key ?? null);
        return await claimRows<R>(executor, { table: ref, columns: [], where, orderBy, limit, key }, strength, set, shaped);
      } catch (error) {
        if (key !== undefined) keys.forget(ref);
        throw error;
      }
    },
    async model(tables, options) {
      const list: unknown[] = Array.isArray(tables) ? tables : [tables];
      await lockTables(executorOf(), planTableLock(list.map((table) => tableRef(table, 'tables')), options));
    },
  };
}

/** A claim's shape with the key it matches its row by (or none). */
function withKey(call: ClaimCall, key: string | null): ClaimCall {
  return { shape: `${call.shape}k${key === null ? '-' : shapePart(key)}`, params: call.params };
}

/**
 * A claim that updates as its shape and values (see {@link ClaimCall}), in the order the built
 * statement binds them: the `where` values, the limit, the `set` values. Undefined for a call it
 * does not describe (anything but plain objects of values, a direction other than `'asc'` or
 * `'desc'`, nothing to set): the full path then validates and builds it.
 */
function claimCall(ref: TableRef, opts: Record<string, unknown>, limit: number, strength: unknown): ClaimCall | undefined {
  if (strength !== 'update' && strength !== 'noKeyUpdate') return undefined;
  const params: unknown[] = [];
  let shape = `pg${ref.schema ? shapePart(ref.schema) : '-'}${shapePart(ref.name)}${strength === 'update' ? 'U' : 'N'}w`;
  const where = opts['where'];
  if (where !== undefined) {
    if (!isPlainObject(where)) return undefined;
    for (const column in where) {
      const value = where[column];
      if (value === undefined) continue;
      if (value === null) shape += `${shapePart(column)}n`;
      else {
        shape += `${shapePart(column)}${Array.isArray(value) ? 'a' : 'v'}`;
        params.push(value);
      }
    }
  }
  shape += 'o';
  const orderBy = opts['orderBy'];
  if (orderBy !== undefined) {
    for (const item of Array.isArray(orderBy) ? orderBy : [orderBy]) {
      if (!isPlainObject(item)) return undefined;
      for (const column in item) {
        const direction = item[column];
        if (direction !== 'asc' && direction !== 'desc' && direction !== undefined) return undefined;
        shape += `${shapePart(column)}${direction === 'desc' ? 'd' : 'a'}`;
      }
    }
  }
  shape += isOneRowClaim(limit) ? 'l1s' : 'lns';
  params.push(limit);
  const set = opts['set'];
  if (!isPlainObject(set)) return undefined;
  let assigned = false;
  for (const column in set) {
    const value = set[column];
    if (value === undefined) continue;
    assigned = true;
    if (value === null) shape += `${shapePart(column)}n`;
    else {
      shape += `${shapePart(column)}v`;
      params.push(value);
    }
  }
  return assigned ? { shape, params } : undefined;
}

/**
 * The table's primary key when it is one column and names one row of everything an `UPDATE` of
 * the table reaches: a plain table without inheritance children, or a partitioned table (whose
 * key holds across its partitions). `$1`: the table's quoted, possibly qualified name, resolved
 * on the connection's `search_path` like the claim's own statement.
 */
const PRIMARY_KEY_SQL =
  `SELECT a.attname AS key FROM pg_catalog.pg_class c ` +
  `JOIN pg_catalog.pg_index i ON i.indrelid = c.oid AND i.indisprimary AND i.indnkeyatts = 1 ` +
  `JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum = i.indkey[0] ` +
  `WHERE c.oid = pg_catalog.to_regclass($1::text) AND (c.relkind = 'p' OR NOT c.relhassubclass)`;

/**
 * What a `$lock` root learnt of its tables' primary keys, one catalog read per table: a one-row
 * claim then updates its row by that key, the hand-written claim's statement, which PostgreSQL
 * plans faster than a match by `(tableoid, ctid)`. A claim that fails makes the table's key be
 * read again on the next claim (the table may have changed). A table without a one-column key,
 * or a lookup that fails, keeps `(tableoid, ctid)`.
 */
class PrimaryKeys {
  /** The key (or `null`: none) once read; the read in flight until then. */
  readonly #known = new Map<string, string | null | Promise<string | undefined>>();

  /** The key, without an await on the claim's path once it is known. */
  of(executor: Executor, table: TableRef): string | undefined | Promise<string | undefined> {
    const name = qualifiedTable(table);
    const known = this.#known.get(name);
    if (known !== undefined) return known ?? undefined;
    const reading = executor.query<{ key: string }>(PRIMARY_KEY_SQL, [name]).then(
      ([row]) => {
        if (this.#known.get(name) === reading) this.#known.set(name, row?.key ?? null);
        return row?.key;
      },
      () => {
        this.#known.delete(name);
        return undefined;
      },
    );
    this.#known.set(name, reading);
    return reading;
  }

  /** The key (`null`: none) once read; undefined while it is not known yet. */
  known(table: TableRef): string | null | undefined {
    const known = this.#known.get(qualifiedTable(table));
    return known instanceof Promise ? undefined : known;
  }

  forget(table: TableRef): void {
    this.#known.delete(qualifiedTable(table));
  }
}
