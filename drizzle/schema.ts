/**
 * Drizzle description of the test and example tables. It creates the same tables as
 * `prisma/schema.prisma` (same names, columns, types, defaults and primary-key names), so a test
 * can run against either migration set; all but `samples` and `sample_lists`, which only Prisma's
 * type tests use. Regenerate `drizzle/migrations` with
 * `npx drizzle-kit generate` after changing this file, then drop the `"public".` drizzle-kit writes
 * before referenced tables (the suite also runs with the tables in another schema).
 */
import { sql } from 'drizzle-orm';
import { bigserial, foreignKey, integer, jsonb, numeric, pgTable, primaryKey, serial, text, timestamp, uniqueIndex } from 'drizzle-orm/pg-core';

/** `accounts`: a balance with a version column, for row locks and optimistic updates. */
export const accounts = pgTable('accounts', {
  id: serial('id').primaryKey(),
  owner: text('owner').notNull(),
  balance: numeric('balance', { precision: 18, scale: 2 }).notNull(),
  version: integer('version').notNull().default(0),
  updatedAt: timestamp('updated_at', { precision: 3, mode: 'date' }).notNull().default(sql`CURRENT_TIMESTAMP`),
});

/** `jobs`: a queue table, for `FOR UPDATE SKIP LOCKED` claims. */
export const jobs = pgTable('jobs', {
  id: bigserial('id', { mode: 'bigint' }).primaryKey(),
  queue: text('queue').notNull().default('default'),
  status: text('status').notNull().default('pending'),
  payload: jsonb('payload').notNull().default({}),
  runAt: timestamp('run_at', { precision: 3, mode: 'date' }).notNull().default(sql`CURRENT_TIMESTAMP`),
  attempts: integer('attempts').notNull().default(0),
  lockedBy: text('locked_by'),
});

/** `"Counter"`: a mixed-case table name that must be quoted, with a version column. */
export const counters = pgTable('Counter', {
  name: text('name').primaryKey(),
  value: integer('value').notNull().default(0),
  version: integer('version').notNull().default(0),
});

/** `memberships`: a composite primary key. */
export const memberships = pgTable(
  'memberships',
  {
    orgId: integer('org_id').notNull(),
    userId: integer('user_id').notNull(),
    role: text('role').notNull(),
  },
  (t) => [primaryKey({ name: 'memberships_pkey', columns: [t.orgId, t.userId] })],
);

/**
 * `transfers`: two required foreign keys to `accounts` and an optional composite one to
 * `memberships` (Prisma's `Transfer` relations; constraint names and actions as Prisma makes them).
 */
export const transfers = pgTable(
  'transfers',
  {
    id: serial('id').primaryKey(),
    fromId: integer('from_id').notNull(),
    toId: integer('to_id').notNull(),
    amount: numeric('amount', { precision: 18, scale: 2 }).notNull(),
    status: text('status').notNull().default('pending'),
    approverOrgId: integer('approver_org_id'),
    approverUserId: integer('approver_user_id'),
  },
  (t) => [
    foreignKey({ name: 'transfers_from_id_fkey', columns: [t.fromId], foreignColumns: [accounts.id] }).onDelete('restrict').onUpdate('cascade'),
    foreignKey({ name: 'transfers_to_id_fkey', columns: [t.toId], foreignColumns: [accounts.id] }).onDelete('restrict').onUpdate('cascade'),
    foreignKey({
      name: 'transfers_approver_org_id_approver_user_id_fkey',
      columns: [t.approverOrgId, t.approverUserId],
      foreignColumns: [memberships.orgId, memberships.userId],
    })
      .onDelete('set null')
      .onUpdate('cascade'),
  ],
);

/** `refunds`: at most one per transfer (a unique foreign key: Prisma's one-to-one `Refund.transfer`). */
export const refunds = pgTable(
  'refunds',
  {
    id: serial('id').primaryKey(),
    transferId: integer('transfer_id').notNull(),
    reason: text('reason').notNull(),
  },
  (t) => [
    uniqueIndex('refunds_transfer_id_key').on(t.transferId),
    foreignKey({ name: 'refunds_transfer_id_fkey', columns: [t.transferId], foreignColumns: [transfers.id] }).onDelete('restrict').onUpdate('cascade'),
  ],
);
