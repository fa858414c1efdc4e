import { type Duration, describe, parseDuration } from './duration.js';
import { InvalidLockArgumentError, NotInTransactionError } from './errors.js';
import type { Executor, Row } from './executor.js';
import { type PrioritizeOptions, type PrioritizePlan, planPrioritize } from './prioritize.js';
import { type SqlFragment, SqlBuilder } from './sql-fragment.js';
import { quoteIdent } from './sql.js';
import { effectiveTimeout, mapDriverError, runLockStatement, withLockTimeout } from './wait.js';

/**
 * How strongly rows are locked, as PostgreSQL's row-level lock modes:
 * - `'update'` (`FOR UPDATE`, the default): you will change or delete the rows; blocks every other lock on them.
 * - `'noKeyUpdate'` (`FOR NO KEY UPDATE`): you will change them but not their key; foreign-key checks
 *   of inserts elsewhere (`keyShare`) still go through. The lock a plain `UPDATE` takes.
 * - `'share'` (`FOR SHARE`): the rows must not change while you read; other `share` holders are admitted.
 * - `'keyShare'` (`FOR KEY SHARE`): only their key must not change.
 */
export type RowLockStrength = 'update' | 'noKeyUpdate' | 'share' | 'keyShare';

/**
 * What a row lock does when another transaction holds one of the rows. One union, so that the
 * impossible combinations cannot be written:
 * - wait (default), bounded by `timeout` and cancellable with `signal`;
 * - `nowait: true`: fail at once with `LockNotAvailableError`;
 * - `skipLocked: true`: leave the busy rows out of the result.
 */
export type RowLockWait =
  | {
      /** Wait for busy rows (the default). */
      readonly nowait?: false;
      /** Do not skip busy rows. */
      readonly skipLocked?: false;
      /** Bound the wait: ms or `'500ms'`, `'5s'`…; `LockTimeoutError` when it runs out (`lock_timeout` on the server). */
      readonly timeout?: Duration;
      /** Cancels the wait, on the server too: `LockAbortedError`. */
      readonly signal?: AbortSignal;
      /** While this lock waits, cancel or terminate the sessions that block it (see `docs/operations.md`). */
      readonly prioritize?: PrioritizeOptions;
    }
  | {
      /** Fail at once with `LockNotAvailableError` if a row is busy (`NOWAIT`). */
      readonly nowait: true;
      /** Not with `nowait`. */
      readonly skipLocked?: false;
      /** Not with `nowait`: nothing waits. */
      readonly timeout?: never;
      /** Not with `nowait`: nothing waits. */
      readonly signal?: never;
      /** Not with `nowait`: nothing waits. */
      readonly prioritize?: never;
    }
  | {
      /** Leave busy rows out of the result (`SKIP LOCKED`). */
      readonly skipLocked: true;
      /** Not with `skipLocked`. */
      readonly nowait?: false;
      /** Not with `skipLocked`: nothing waits. */
      readonly timeout?: never;
      /** Not with `skipLocked`: nothing waits. */
      readonly signal?: never;
      /** Not with `skipLocked`: nothing waits. */
      readonly prioritize?: never;
    };

/** Options every layer's `row()` takes besides its query. */
export type RowLockOptions = {
  /** `'update'` (default, `FOR UPDATE`), `'noKeyUpdate'`, `'share'` or `'keyShare'`. */
  readonly strength?: RowLockStrength;
} & RowLockWait;

/** A table, as its schema (optional: the `search_path` decides) and name in the database. */
export interface TableRef {
  readonly schema?: string | null;
  readonly name: string;
}

/** A column to return, under a name of the layer's choosing (Prisma field names). */
export interface SelectColumn {
  readonly column: string;
  readonly as?: string;
  /**
   * Read the column as this type (Prisma reads a `money` column as `numeric`, a list of enums as
   * `text[]`; Drizzle reads dates, times and intervals as `text`).
   */
  readonly cast?: 'numeric' | 'textArray' | 'text';
}

