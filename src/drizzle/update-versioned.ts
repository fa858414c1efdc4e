import { and, eq, getTableColumns, getTableName, is, type SQL, sql } from 'drizzle-orm';
import { PgColumn, type PgDatabase, type PgQueryResultHKT, type PgTable, type PgUpdateSetSource } from 'drizzle-orm/pg-core';
import { InvalidLockArgumentError } from '../core/errors.js';
import { checkVersion, staleVersionError } from '../core/stale-version.js';

/** A Drizzle PostgreSQL database or transaction (any driver): what the versioned helpers write through. */
export type DrizzleWriterLike = PgDatabase<PgQueryResultHKT, any, any>;

type ColumnsOf<TTable extends PgTable> = TTable['_']['columns'];

/** The table's column with the JS key `version`, or `never` when it has none (then pass `versionColumn`). */
export type DefaultVersionColumn<TTable extends PgTable> = ColumnsOf<TTable> extends { version: infer C extends PgColumn } ? C : never;

/** The JS key under which `TColumn` sits in `TTable`. */
type KeyOfColumn<TTable extends PgTable, TColumn extends PgColumn> = {
  [K in keyof ColumnsOf<TTable>]: ColumnsOf<TTable>[K] extends { _: { name: TColumn['_']['name'] } } ? K : never;
}[keyof ColumnsOf<TTable>];

/** Arguments of {@link deleteVersioned}. */
export interface DeleteVersionedArgs<TColumn extends PgColumn> {
  /** Which row: a condition that identifies one row, e.g. `eq(accounts.id, id)`. */
  readonly where: SQL;
  /** The version you read; the write happens only if the row still has it. */
  readonly version: TColumn['_']['data'];
  /** The version column, when it is not the table's `version` column. An integer or bigint column. */
  readonly versionColumn?: TColumn;
}

/** Arguments of {@link updateVersioned}. */
export interface UpdateVersionedArgs<TTable extends PgTable, TColumn extends PgColumn> extends DeleteVersionedArgs<TColumn> {
  /** The new values, as in `db.update(table).set(…)`; without the version column, which is incremented for you. */
  readonly set: Omit<PgUpdateSetSource<TTable>, KeyOfColumn<TTable, TColumn>>;
}

/**
 * Compare-and-swap on a version column: updates the row matched by `where` only if its version is
 * still `version`, increments the version in the same statement, and resolves the updated row.
 * If no row matched, throws {@link ormlock!StaleVersionError} saying whether the row is gone or at
 * another version (`actual`). Holds no lock beyond the statement; works on a database and
 * inside a transaction.
 *
 * `where` should identify one row (by primary or unique key); every row it matches with that
 * version is updated, and the first is returned.
 *
 * @example
 * ```ts
 * import { eq } from 'drizzle-orm';
 * import { updateVersioned } from 'ormlock/drizzle';
 * import { withRetry } from 'ormlock';
 *
 * await withRetry(async () => {
 *   const [account] = await db.select().from(accounts).where(eq(accounts.id, id));
 *   return updateVersioned(db, accounts, {
 *     where: eq(accounts.id, id),
 *     version: account.version,
 *     set: { balance: add(account.balance, amount) },
 *   });
 * });
 * ```
 */
export async function updateVersioned<TTable extends PgTable, TColumn extends PgColumn = DefaultVersionColumn<TTable>>(
  dbOrTx: DrizzleWriterLike,
  table: TTable,
  args: UpdateVersionedArgs<TTable, TColumn>,
): Promise<TTable['$inferSelect']> {
  const { column, key } = versionColumnOf(table, args);
  const set = args.set as Record<string, unknown>;
  if (set === null || typeof set !== 'object') throw new InvalidLockArgumentError('set', 'expected an object of new values');
  if (Object.hasOwn(set, key)) {
    throw new InvalidLockArgumentError(`set.${key}`, 'the version column is incremented by updateVersioned; leave it out of `set`');
  }
  const rows = (await dbOrTx
    .update(table)
    .set({ ...set, [key]: sql`${column} + 1` } as PgUpdateSetSource<TTable>)
    .where(and(args.where, eq(column, args.version)))
    .returning()) as TTable['$inferSelect'][];
  if (rows[0] !== undefined) return rows[0];
  throw await staleError(dbOrTx, table, column, args);
}

/**
 * Deletes the row matched by `where` only if its version is still `version`, and resolves the
 * deleted row; otherwise throws {@link ormlock!StaleVersionError} (`'gone'` or `'version-mismatch'`).
 *
 * @example
 * ```ts
 * await deleteVersioned(db, accounts, { where: eq(accounts.id, id), version: account.version });
 * ```
 */
export async function deleteVersioned<TTable extends PgTable, TColumn extends PgColumn = DefaultVersionColumn<TTable>>(
  dbOrTx: DrizzleWriterLike,
  table: TTable,
  args: DeleteVersionedArgs<TColumn>,
): Promise<TTable['$inferSelect']> {
  const { column } = versionColumnOf(table, args);
  const rows = (await dbOrTx
    .delete(table)
    .where(and(args.where, eq(column, args.version)))
    .returning()) as TTable['$inferSelect'][];
  if (rows[0] !== undefined) return rows[0];
  throw await staleError(dbOrTx, table, column, args);
}

function versionColumnOf(table: PgTable, args: DeleteVersionedArgs<PgColumn>): { column: PgColumn; key: string } {
  if (args === null || typeof args !== 'object') throw new InvalidLockArgumentError('args', 'expected { where, version, … }');
  if (args.where === undefined || args.where === null) {
    throw new InvalidLockArgumentError('where', 'expected a condition that identifies the row, e.g. eq(table.id, id)');
  }
  checkVersion(args.version, 'version');
  const columns = getTableColumns(table) as Record<string, PgColumn>;
  const column = args.versionColumn ?? columns['version'];
  const key = Object.keys(columns).find((name) => columns[name] === column);
  if (column === undefined || !is(column, PgColumn) || key === undefined) {
    throw new InvalidLockArgumentError(
      'versionColumn',
      `table "${getTableName(table)}" has no column "version"; pass versionColumn: one of its own integer columns`,
    );
  }
  return { column, key };
}

async function staleError(dbOrTx: DrizzleWriterLike, table: PgTable, column: PgColumn, args: DeleteVersionedArgs<PgColumn>): Promise<Error> {
  const [current] = await dbOrTx.select({ version: column }).from(table).where(args.where).limit(1);
  const error = staleVersionError(args.version as bigint | number, current?.version, { table: getTableName(table) });
  // The row is there with the expected version: another condition in `where` excluded it.
  return error ?? new InvalidLockArgumentError('where', `matched no row of "${getTableName(table)}" at version ${String(args.version)}`);
}
