/**
 * Drizzle description of the test and example tables. It creates the same tables as
 * `prisma/schema.prisma` (same names, columns, types, defaults and primary-key names), so a test
 * can run against either migration set. Regenerate `drizzle/migrations` with
 * `npx drizzle-kit generate` after changing this file.
 */
import { sql } from 'drizzle-orm';
import { bigserial, integer, jsonb, numeric, pgTable, primaryKey, serial, text, timestamp } from 'drizzle-orm/pg-core';

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
