import { type Column, Column as ColumnClass, type SQL, getTableColumns, is, SQL as SQLClass } from 'drizzle-orm';
import { PgDialect, type PgColumn, type PgTable, type PgUpdateSetSource, getTableConfig } from 'drizzle-orm/pg-core';
import { describe } from '../core/duration.js';
import { InvalidLockArgumentError } from '../core/errors.js';
import type { Executor, Row } from '../core/executor.js';
import {
  ROW_LOCK_OPTION_NAMES,
  type OrderTerm,
  type RowLockOptions,
  type RowLockStrength,
  type SelectColumn,
  type SetItem,
  type TableRef,
  type ClaimCall,
  checkOptionNames,
  claimRows,
  claimStatement,
  runClaimStatement,
  shapePart,
  countOption,
  isOneRowClaim,
  isPlainObject,
  lockRows,
  planRowWait,
} from '../core/row-lock.js';
import type { SqlFragment } from '../core/sql-fragment.js';
import { type TableLockOptions, lockTables, planTableLock } from '../core/table-lock.js';
import { renderCondition } from './render-sql.js';
import { directPoolQuery } from './drizzle-executor.js';

/** One `orderBy` item: a column (ascending), or Drizzle's `asc(column)` / `desc(column)` / any `SQL`. */
export type DrizzleOrderBy = PgColumn | SQL | SQL.Aliased;

/** What `$lock(tx).row(table, query)` takes. */
export type DrizzleRowQuery = {
  /** Which rows: a Drizzle condition such as `eq(accounts.id, 1)` or `and(…)`. */
  readonly where?: SQL;
  /** The order rows are locked and returned in. Lock in a fixed order to avoid deadlocks. */
  readonly orderBy?: DrizzleOrderBy | readonly DrizzleOrderBy[];
  /** Lock at most this many rows (`LIMIT`). */
  readonly limit?: number;
  /** Skip this many rows first (`OFFSET`). */
  readonly offset?: number;
} & RowLockOptions;

/** What `$lock(dbOrTx).claim(table, query)` takes. */
export interface DrizzleClaimQuery<T extends PgTable> {
  /** Which rows may be claimed: a Drizzle condition such as `eq(jobs.status, 'pending')`. */
  readonly where?: SQL;
  /** Which rows to claim first (e.g. `asc(jobs.id)` for FIFO). */
  readonly orderBy?: DrizzleOrderBy | readonly DrizzleOrderBy[];
  /** How many rows to claim at most. Default 1. */
  readonly limit?: number;
  /** Values to write to the claimed rows in the same statement, as `update(table).set(…)` takes them. */
  readonly set?: PgUpdateSetSource<T>;
  /** `'update'` (default) or `'noKeyUpdate'`. */
  readonly strength?: Extract<RowLockStrength, 'update' | 'noKeyUpdate'>;
}

/** Row and table locks on a Drizzle database or transaction. */
export interface DrizzleRowLocks {
  /**
   * Locks the rows of `table` that `where` selects (`SELECT … FOR UPDATE`) and returns them as
   * `select().from(table)` would. Held until the transaction ends: call it on a transaction.
   * A busy row waits (bounded by `timeout`), fails at once with `nowait`, or is left out with `skipLocked`.
   *
   * @example
   * ```ts
   * await db.transaction(async (tx) => {
   *   const [a, b] = await $lock(tx).row(accounts, { where: inArray(accounts.id, [from, to]), orderBy: accounts.id });
   *   …
   * });
   * ```
   */
  row<T extends PgTable>(table: T, query?: DrizzleRowQuery): Promise<T['$inferSelect'][]>;
  /**
   * Claims up to `limit` rows with `FOR UPDATE SKIP LOCKED` (concurrent workers get disjoint rows),
   * optionally updating them with `set` in the same statement; with `set` it also works on a database
   * outside a transaction.
   *
   * @example
   * ```ts
   * const claimed = await $lock(db).claim(jobs, {
   *   where: eq(jobs.status, 'pending'), orderBy: jobs.id, limit: 10,
   *   set: { status: 'running', attempts: sql`${jobs.attempts} + 1` },
   * });
   * ```
   */
  claim<T extends PgTable>(table: T, query?: DrizzleClaimQuery<T>): Promise<T['$inferSelect'][]>;
  /**
   * Locks whole tables (`LOCK TABLE … IN <mode> MODE`, default `'accessExclusive'`) until the
   * transaction ends; several tables are locked in one statement, in a fixed order.
   */
  model(tables: PgTable | readonly PgTable[], options?: TableLockOptions): Promise<void>;
}

