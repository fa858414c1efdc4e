/**
 * Hostile schema, table and column names reach SQL only quoted, through every layer and every
 * statement (`row`, `claim` with `set`, `model`); hostile values only as bound parameters.
 * The names contain double quotes, semicolons, comments and `$1`, and the statements they would
 * run if spliced (`DROP TABLE accounts`) must leave `accounts` in place.
 */
import { eq, sql } from 'drizzle-orm';
import { integer, pgSchema, text } from 'drizzle-orm/pg-core';
import { afterEach, describe, expect, test } from 'vitest';
import { InvalidLockArgumentError } from '../src/index.js';
import { $lock as drizzleLock } from '../src/drizzle/index.js';
import { $lock as pgLock } from '../src/pg/index.js';
import { lockExtension } from '../src/prisma/index.js';
import { quoteIdent, useTestDatabase } from './helpers/database.js';

const SCHEMA = `ormlock"; DROP TABLE accounts; --`;
const TABLE = `ta"ble'); DROP TABLE accounts; --`;
const ID = `i"d $1`;
const LABEL = `la"bel; DROP TABLE jobs; -- $2 '`;
const EVIL_VALUE = `'; DROP TABLE accounts; --`;

const db = useTestDatabase({
  migrations: 'prisma',
  setup: async (client) => {
    await client.query(`CREATE SCHEMA ${quoteIdent(SCHEMA)}`);
    await client.query(
      `CREATE TABLE ${quoteIdent(SCHEMA)}.${quoteIdent(TABLE)} (${quoteIdent(ID)} integer PRIMARY KEY, ${quoteIdent(LABEL)} text)`,
    );
  },
});

const hostile = `${quoteIdent(SCHEMA)}.${quoteIdent(TABLE)}`;

async function reset(): Promise<void> {
  await db.query(`TRUNCATE ${hostile}`);
  await db.query(`INSERT INTO ${hostile} VALUES (1, 'one'), (2, $1), (3, 'three')`, [EVIL_VALUE]);
}

afterEach(async () => {
  // Had any name been spliced into SQL, these tables would be gone.
  expect(await db.query(`SELECT to_regclass('accounts') IS NOT NULL AS a, to_regclass('jobs') IS NOT NULL AS j`)).toEqual([{ a: true, j: true }]);
});

describe('hostile names', () => {
  test('pg: row, claim with set, and model on a hostile schema, table and column', async () => {
    await reset();
    const client = await db.client();
    const table = { schema: SCHEMA, name: TABLE };
    await client.query('BEGIN');
    const lock = pgLock(client);
    expect(await lock.row(table, { where: { [LABEL]: EVIL_VALUE }, orderBy: { [ID]: 'asc' }, timeout: '1s' })).toEqual([{ [ID]: 2, [LABEL]: EVIL_VALUE }]);
    expect(await lock.claim(table, { where: { [ID]: [1, 3] }, orderBy: { [ID]: 'desc' }, limit: 5, set: { [LABEL]: EVIL_VALUE } })).toEqual([
      { [ID]: 3, [LABEL]: EVIL_VALUE },
      { [ID]: 1, [LABEL]: EVIL_VALUE },
    ]);
    // The one-row claim is a statement of its own shape.
    expect(await lock.claim(table, { where: { [ID]: 2 }, set: { [LABEL]: `${EVIL_VALUE}!` } })).toEqual([{ [ID]: 2, [LABEL]: `${EVIL_VALUE}!` }]);
    await lock.model([table, 'accounts'], { mode: 'shareRowExclusive', timeout: 1000 });
    await client.query('COMMIT');
  });

  test('drizzle: the same through pgSchema(...).table(...)', async () => {
    await reset();
    const weird = pgSchema(SCHEMA).table(TABLE, { id: integer(ID).primaryKey(), label: text(LABEL) });
    const orm = db.drizzle();
    await orm.transaction(async (tx) => {
      const lock = drizzleLock(tx);
      expect(await lock.row(weird, { where: eq(weird.label, EVIL_VALUE), orderBy: weird.id, nowait: true })).toEqual([{ id: 2, label: EVIL_VALUE }]);
      expect(await lock.claim(weird, { where: sql`${weird.id} <> ${2}`, orderBy: weird.id, limit: 5, set: { label: sql`${weird.label} || ${'!'}` } })).toEqual([
        { id: 1, label: 'one!' },
        { id: 3, label: 'three!' },
      ]);
      expect(await lock.claim(weird, { where: eq(weird.id, 2), set: { label: sql`${weird.label} || ${'?'}` } })).toEqual([{ id: 2, label: `${EVIL_VALUE}?` }]);
      await lock.model(weird, { mode: 'exclusive', timeout: '1s' });
    });
  });

  test('prisma: a model mapped (@@map, @map, @@schema) to hostile names', async () => {
    await reset();
    const prisma = db.prisma();
    // A model whose table, columns and schema carry the hostile names, as `prisma generate`
    // would embed them for `@@map`, `@map` and `@@schema`.
    const runtime = (prisma as unknown as { _runtimeDataModel: { models: Record<string, unknown> } })._runtimeDataModel;
    runtime.models = {
      ...runtime.models,
      Account: {
        dbName: TABLE,
        schema: SCHEMA,
        fields: [
          { name: 'id', kind: 'scalar', type: 'Int', dbName: ID },
          { name: 'owner', kind: 'scalar', type: 'String', dbName: LABEL },
        ],
      },
    };
    const locked = prisma.$extends(lockExtension());
    await locked.$transaction(async (tx) => {
      const rows = await tx.$lock.row('Account', { where: { owner: { contains: "'; DROP", mode: 'insensitive' } }, orderBy: { id: 'asc' }, timeout: 1000 });
      expect(rows).toEqual([{ id: 2, owner: EVIL_VALUE }]);
      expect(await tx.$lock.claim('Account', { where: { NOT: { id: 2 } }, orderBy: { id: 'asc' }, take: 5, set: { owner: EVIL_VALUE } })).toEqual([
        { id: 1, owner: EVIL_VALUE },
        { id: 3, owner: EVIL_VALUE },
      ]);
      await tx.$lock.model('Account', { mode: 'share', nowait: true });
    });
  });

  test('a hostile model name is refused before any SQL, never looked up in the database', async () => {
    const prisma = db.prisma().$extends(lockExtension());
    await expect(prisma.$transaction((tx) => tx.$lock.row(`Account"; DROP TABLE accounts; --` as never, {}))).rejects.toBeInstanceOf(InvalidLockArgumentError);
    await expect(prisma.$transaction((tx) => tx.$lock.model('__proto__' as never))).rejects.toBeInstanceOf(InvalidLockArgumentError);
    await expect(prisma.$transaction((tx) => tx.$lock.row('Account', { where: { ['owner"; DROP TABLE accounts; --']: 'x' } as never }))).rejects.toBeInstanceOf(
      InvalidLockArgumentError,
    );
  });
});
