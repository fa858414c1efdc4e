/**
 * Tables in a schema whose name needs quoting, reached by qualified names only (the schema is not
 * on the search_path): Prisma through the adapter's `schema` option, Drizzle through `pgSchema`,
 * `pg` through `{ schema, name }`. Runs in every variant; the whole suite also runs once with its
 * own tables in such a schema (`ORMLOCK_TEST_SCHEMA`, see docs/compatibility.md).
 *
 * Prisma 7 quotes a schema name but does not double a `"` inside it (its own queries fail with a
 * syntax error), so its schema here has spaces and capitals but no quote; ormlock's SQL takes both.
 */
import { PrismaPg } from '@prisma/adapter-pg';
import { eq } from 'drizzle-orm';
import { drizzle } from 'drizzle-orm/node-postgres';
import { integer, numeric, pgSchema, serial, text } from 'drizzle-orm/pg-core';
import { describe, expect, test } from 'vitest';
import { StaleVersionError } from '../src/index.js';
import { $lock as drizzleLock, updateVersioned } from '../src/drizzle/index.js';
import { $lock as pgLock } from '../src/pg/index.js';
import { lockExtension } from '../src/prisma/index.js';
import { quoteIdent, useTestDatabase } from './helpers/database.js';
import { readMigrations } from './helpers/migrations.js';
import { PrismaClient } from './helpers/models.js';

const SCHEMA = 'Lock "Quoted" Schema';
const PRISMA_SCHEMA = 'Prisma Lock Schema';

const db = useTestDatabase({
  setup: async (client) => {
    for (const schema of [SCHEMA, PRISMA_SCHEMA]) {
      // search_path only for this transaction: behind a transaction-mode pooler a session setting
      // would stay with a backend that the tests' other connections get next.
      await client.query('BEGIN');
      await client.query(`CREATE SCHEMA ${quoteIdent(schema)}`);
      await client.query(`SELECT set_config('search_path', $1, true)`, [quoteIdent(schema)]);
      for (const migration of readMigrations('prisma')) for (const statement of migration.statements) await client.query(statement);
      await client.query(`INSERT INTO accounts (owner, balance) VALUES ('ann', 10), ('bob', 20)`);
      await client.query('COMMIT');
    }
  },
});

const locks = pgSchema(SCHEMA);
const accounts = locks.table('accounts', {
  id: serial('id').primaryKey(),
  owner: text('owner').notNull(),
  balance: numeric('balance', { precision: 18, scale: 2 }).notNull(),
  version: integer('version').notNull().default(0),
});

/** Relations `pid` holds a lock on, as `schema.table`. */
const lockedBy = async (pid: number): Promise<string[]> =>
  (
    await db.query<{ name: string }>(
      `SELECT DISTINCT n.nspname || '.' || c.relname AS name FROM pg_locks l JOIN pg_class c ON c.oid = l.relation JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE l.pid = $1 AND l.locktype = 'relation' AND c.relkind = 'r' ORDER BY 1`,
      [pid],
    )
  ).map((row) => row.name);

describe(`tables in schema ${SCHEMA}, off the search_path`, () => {
  test('the schema is not on the search_path: an unqualified name does not find the table', async () => {
    await expect(db.query('SELECT 1 FROM accounts')).rejects.toThrow(/does not exist/);
  });

  test('Prisma (adapter schema option): row and table locks, updateVersioned', async () => {
    const prisma = new PrismaClient({ adapter: new PrismaPg({ connectionString: db.url }, { schema: PRISMA_SCHEMA }) }).$extends(lockExtension());
    try {
      const tables = await prisma.$transaction(async (tx) => {
        const rows = await tx.$lock.row('Account', { where: { owner: 'ann' } });
        expect(rows.map((row) => row.owner)).toEqual(['ann']);
        await tx.$lock.model('Account', { mode: 'share' });
        const [{ pid }] = await tx.$queryRawUnsafe<[{ pid: number }]>('SELECT pg_backend_pid() AS pid');
        return lockedBy(pid);
      });
      expect(tables).toEqual([`${PRISMA_SCHEMA}.accounts`]);
      const updated = await prisma.account.updateVersioned({ where: { id: 1 }, version: 0, data: { owner: 'ann2' } });
      expect(updated).toMatchObject({ owner: 'ann2', version: 1 });
      await expect(prisma.account.updateVersioned({ where: { id: 1 }, version: 0, data: { owner: 'x' } })).rejects.toBeInstanceOf(StaleVersionError);
    } finally {
      await prisma.$disconnect();
    }
  });

  test('Drizzle (pgSchema): row and table locks, updateVersioned', async () => {
    const orm = drizzle({ client: db.pool() });
    const tables = await orm.transaction(async (tx) => {
      const rows = await drizzleLock(tx).row(accounts, { where: eq(accounts.owner, 'bob') });
      expect(rows.map((row) => row.owner)).toEqual(['bob']);
      await drizzleLock(tx).model(accounts, { mode: 'share' });
      const { rows: pids } = await tx.execute<{ pid: number }>('SELECT pg_backend_pid() AS pid');
      return lockedBy(Number(pids[0]?.pid));
    });
    expect(tables).toEqual([`${SCHEMA}.accounts`]);
    const updated = await updateVersioned(orm, accounts, { where: eq(accounts.id, 2), version: 0, set: { owner: 'bob2' } });
    expect(updated).toMatchObject({ owner: 'bob2', version: 1 });
  });

  test('pg ({ schema, name }): row and table locks', async () => {
    const client = await db.client();
    await client.query('BEGIN');
    const rows = await pgLock(client).row({ schema: SCHEMA, name: 'accounts' }, { where: { id: 2 } });
    expect(rows).toHaveLength(1);
    await pgLock(client).model({ schema: SCHEMA, name: 'accounts' }, { mode: 'share' });
    const { rows: pids } = await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
    expect(await lockedBy(Number(pids[0]?.pid))).toEqual([`${SCHEMA}.accounts`]);
    await client.query('COMMIT');
  });
});