interface TableInfo {
  readonly table: TableRef;
  readonly columns: Record<string, Column>;
  /** The columns whose driver values Drizzle maps (timestamps, numbers sent as text, json …), by key. */
  readonly decoded: readonly (readonly [key: string, column: Column])[];
  /** The primary key, when it is one column (`.primaryKey()`). */
  readonly key: Column | undefined;
  /** Whether every column is one of Drizzle's own types (no `customType`): see BUILT_IN_TYPES. */
  readonly builtInTypes: boolean;
}

// getTableConfig() builds every index, check and foreign key of the table: once per table is enough.
const tableInfos = new WeakMap<object, TableInfo>();

function tableInfo(table: unknown, argument = 'table'): TableInfo {
  const cached = typeof table === 'object' && table !== null ? tableInfos.get(table) : undefined;
  if (cached) return cached;
  let config: ReturnType<typeof getTableConfig>;
  try {
    config = getTableConfig(table as PgTable);
  } catch {
    throw new InvalidLockArgumentError(argument, `expected a Drizzle pgTable, got ${describe(table)}`);
  }
  if (typeof config?.name !== 'string') throw new InvalidLockArgumentError(argument, `expected a Drizzle pgTable, got ${describe(table)}`);
  const columns = getTableColumns(table as PgTable);
  // A column that keeps driver values as they are (text, boolean …) is left out of decoding.
  const decoded = Object.entries(columns).filter(([, column]) => column.mapFromDriverValue !== ColumnClass.prototype.mapFromDriverValue);
  const primary = Object.values(columns).filter((column) => column.primary);
  const key = primary.length === 1 && config.primaryKeys.length === 0 ? primary[0] : undefined;
  const builtInTypes = Object.values(columns).every((column) => BUILT_IN_TYPES.has(innermost(column).columnType));
  const info: TableInfo = { table: { schema: config.schema ?? null, name: config.name }, columns, decoded, key, builtInTypes };
  tableInfos.set(table as object, info);
  return info;
}

const ROW_OPTIONS = [...ROW_LOCK_OPTION_NAMES, 'where', 'orderBy', 'limit', 'offset'];
const CLAIM_OPTIONS = ['where', 'orderBy', 'limit', 'set', 'strength'];