/** One `ORDER BY` term: a column, or a fragment an ORM rendered (Drizzle `asc(t.id)`). */
export type OrderTerm = { readonly column: string; readonly direction?: 'asc' | 'desc'; readonly nulls?: 'first' | 'last' } | SqlFragment;

/**
 * A table joined to the locked one so that its rows are locked too (`FOR UPDATE OF <table>, <alias>`).
 * An inner join: a row of the locked table without a matching row here is not selected. Join on a
 * unique key of this table (a foreign key's target), or rows of the locked table come back more than once.
 */
export interface RowJoin {
  readonly table: TableRef;
  /** The name the statement gives this table: made by the layer, never caller text. */
  readonly alias: string;
  /** `<alias>.<related> = <locked table>.<own>` for each pair. */
  readonly on: readonly { readonly own: string; readonly related: string }[];
}

/** What to lock: built by a layer from its own query shape, validated here. */
export interface RowQuerySpec {
  readonly table: TableRef;
  /** The columns to return; empty returns every column (`*`). */
  readonly columns: readonly SelectColumn[];
  /**
   * Rows to lock as well, of tables joined to `table` (see {@link RowJoin}). With joins, the
   * statement qualifies its own columns with `table`'s name, so `where` must too.
   */
  readonly joins?: readonly RowJoin[];
  readonly where?: SqlFragment;
  readonly orderBy?: readonly OrderTerm[];
  readonly limit?: number;
  readonly offset?: number;
  /**
   * The table's primary key, when it is one column the layer knows: a claim of one row then
   * matches the row by it (`id = (SELECT id …)`), the hand-written claim's plan, a little
   * cheaper to plan than matching by `(tableoid, ctid)`.
   */
  readonly key?: string;
}

/** A `SET` item of a claim: a column and the SQL of its new value. */
export interface SetItem {
  readonly column: string;
  readonly value: SqlFragment;
}

const STRENGTH_SQL: Record<RowLockStrength, string> = {
  update: 'UPDATE',
  noKeyUpdate: 'NO KEY UPDATE',
  share: 'SHARE',
  keyShare: 'KEY SHARE',
};

const WAIT_OPTIONS = ['strength', 'nowait', 'skipLocked', 'timeout', 'signal', 'prioritize'] as const;

/** The option names {@link planRowWait} reads; layers add their own to this list. */
export const ROW_LOCK_OPTION_NAMES: readonly string[] = WAIT_OPTIONS;

/** Validated row-lock options. */
export interface RowWaitPlan {
  readonly strength: RowLockStrength;
  readonly mode: 'wait' | 'nowait' | 'skipLocked';
  readonly timeoutMs?: number;
  readonly signal?: AbortSignal;
  readonly prioritize?: PrioritizePlan;
}

/** Validates `strength`, `nowait`, `skipLocked`, `timeout`, `signal` and `prioritize` before any SQL is sent. */
export function planRowWait(options: Record<string, unknown>, prefix = 'options'): RowWaitPlan {
  const { strength = 'update', nowait, skipLocked, timeout, signal, prioritize } = options;
  if (typeof strength !== 'string' || !Object.hasOwn(STRENGTH_SQL, strength)) {
    throw new InvalidLockArgumentError(`${prefix}.strength`, `expected one of ${Object.keys(STRENGTH_SQL).map((s) => `'${s}'`).join(', ')}, got ${describe(strength)}`);
  }
  for (const [name, value] of [['nowait', nowait], ['skipLocked', skipLocked]] as const) {
    if (value !== undefined && typeof value !== 'boolean') throw new InvalidLockArgumentError(`${prefix}.${name}`, `expected a boolean, got ${describe(value)}`);
  }
  if (nowait === true && skipLocked === true) {
    throw new InvalidLockArgumentError(`${prefix}.nowait`, 'cannot be combined with skipLocked: choose to fail on a busy row (nowait) or to leave it out (skipLocked)');
  }
  const mode = nowait === true ? 'nowait' : skipLocked === true ? 'skipLocked' : 'wait';
  if (mode !== 'wait' && timeout !== undefined) {
    throw new InvalidLockArgumentError(`${prefix}.timeout`, `cannot be combined with ${mode}, which never waits`);
  }
  if (mode !== 'wait' && signal !== undefined) {
    throw new InvalidLockArgumentError(`${prefix}.signal`, `cannot be combined with ${mode}, which never waits`);
  }
  if (mode !== 'wait' && prioritize !== undefined) {
    throw new InvalidLockArgumentError(`${prefix}.prioritize`, `cannot be combined with ${mode}, which never waits`);
  }
  if (signal !== undefined && !(signal instanceof AbortSignal)) throw new InvalidLockArgumentError(`${prefix}.signal`, 'expected an AbortSignal');
  const timeoutMs = timeout === undefined ? undefined : parseDuration(timeout, `${prefix}.timeout`);
  return {
    strength: strength as RowLockStrength,
    mode,
    timeoutMs,
    signal: signal as AbortSignal | undefined,
    prioritize: prioritize === undefined ? undefined : planPrioritize(prioritize, `${prefix}.prioritize`),
  };
}

