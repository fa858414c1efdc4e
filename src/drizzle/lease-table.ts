import { type SQL, sql } from 'drizzle-orm';
import { type AnyPgColumn, bigserial, integer, jsonb, pgSchema, pgTable, text, timestamp } from 'drizzle-orm/pg-core';
import { type LeaseTableOptions, leaseTableNames } from '../core/lease-schema.js';
import { InvalidLockArgumentError } from '../core/errors.js';

function columns() {
  const at = (name: string) => timestamp(name, { withTimezone: true, precision: 6, mode: 'date' }).notNull();
  return {
    name: text('name').primaryKey(),
    owner: text('owner').notNull(),
    // A bigserial: its sequence gives each acquisition a larger fencing token and outlives the rows.
    token: bigserial('token', { mode: 'bigint' }).notNull(),
    data: jsonb('data'),
    acquiredAt: at('acquired_at'),
    renewedAt: at('renewed_at'),
    expiresAt: at('expires_at'),
    ttlMs: integer('ttl_ms').notNull(),
  };
}

/** The Drizzle table of the leases, as {@link leaseTable} returns it. */
export type LeaseTableDefinition = ReturnType<typeof defaultLeaseTable>;

function defaultLeaseTable(table: string) {
  return pgTable(table, columns());
}

/**
 * The lease table as a Drizzle schema object. Export it from your Drizzle schema file so that
 * `drizzle-kit generate` creates it (and never drops it); `npx ormlock migrate drizzle` writes
 * that export for you. Read it with Drizzle as any table; only ormlock should write to it.
 *
 * With `schema`, export the `pgSchema` too (`leaseTable({ schema }).schema`… see example) so that
 * drizzle-kit creates the schema.
 *
 * @example
 * ```ts
 * // drizzle/schema.ts
 * import { leaseTable } from 'ormlock/drizzle';
 * export const ormlockLeases = leaseTable();
 * ```
 */
export function leaseTable(options: LeaseTableOptions = {}): LeaseTableDefinition {
  const names = leaseTableNames(options);
  if (names.schema === undefined) return defaultLeaseTable(names.table);
  return pgSchema(names.schema).table(names.table, columns()) as unknown as LeaseTableDefinition;
}

/**
 * A Drizzle condition that admits a write only from the newest lease holder: the row keeps the
 * fencing token of its last write in a `bigint` column, and `token` is the writer's
 * `lease.fencingToken`. A late write from a holder whose lease was taken over matches no row.
 *
 * @example
 * ```ts
 * const done = await db.update(reports)
 *   .set({ body, fence: lease.fencingToken })
 *   .where(and(eq(reports.id, id), fenced(reports.fence, lease.fencingToken)))
 *   .returning({ id: reports.id });
 * if (done.length === 0) throw new Error('a newer lease holder wrote this report');
 * ```
 */
export function fenced(column: AnyPgColumn | SQL, token: bigint): SQL {
  if (typeof token !== 'bigint') throw new InvalidLockArgumentError('token', `expected the lease's fencingToken (a bigint), got ${typeof token}`);
  const value = sql`${token.toString()}::int8`;
  return sql`(${column} IS NULL OR ${column} <= ${value})`;
}