/** Builds `row`, `claim` and `model` for a Drizzle database or transaction. */
export function drizzleRowLocks(executorOf: () => Executor, dbOrTx: unknown): DrizzleRowLocks {
  const dialect = dialectOf(dbOrTx);
  // The column's name in the database, after the instance's `casing` option (snake_case …).
  const casing = (dialect as unknown as { casing?: { getColumnCasing?(column: Column): string } }).casing;
  const columnName = (column: Column): string => casing?.getColumnCasing?.(column) ?? column.name;
  const render = (value: SQL, argument: string): SqlFragment => {
    if (!(value instanceof SQLClass) && !is(value, SQLClass)) throw new InvalidLockArgumentError(argument, `expected a Drizzle SQL condition (eq(…), and(…), sql\`…\`), got ${describe(value)}`);
    return renderCondition(dialect, value);
  };
  const orderTerms = (orderBy: unknown): OrderTerm[] | undefined => {
    if (orderBy === undefined) return undefined;
    const items: unknown[] = Array.isArray(orderBy) ? orderBy : [orderBy];
    return items.map((item, index) => {
      const argument = Array.isArray(orderBy) ? `query.orderBy[${index}]` : 'query.orderBy';
      if (isColumn(item)) return { column: columnName(item) };
      if (is(item, SQLClass.Aliased)) return render((item as SQL.Aliased).sql, argument);
      return render(item as SQL, argument);
    });
  };
  // A table's select list and key column, by this instance's casing: built once per table.
  const names = new WeakMap<TableInfo, { columns: SelectColumn[]; key: string | undefined }>();
  const namesOf = (info: TableInfo): { columns: SelectColumn[]; key: string | undefined } => {
    let known = names.get(info);
    if (known === undefined) {
      known = {
        columns: Object.entries(info.columns).map(([key, column]) => ({ column: columnName(column), as: key, ...(readAsText(column) ? { cast: 'text' as const } : {}) })),
        key: info.key === undefined ? undefined : columnName(info.key),
      };
      names.set(info, known);
    }
    return known;
  };
  const spec = (info: TableInfo, opts: Record<string, unknown>, limitName: string) => ({
    table: info.table,
    ...namesOf(info),
    where: opts['where'] === undefined ? undefined : render(opts['where'] as SQL, 'query.where'),
    orderBy: orderTerms(opts['orderBy']),
    limit: countOption(opts[limitName], `query.${limitName}`),
  });
  // A claim outside a transaction on a node-postgres pool runs on the pool itself when node-postgres
  // reads every column of the table as the Drizzle session would (see directPoolQuery).
  const direct = directPoolQuery(dbOrTx);
  let directExecutor: Executor | undefined;
  const claimExecutor = (info: TableInfo, executor: Executor): Executor => {
    if (direct === undefined || executor.inTransaction || !info.builtInTypes) return executor;
    return (directExecutor ??= { ...executor, query: direct, savepoint: undefined });
  };
  // This instance's claims name their table and casing by these numbers in their shapes.
  const shapePrefix = `dz${instanceNumber(dialect)}.`;
  /**
   * A claim that updates as its shape and values (see ClaimCall), in the order the built
   * statement binds them: the condition's values, those of `orderBy` terms given as SQL, the
   * limit, the `set` values. Undefined for a call it does not describe (the full path then
   * validates and builds it, and makes the errors).
   */
  const claimCall = (info: TableInfo, opts: Record<string, unknown>, strength: unknown): ClaimCall | undefined => {
    if (strength !== 'update' && strength !== 'noKeyUpdate') return undefined;
    const limit = opts['limit'] === undefined ? 1 : opts['limit'];
    if (typeof limit !== 'number' || !Number.isSafeInteger(limit) || limit < 0) return undefined;
    const params: unknown[] = [];
    let shape = `${shapePrefix}${instanceNumber(info)}${strength === 'update' ? 'U' : 'N'}`;
    const add = (value: unknown): boolean => {
      if (!(value instanceof SQLClass)) return false;
      const fragment = renderCondition(dialect, value);
      shape += shapePart(fragment.text);
      for (const param of fragment.params) params.push(param);
      return true;
    };
    const where = opts['where'];
    shape += 'w';
    if (where !== undefined && !add(where)) return undefined;
    shape += 'o';
    const orderBy = opts['orderBy'];
    if (orderBy !== undefined) {
      for (const item of Array.isArray(orderBy) ? orderBy : [orderBy]) {
        if (isColumn(item)) shape += `c${shapePart(columnName(item))}`;
        else {
          shape += 'f';
          if (!add(item instanceof SQLClass.Aliased ? item.sql : item)) return undefined;
        }
      }
    }
    shape += isOneRowClaim(limit) ? 'l1s' : 'lns';
    params.push(limit);
    const set = opts['set'];
    if (!isPlainObject(set)) return undefined;
    let assigned = false;
    for (const key of Object.keys(set)) {
      const value = set[key];
      if (value === undefined) continue;
      const column = Object.hasOwn(info.columns, key) ? info.columns[key] : undefined;
      if (column === undefined) return undefined;
      assigned = true;
      shape += shapePart(columnName(column));
      if (value === null) shape += 'n';
      else if (value instanceof SQLClass) {
        shape += 's';
        add(value);
      } else if (typeof value === 'object' && is(value, SQLClass)) return undefined;
      else {
        shape += 'v';
        params.push(column.mapToDriverValue(value));
      }
    }
    return assigned ? { shape, params } : undefined;
  };
  return {
    async row(table, query) {
      const info = tableInfo(table);
      const opts = checkOptionNames(query, ROW_OPTIONS, 'query');
      const plan = planRowWait(opts, 'query');
      const rows = await lockRows<Row>(executorOf(), { ...spec(info, opts, 'limit'), offset: countOption(opts['offset'], 'query.offset') }, plan);
      return decodeRows(info, rows) as never;
    },
    async claim(table, query) {
      const info = tableInfo(table);
      const opts = checkOptionNames(query, CLAIM_OPTIONS, 'query');
      const { strength = 'update' } = opts;
      const executor = claimExecutor(info, executorOf());
      // A claim that updates, of a shape seen before, runs its remembered statement.
      const call = opts['set'] === undefined ? undefined : claimCall(info, opts, strength);
      const statement = call === undefined ? undefined : claimStatement(call);
      if (call !== undefined && statement !== undefined) return decodeRows(info, await runClaimStatement<Row>(executor, statement, call.params)) as never;
      const base = spec(info, opts, 'limit');
      const set = opts['set'] === undefined ? undefined : setItems(info, opts['set'], render, columnName);
      const rows = await claimRows<Row>(executor, { ...base, limit: base.limit ?? 1 }, strength, set, call);
      return decodeRows(info, rows) as never;
    },
    async model(tables, options) {
      const list: unknown[] = Array.isArray(tables) ? tables : [tables];
      const plan = planTableLock(
        list.map((table, index) => tableInfo(table, Array.isArray(tables) ? `tables[${index}]` : 'tables').table),
        options,
      );
      await lockTables(executorOf(), plan);
    },
  };
}