/** Checks that only known option names are present. */
export function checkOptionNames(options: unknown, allowed: readonly string[], argument = 'options'): Record<string, unknown> {
  if (options === undefined || options === null) return {};
  if (typeof options !== 'object' || Array.isArray(options)) throw new InvalidLockArgumentError(argument, `expected an object, got ${describe(options)}`);
  for (const name of Object.keys(options)) {
    if (!allowed.includes(name)) throw new InvalidLockArgumentError(`${argument}.${name}`, `unknown option (expected ${allowed.join(', ')})`);
  }
  return options as Record<string, unknown>;
}

/** An object literal (or one without a prototype): its `for … in` keys are its own, in order. */
export function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/** Validates a row count (`take`, `limit`, `skip`, `offset`): a whole number ≥ 0. */
export function countOption(value: unknown, argument: string): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new InvalidLockArgumentError(argument, `expected a whole number ≥ 0, got ${describe(value)}`);
  }
  return value;
}

/** `"schema"."table"`, or `"table"` alone when no schema is given. */
export function qualifiedTable(table: TableRef): string {
  if (typeof table.name !== 'string' || table.name.length === 0) throw new InvalidLockArgumentError('table', 'expected a table name');
  return table.schema ? `${quoteIdent(table.schema)}.${quoteIdent(table.name)}` : quoteIdent(table.name);
}

/** How a table is described in messages: `rows of "accounts"`. */
export function describeTable(table: TableRef): string {
  return table.schema ? `"${table.schema}"."${table.name}"` : `"${table.name}"`;
}

// A layer passes the same column list for a table on every call (Drizzle's and Prisma's are built
// once per table): its select list is built once per list and qualifier.
const selectLists = new WeakMap<readonly SelectColumn[], Map<string, string>>();

const CASTS: Record<NonNullable<SelectColumn['cast']>, string> = { numeric: 'numeric', textArray: 'text[]', text: 'text' };

function selectList(columns: readonly SelectColumn[], qualifier?: string): string {
  const prefix = qualifier ? `${qualifier}.` : '';
  if (columns.length === 0) return `${prefix}*`;
  let known = selectLists.get(columns);
  const cached = known?.get(prefix);
  if (cached !== undefined) return cached;
  const list = columns
    .map(({ column, as, cast }) => {
      const value = `${prefix}${quoteIdent(column)}${cast === undefined ? '' : `::${CASTS[cast]}`}`;
      return (as !== undefined && as !== column) || cast !== undefined ? `${value} AS ${quoteIdent(as ?? column)}` : value;
    })
    .join(', ');
  if (known === undefined) selectLists.set(columns, (known = new Map()));
  known.set(prefix, list);
  return list;
}