// Drizzle's column types whose values node-postgres reads the same way on its own as through a
// Drizzle session, once the columns of READ_AS_TEXT are read as text. Not customType: its SQL
// type may be a domain over a date type, which the server describes as the date type itself.
const BUILT_IN_TYPES = new Set([
  'PgBigInt53', 'PgBigInt64', 'PgBigSerial53', 'PgBigSerial64', 'PgBoolean', 'PgChar', 'PgCidr', 'PgDate', 'PgDateString',
  'PgDoublePrecision', 'PgEnumObjectColumn', 'PgEnumColumn', 'PgInet', 'PgInteger', 'PgInterval', 'PgJson', 'PgJsonb', 'PgLine',
  'PgLineABC', 'PgMacaddr', 'PgMacaddr8', 'PgNumeric', 'PgNumericNumber', 'PgNumericBigInt', 'PgPointTuple', 'PgPointObject',
  'PgReal', 'PgSerial', 'PgSmallInt', 'PgSmallSerial', 'PgText', 'PgTime', 'PgTimestamp', 'PgTimestampString', 'PgUUID',
  'PgVarchar', 'PgGeometry', 'PgGeometryObject', 'PgBinaryVector', 'PgHalfVector', 'PgSparseVector', 'PgVector',
]);

// A Drizzle session on node-postgres hands these types' values on as the server's text (its
// query config overrides node-postgres's parsers for timestamp, timestamptz, date, interval and
// their arrays, and numeric arrays); postgres.js, as Drizzle sets it up, does too. ormlock's
// statements read these columns `::text`, which gives that same text on every path, including
// its claims straight on a node-postgres pool (directPoolQuery).
const READ_AS_TEXT = new Set(['PgTimestamp', 'PgTimestampString', 'PgDate', 'PgDateString', 'PgInterval']);
const ARRAY_READ_AS_TEXT = new Set([...READ_AS_TEXT, 'PgNumeric', 'PgNumericNumber', 'PgNumericBigInt']);

/** The element column of an array column (of an array of arrays …), or the column itself. */
function innermost(column: Column): Column {
  let inner = column;
  while (inner.columnType === 'PgArray' && (inner as unknown as { baseColumn?: Column }).baseColumn !== undefined) inner = (inner as unknown as { baseColumn: Column }).baseColumn;
  return inner;
}

function readAsText(column: Column): boolean {
  const inner = innermost(column);
  return inner === column ? READ_AS_TEXT.has(column.columnType) : ARRAY_READ_AS_TEXT.has(inner.columnType);
}

// Numbers for objects in claim shapes (a table's info, a dialect). A number is never given twice,
// so a remembered shape can name no other object than the one it was made for.
const instanceNumbers = new WeakMap<object, number>();
let lastInstanceNumber = 0;

function instanceNumber(object: object): number {
  let known = instanceNumbers.get(object);
  if (known === undefined) instanceNumbers.set(object, (known = ++lastInstanceNumber));
  return known;
}

function isColumn(value: unknown): value is PgColumn {
  return typeof value === 'object' && value !== null && 'columnType' in value && 'table' in value && typeof (value as { name?: unknown }).name === 'string';
}

function dialectOf(dbOrTx: unknown): PgDialect {
  const own = (dbOrTx as { dialect?: unknown }).dialect;
  return is(own, PgDialect) ? own : new PgDialect();
}

function setItems(info: TableInfo, set: unknown, render: (value: SQL, argument: string) => SqlFragment, columnName: (column: Column) => string): SetItem[] {
  if (typeof set !== 'object' || set === null || Array.isArray(set)) throw new InvalidLockArgumentError('query.set', `expected an object of column values, got ${describe(set)}`);
  const items: SetItem[] = [];
  for (const [key, value] of Object.entries(set)) {
    if (value === undefined) continue;
    const column = Object.hasOwn(info.columns, key) ? info.columns[key] : undefined;
    if (!column) throw new InvalidLockArgumentError(`query.set.${key}`, `not a column of "${info.table.name}"`);
    const name = columnName(column);
    if (value === null) items.push({ column: name, value: { text: 'NULL', params: [] } });
    else if (is(value, SQLClass)) items.push({ column: name, value: render(value, `query.set.${key}`) });
    else items.push({ column: name, value: { text: '$1', params: [column.mapToDriverValue(value)] } });
  }
  return items;
}

/** Decodes driver values with each column's own mapping, as `select()` does. */
function decodeRows(info: TableInfo, rows: Row[]): Row[] {
  if (info.decoded.length === 0) return rows;
  for (const row of rows) {
    for (const [key, column] of info.decoded) {
      const value = row[key];
      if (value !== null && value !== undefined) row[key] = column.mapFromDriverValue(value);
    }
  }
  return rows;
}