function orderByList(builder: SqlBuilder, terms: readonly OrderTerm[], qualifier?: string): string {
  const prefix = qualifier ? `${qualifier}.` : '';
  return terms
    .map((term) => {
      if ('text' in term) return builder.fragment(term);
      const direction = term.direction === 'desc' ? ' DESC' : term.direction === 'asc' || term.direction === undefined ? ' ASC' : undefined;
      if (direction === undefined) throw new InvalidLockArgumentError('orderBy', `expected 'asc' or 'desc', got ${describe(term.direction)}`);
      const nulls = term.nulls === undefined ? '' : term.nulls === 'first' ? ' NULLS FIRST' : term.nulls === 'last' ? ' NULLS LAST' : undefined;
      if (nulls === undefined) throw new InvalidLockArgumentError('orderBy', `nulls: expected 'first' or 'last', got ${describe(term.nulls)}`);
      return `${prefix}${quoteIdent(term.column)}${direction}${nulls}`;
    })
    .join(', ');
}

/** How the statement names `spec.table` when it joins others (its columns are then qualified), else undefined. */
function joinQualifier(spec: RowQuerySpec): string | undefined {
  return spec.joins && spec.joins.length > 0 ? quoteIdent(spec.table.name) : undefined;
}

/** `FROM … [JOIN …] WHERE … ORDER BY … LIMIT … OFFSET … FOR <strength> [OF …] [NOWAIT | SKIP LOCKED]`. */
function lockingTail(builder: SqlBuilder, spec: RowQuerySpec, plan: RowWaitPlan): string {
  const self = joinQualifier(spec);
  let text = ` FROM ${qualifiedTable(spec.table)}`;
  for (const join of spec.joins ?? []) {
    const alias = quoteIdent(join.alias);
    if (join.on.length === 0) throw new InvalidLockArgumentError('joins', `no columns to join ${describeTable(join.table)} on`);
    text += ` JOIN ${qualifiedTable(join.table)} AS ${alias} ON ${join.on.map((pair) => `${alias}.${quoteIdent(pair.related)} = ${self}.${quoteIdent(pair.own)}`).join(' AND ')}`;
  }
  if (spec.where) text += ` WHERE ${builder.fragment(spec.where)}`;
  if (spec.orderBy && spec.orderBy.length > 0) text += ` ORDER BY ${orderByList(builder, spec.orderBy, self)}`;
  if (spec.limit !== undefined) text += ` LIMIT ${builder.param(spec.limit)}`;
  if (spec.offset !== undefined && spec.offset > 0) text += ` OFFSET ${builder.param(spec.offset)}`;
  text += ` FOR ${STRENGTH_SQL[plan.strength]}`;
  // Without OF a locking clause locks the rows of every table in FROM; with joins, name them all
  // (the joins exist only to be locked). Sub-selects in WHERE are never locked either way.
  if (self !== undefined) text += ` OF ${[self, ...(spec.joins ?? []).map((join) => quoteIdent(join.alias))].join(', ')}`;
  if (plan.mode === 'nowait') text += ' NOWAIT';
  if (plan.mode === 'skipLocked') text += ' SKIP LOCKED';
  return text;
}

/** The columns ormlock adds to a statement for its own use, removed from every returned row. */
const OWN_COLUMNS = ['ormlock_restored', 'ormlock_ord'];

function stripOwnColumns<T extends Row>(rows: T[]): T[] {
  for (const row of rows) for (const name of OWN_COLUMNS) delete (row as Row)[name];
  return rows;
}

/** The SQL and parameters of a row lock, without running it (for tests and `explain`). */
export function buildRowLock(spec: RowQuerySpec, plan: RowWaitPlan, timeoutMs?: number): { text: string; params: unknown[] } {
  const builder = new SqlBuilder();
  const timeoutParam = timeoutMs === undefined ? undefined : builder.param(String(timeoutMs));
  const inner = `SELECT ${selectList(spec.columns, joinQualifier(spec))}${lockingTail(builder, spec, plan)}`;
  const text = timeoutParam === undefined ? inner : withLockTimeout(inner, timeoutParam);
  return { text, params: builder.params };
}

/**
 * Locks the rows `spec` selects, in one statement, and returns them in the requested order.
 * Needs an open transaction (a row lock outside one ends with its statement).
 * A busy row fails with `LockNotAvailableError` (`nowait`) or `LockTimeoutError` (`timeout`, or
 * the driver's own transaction deadline); either way the caller's transaction stays usable.
 */
export async function lockRows<T extends Row = Row>(executor: Executor, spec: RowQuerySpec, plan: RowWaitPlan): Promise<T[]> {
  const what = `rows of ${describeTable(spec.table)}`;
  if (!executor.inTransaction) {
    throw new NotInTransactionError(
      `${what}: a row lock needs an open transaction; outside one PostgreSQL releases it when the SELECT ends, so it would protect nothing. ` +
        `Call it on a transaction (tx.$lock.row / $lock(tx).row)`,
    );
  }
  const bound = plan.mode === 'wait' ? effectiveTimeout(executor, plan.timeoutMs) : { timeoutMs: undefined, implicit: false };
  const { text, params } = buildRowLock(spec, plan, bound.timeoutMs);
  const outcome = await runLockStatement<T>(executor, text, params, {
    timeoutMs: bound.timeoutMs,
    implicitTimeout: bound.implicit,
    nowait: plan.mode === 'nowait',
    signal: plan.signal,
    prioritize: plan.prioritize,
    // A failed lock statement aborts the transaction; the savepoint keeps the caller's usable.
    // Not needed when the only bound is the driver's own deadline (it ends the transaction anyway).
    savepoint: plan.mode === 'nowait' || plan.signal !== undefined || (bound.timeoutMs !== undefined && !bound.implicit),
    what,
  });
  if (!outcome.acquired) throw outcome.error;
  return stripOwnColumns(outcome.rows);
}

/**
 * Whether a claim of at most `limit` rows that updates them is the one-row statement, which
 * matches its row by {@link RowQuerySpec.key} when the layer knows the key.
 */
export function isOneRowClaim(limit: number | undefined): boolean {
  return limit !== undefined && limit <= 1;
}

/** The SQL of a claim that updates the claimed rows, in one statement. */
export function buildClaimUpdate(spec: RowQuerySpec, plan: RowWaitPlan, set: readonly SetItem[]): { text: string; params: unknown[] } {
  if (spec.joins && spec.joins.length > 0) throw new InvalidLockArgumentError('query.of', 'a claim locks the rows it claims only');
  const builder = new SqlBuilder();
  const target = qualifiedTable(spec.table);
  const self = quoteIdent(spec.table.name);
  // The rows are picked (and locked, skipping busy ones) by a sub-select and updated by their
  // physical address: (tableoid, ctid) names one row even in a partitioned table, needs no
  // knowledge of the primary key, and cannot move while we hold the row lock.
  const tail = lockingTail(builder, spec, plan);
  const assignments = set.map((item) => `${quoteIdent(item.column)} = ${builder.fragment(item.value)}`).join(', ');
  if (isOneRowClaim(spec.limit)) {
    // One row has no order to keep, and the plan is the hand-written claim's: one InitPlan that
    // picks and locks the row, then a scan by primary key (or TID) that updates it.
    const match = spec.key === undefined ? `(${self}.tableoid, ${self}.ctid) = (SELECT tableoid, ctid${tail})` : `${self}.${quoteIdent(spec.key)} = (SELECT ${quoteIdent(spec.key)}${tail})`;
    const text = `UPDATE ${target} SET ${assignments} WHERE ${match} RETURNING ${selectList(spec.columns, self)}`;
    return { text, params: builder.params };
  }
  const pick = `SELECT tableoid AS ormlock_oid, ctid AS ormlock_tid${tail}`;
  const match = `${self}.tableoid = ormlock_o.ormlock_oid AND ${self}.ctid = ormlock_o.ormlock_tid`;
  // RETURNING has no order of its own: number the picked rows and sort the updated ones by it.
  // The number comes last: removing an object's last property keeps it a fast object in V8.
  const text =
    `WITH ormlock_c AS MATERIALIZED (${pick}), ` +
    `ormlock_o AS MATERIALIZED (SELECT ormlock_oid, ormlock_tid, row_number() OVER () AS ormlock_ord FROM ormlock_c), ` +
    `ormlock_u AS (UPDATE ${target} SET ${assignments} FROM ormlock_o WHERE ${match} ` +
    `RETURNING ${selectList(spec.columns, self)}, ormlock_o.ormlock_ord) ` +
    `SELECT * FROM ormlock_u ORDER BY ormlock_ord`;
  return { text, params: builder.params };
}

/**
 * A claim that updates, as a layer describes it before building anything: its shape, a string
 * that names everything the statement's text depends on (table, columns, kinds of values, order,
 * one row or many, strength, key) and no value; and its values, in the order the statement binds
 * them. A queue worker claims with the same shape on every call, so the text is built once per
 * shape ({@link claimRows} remembers it) and later calls only gather their values and run it
 * ({@link claimStatement}, {@link runClaimStatement}).
 */
export interface ClaimCall {
  readonly shape: string;
  readonly params: readonly unknown[];
}

/** `name` in a claim's shape: its length first, so that no two lists of names read the same. */
export function shapePart(name: string): string {
  return `${name.length}:${name}`;
}

export interface ClaimStatement {
  readonly text: string;
  /** Whether its rows carry columns of ormlock's own to remove (a claim of many rows numbers them). */
  readonly ownColumns: boolean;
}

// Shapes are few (an app's claim calls); kept for every executor and root, since the text
// depends on nothing else. Bounded all the same: a shape per call site, not per value.
const CLAIM_SHAPES_KEPT = 512;
const claimStatements = new Map<string, ClaimStatement>();

function rememberClaim(call: ClaimCall | undefined, statement: ClaimStatement, params: readonly unknown[]): void {
  // Kept only when the layer's values are exactly the built statement's, in order: a layer that
  // gathers them differently from the builder gets no cached text, never a wrong statement.
  if (call === undefined || call.params.length !== params.length || !call.params.every((value, index) => Object.is(value, params[index]))) return;
  if (claimStatements.size >= CLAIM_SHAPES_KEPT) claimStatements.clear();
  claimStatements.set(call.shape, statement);
}

/** The statement remembered for a claim's shape, if any (else the layer builds it with {@link claimRows}). */
export function claimStatement(call: ClaimCall): ClaimStatement | undefined {
  return claimStatements.get(call.shape);
}

/** Runs a claim statement (remembered, or just built) with its values. */
export async function runClaimStatement<T extends Row = Row>(executor: Executor, statement: ClaimStatement, params: readonly unknown[]): Promise<T[]> {
  let rows: T[];
  try {
    rows = await executor.query<T>(statement.text, params);
  } catch (error) {
    throw mapDriverError(error);
  }
  return statement.ownColumns ? stripOwnColumns(rows) : rows;
}

/**
 * Claims up to `spec.limit` rows for a worker: locks them with `SKIP LOCKED`, so concurrent
 * workers get disjoint rows, and with `set` updates them in the same statement
 * (`UPDATE … FROM (SELECT … FOR UPDATE SKIP LOCKED) … RETURNING`). With `set` it also works
 * outside a transaction (the one statement commits the claim); without it, it needs one.
 * `call`: the claim as its layer described it (see {@link ClaimCall}), to remember the statement
 * for later calls of the same shape.
 */
export async function claimRows<T extends Row = Row>(
  executor: Executor,
  spec: RowQuerySpec,
  strength: unknown,
  set: readonly SetItem[] | undefined,
  call?: ClaimCall,
): Promise<T[]> {
  if (strength !== 'update' && strength !== 'noKeyUpdate') {
    throw new InvalidLockArgumentError('query.strength', `a claim takes 'update' or 'noKeyUpdate' locks, got ${describe(strength)}`);
  }
  const plan: RowWaitPlan = { strength, mode: 'skipLocked' };
  if (set === undefined) return lockRows<T>(executor, spec, plan);
  if (set.length === 0) throw new InvalidLockArgumentError('set', 'expected at least one column to set (or leave set out to only lock the rows)');
  const { text, params } = buildClaimUpdate(spec, plan, set);
  const statement: ClaimStatement = { text, ownColumns: text.includes('ormlock_ord') };
  rememberClaim(call, statement, params);
  return runClaimStatement<T>(executor, statement, params);
}

/** Forgets every remembered claim statement (for tests: the next call of each shape builds it again). */
export function forgetClaimStatements(): void {
  claimStatements.clear();
}
