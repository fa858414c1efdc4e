/**
 * Hostile and bad input to every public function, through every layer. Each call either gets a
 * typed error before any SQL is sent, or reaches the server as exactly the intended statements,
 * with every caller-given name quoted and every caller-given value a bound parameter.
 *
 * "Before any SQL" is proved by the connections themselves: every pool here makes its
 * connections with a node-postgres `Client` subclass that records each statement it sends, and the
 * Prisma client and Drizzle database run over such a pool. (test/row-lock-injection.test.ts covers
 * hostile schema / table / column names of the row and table locks; test/keys.test.ts the key and
 * duration functions on their own.)
 */
import { PrismaPg } from '@prisma/adapter-pg';
import { drizzle } from 'drizzle-orm/node-postgres';
import { eq } from 'drizzle-orm';
import pg from 'pg';
import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import { accounts, jobs } from '../drizzle/schema.js';
import { PrismaClient } from '../prisma/generated/client.js';
import { InvalidLockArgumentError, fencingCondition, hashKey, parseDuration, withRetry } from '../src/index.js';
import { $lock as drizzleLock, deleteVersioned, fenced, updateVersioned } from '../src/drizzle/index.js';
import { $lock as pgLock, ensureLeaseTable } from '../src/pg/index.js';
import { lockExtension } from '../src/prisma/index.js';
import { quoteIdent, useTestDatabase } from './helpers/database.js';

interface Sent {
  readonly text: string;
  readonly values: readonly unknown[];
}

const sentLog: Sent[] = [];

/** A node-postgres client that records every statement it sends. */
class RecordingClient extends pg.Client {
  override query(...args: unknown[]): never {
    const [first, second] = args as [unknown, unknown];
    const config = typeof first === 'object' && first !== null ? (first as { text?: string; values?: unknown[] }) : undefined;
    const text = typeof first === 'string' ? first : (config?.text ?? String(first));
    const values = Array.isArray(second) ? second : (config?.values ?? []);
    sentLog.push({ text, values });
    return (super.query as (...a: unknown[]) => never)(...args);
  }
}

/** The statements sent since the last call. */
function sent(): Sent[] {
  return sentLog.splice(0);
}

const HOSTILE_NAMES = [
  `'; DROP TABLE accounts; --`,
  `"; DROP TABLE accounts; --`,
  'x$1 $2 $$ $tag$',
  'naïve 😀 名前 \u202e',
  `a\\'b\\"c\\`,
] as const;
const LONG_IDENTIFIER = 'i'.repeat(1_000);

const db = useTestDatabase({
  migrations: 'prisma',
  setup: async (client) => {
    await ensureLeaseTable(client);
    // PostgreSQL truncates identifiers to 63 bytes: a 1,000-character name would name this table.
    await client.query(`CREATE TABLE ${quoteIdent(LONG_IDENTIFIER.slice(0, 63))} (id int PRIMARY KEY)`);
    await client.query(`INSERT INTO ${quoteIdent(LONG_IDENTIFIER.slice(0, 63))} VALUES (1)`);
  },
});

let pool: pg.Pool;
let prisma: ReturnType<typeof makePrisma>;
let orm: ReturnType<typeof drizzle>;
const makePrisma = () => new PrismaClient({ adapter: new PrismaPg(pool, db.schema === 'public' ? undefined : { schema: db.schema }) }).$extends(lockExtension());

beforeAll(() => {
  pool = db.pool({ Client: RecordingClient, max: 4 });
  prisma = makePrisma();
  orm = drizzle({ client: pool });
});
afterAll(async () => {
  await prisma.$disconnect();
});
beforeEach(() => void sent());

/** `call` is refused with a typed error, synchronously or not, and nothing reached the server. */
async function refused(call: () => unknown, what = ''): Promise<InvalidLockArgumentError> {
  sent();
  let error: unknown;
  try {
    await call();
  } catch (caught) {
    error = caught;
  }
  expect(error, `${what}: expected InvalidLockArgumentError, got ${String(error)}`).toBeInstanceOf(InvalidLockArgumentError);
  expect(sent(), `${what}: no SQL may be sent`).toEqual([]);
  return error as InvalidLockArgumentError;
}

const label = (value: unknown): string => {
  if (typeof value === 'string') return value.length > 40 ? `${value.slice(0, 10)}…(${value.length})` : JSON.stringify(value);
  if (typeof value === 'bigint') return `${value}n`;
  if (typeof value === 'function') return 'function';
  if (typeof value === 'symbol') return value.toString();
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
};

const BAD_KEYS: unknown[] = [
  '',
  '\uD800',
  'a\uDFFFb',
  Number.NaN,
  Number.POSITIVE_INFINITY,
  1.5,
  2 ** 53,
  -(2 ** 53),
  2n ** 63n,
  -(2n ** 63n) - 1n,
  null,
  undefined,
  {},
  () => 1,
  Symbol('key'),
  true,
  [],
  [1, 2 ** 31],
  [-(2 ** 31) - 1, 1],
  [1.5, 2],
  ['a', ''],
  [['a']],
];

const BAD_DURATIONS: unknown[] = [
  Number.NaN,
  Number.POSITIVE_INFINITY,
  Number.NEGATIVE_INFINITY,
  -1,
  2 ** 31,
  '',
  '5',
  '5 s',
  '-5s',
  '1d',
  'ms',
  '0x10ms',
  'NaNms',
  'Infinitys',
  '5s; DROP TABLE accounts',
  {},
  [],
  true,
  null,
  5n,
];

describe('keys and durations', () => {
  test.each(BAD_KEYS.map((key) => [label(key), key]))('hashKey / advisory refuse the key %s before any SQL', async (_, key) => {
    if (typeof key === 'string') expect(() => hashKey(key)).toThrow(InvalidLockArgumentError);
    await refused(() => pgLock(pool).advisory(key as never, async () => 1), 'pg');
    await refused(() => drizzleLock(orm).advisory(key as never, async () => 1), 'drizzle');
    await refused(() => prisma.$lock.advisory(key as never, async () => 1), 'prisma');
    await refused(() => pgLock(pool).advisory(['ok', key] as never, async () => 1), 'in a list');
  });

  test.each(BAD_DURATIONS.map((d) => [label(d), d]))('the duration %s is refused before any SQL wherever a duration is taken', async (_, duration) => {
    expect(() => parseDuration(duration, 'timeout')).toThrow(InvalidLockArgumentError);
    const locks = pgLock(pool);
    await refused(() => locks.advisory('k', async () => 1, { timeout: duration as never }), 'advisory timeout');
    await refused(() => prisma.$lock.advisory('k', async () => 1, { timeout: duration as never }), 'prisma advisory timeout');
    await refused(() => locks.lease('k', { ttl: duration as never }), 'lease ttl');
    await refused(() => locks.lease('k', { wait: duration as never }), 'lease wait');
    await refused(() => locks.lease('k', { heartbeat: duration as never }), 'lease heartbeat');
    await refused(() => locks.pruneLeases(duration as never), 'pruneLeases grace');
    await refused(() => drizzleLock(orm).lease('k', { ttl: duration as never }), 'drizzle lease ttl');
    await refused(() => prisma.$lock.lease('k', { ttl: duration as never }), 'prisma lease ttl');
    await refused(() => locks.prioritize(async () => 1, { action: 'cancel', every: duration as never }), 'prioritize every');
  });

  test('a huge string key is hashed: the lock statement carries only the 64-bit key', async () => {
    const huge = `${HOSTILE_NAMES.join('')}${'k'.repeat(1_000_000)}`;
    expect(await pgLock(pool).advisory(huge, async () => 'ran')).toBe('ran');
    const statements = sent();
    expect(statements.map((s) => s.text).join('\n')).not.toContain('DROP');
    expect(statements.flatMap((s) => s.values)).toContain(hashKey(huge).toString());
    expect(JSON.stringify(statements, (_, v) => (typeof v === 'bigint' ? v.toString() : v)).length).toBeLessThan(2_000);
  });
});

describe('advisory options', () => {
  const badOptions: [string, unknown][] = [
    ['a string', 'fast'],
    ['a number', 42],
    ['an unknown option (typo)', { tmeout: 100 }],
    ['wait: "yes"', { wait: 'yes' }],
    ['onBusy: "maybe"', { onBusy: 'maybe' }],
    ['mode: "exclusiv"', { mode: 'exclusiv' }],
    ['signal: {}', { signal: {} }],
    ['transaction: "serializable"', { transaction: 'serializable' }],
    ['transaction.isolationLevel: "chaos"', { transaction: { isolationLevel: 'chaos' } }],
  ];
  test.each(badOptions)('function form refuses %s before any SQL, in every layer', async (_, options) => {
    await refused(() => pgLock(pool).advisory('k', async () => 1, options as never), 'pg');
    await refused(() => drizzleLock(orm).advisory('k', async () => 1, options as never), 'drizzle');
    await refused(() => prisma.$lock.advisory('k', async () => 1, options as never), 'prisma');
  });

  test('transaction form refuses bad options and a non-function before any SQL, and the transaction stays usable', async () => {
    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      for (const [, options] of badOptions.filter(([name]) => !name.startsWith('transaction'))) {
        await refused(() => pgLock(client).advisory('k', options as never), JSON.stringify(options));
      }
      await refused(() => pgLock(pool).advisory('k', 42 as never, {}), 'fn = 42');
      expect((await client.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
      await client.query('COMMIT');
    } finally {
      client.release();
    }
  });
});

describe('leases', () => {
  const badNames: unknown[] = ['', 'n'.repeat(513), LONG_IDENTIFIER, 42, null, undefined, {}, ['a'], Symbol('lease')];
  test.each(badNames.map((n) => [label(n), n]))('the lease name %s is refused by every lease function before any SQL', async (_, name) => {
    for (const [layer, locks] of [
      ['pg', pgLock(pool)],
      ['drizzle', drizzleLock(orm)],
      ['prisma', prisma.$lock],
    ] as const) {
      await refused(() => locks.lease(name as never), `${layer} lease`);
      await refused(() => locks.withLease(name as never, async () => 1), `${layer} withLease`);
      await refused(() => locks.getLease(name as never), `${layer} getLease`);
      await refused(() => locks.leader(name as never, { ttl: '1s', onElected: () => {} }), `${layer} leader`);
    }
  });

  test.each([
    ['ttl under 10 ms', { ttl: 5 }],
    ['ttl 0', { ttl: 0 }],
    ['heartbeat not under half the ttl', { ttl: '10s', heartbeat: '5s' }],
    ['heartbeat 0', { ttl: '10s', heartbeat: 0 }],
    ['onBusy "skip" on lease()', { onBusy: 'skip' }],
    ['data that is not JSON (a bigint)', { data: 1n }],
    ['data that is not JSON (a cycle)', { data: (() => { const o: Record<string, unknown> = {}; o['o'] = o; return o; })() }],
    ['onLost not a function', { onLost: 'log' }],
    ['signal not an AbortSignal', { signal: 'stop' }],
    ['an unknown option', { ttl: '1s', tll: '2s' }],
    ['options not an object', 'ttl=1s'],
  ])('lease options: %s is refused before any SQL', async (_, options) => {
    await refused(() => pgLock(pool).lease('job', options as never), 'lease');
    await refused(() => prisma.$lock.lease('job', options as never), 'prisma lease');
  });

  test('withLease refuses a non-function, listLeases a non-string prefix, before any SQL', async () => {
    await refused(() => pgLock(pool).withLease('job', 'run' as never), 'withLease');
    await refused(() => pgLock(pool).listLeases(42 as never), 'listLeases');
    await refused(() => pgLock(pool).leader('job', { ttl: Number.NaN, onElected: () => {} }), 'leader ttl');
    await refused(() => pgLock(pool).leader('job', { ttl: '1s', onElected: 'run' as never }), 'leader onElected');
  });

  test.each(HOSTILE_NAMES.map((n) => [n]))('the lease name %s is only ever a bound parameter', async (name) => {
    const locks = pgLock(pool);
    const lease = await locks.lease(name, { ttl: '10s', data: { by: name } });
    try {
      expect((await locks.getLease(name))?.name).toBe(name);
      expect((await locks.listLeases(name)).map((l) => l.name)).toEqual([name]);
    } finally {
      await lease.release();
    }
    const statements = sent();
    expect(statements.length).toBeGreaterThan(0);
    for (const statement of statements) expect(statement.text).not.toContain(name);
    expect(statements.some((s) => s.values.includes(name))).toBe(true);
    expect(await locks.getLease(name)).toBeNull();
  });

  test('a lease table with hostile schema and table names is quoted in every statement; over-long names are refused', async () => {
    const schema = `Le"ase; DROP TABLE accounts; --`;
    const table = `le$1"ases'`;
    await ensureLeaseTable(pool, { schema, table });
    const locks = pgLock(pool, { leaseTable: { schema, table } });
    const lease = await locks.lease('job', { ttl: '10s' });
    expect((await locks.listLeases()).map((l) => l.name)).toEqual(['job']);
    await lease.release();
    const statements = sent().filter((s) => s.text.includes('le$1'));
    expect(statements.length).toBeGreaterThan(0);
    for (const statement of statements) expect(statement.text).toContain(`${quoteIdent(schema)}.${quoteIdent(table)}`);
    expect(await db.query(`SELECT to_regclass('accounts') IS NOT NULL AS ok`)).toEqual([{ ok: true }]);
    for (const names of [{ table: 't'.repeat(64) }, { schema: LONG_IDENTIFIER }, { table: 'é'.repeat(40) }, { table: '' }, { table: 'a\0b' }]) {
      await refused(() => ensureLeaseTable(pool, names), `ensureLeaseTable ${label(names)}`);
      await refused(() => pgLock(pool, { leaseTable: names }).lease('job'), `lease on ${label(names)}`);
    }
  });

  test('fenced() takes only a fencing token (a bigint)', () => {
    for (const token of [1, '1', null, undefined, Number.NaN]) {
      expect(() => fenced(accounts.version, token as never), label(token)).toThrow(InvalidLockArgumentError);
    }
  });

  test('fencingCondition refuses anything but a column name and a $n placeholder, and quotes the column', () => {
    for (const [column, placeholder] of [
      ['', '$1'],
      [42, '$1'],
      ['fence', '1'],
      ['fence', '$0'],
      ['fence', '$1; DROP TABLE accounts'],
      ['fence', '$1::text'],
      ['fence', ' $1'],
    ] as const) {
      expect(() => fencingCondition(column as never, placeholder)).toThrow(InvalidLockArgumentError);
    }
    expect(fencingCondition('fe"nce; DROP TABLE accounts; --', '$2')).toBe(
      `("fe""nce; DROP TABLE accounts; --" IS NULL OR "fe""nce; DROP TABLE accounts; --" <= $2::int8)`,
    );
  });
});

describe('row and table locks', () => {
  test('pg: bad tables, queries and options are refused before any SQL; the transaction stays usable', async () => {
    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      const locks = pgLock(client);
      for (const table of ['', 42, null, undefined, {}, { name: '' }, { schema: 42, name: 'accounts' }, ['accounts']]) {
        await refused(() => locks.row(table as never, { where: { id: 1 } }), `row table ${label(table)}`);
        // An array is a list of tables for model(): a list of one good name is fine there.
        if (!Array.isArray(table)) await refused(() => locks.model(table as never), `model table ${label(table)}`);
      }
      await refused(() => locks.model(['accounts', ''] as never), 'model table list with an empty name');
      for (const query of [
        'id = 1',
        { where: 'id = 1' },
        { where: { id: 1 }, limit: -1 },
        { where: { id: 1 }, limit: 1.5 },
        { where: { id: 1 }, limit: Number.NaN },
        { where: { id: 1 }, offset: -1 },
        { orderBy: { id: 'up' } },
        { orderBy: 'id' },
        { strength: 'exclusive' },
        { nowait: true, skipLocked: true },
        { nowait: true, timeout: '1s' },
        { timeout: Number.NaN },
        { signal: {} },
        { whereRaw: 'true' },
      ]) {
        await refused(() => locks.row('accounts', query as never), `row ${label(query)}`);
      }
      for (const query of [{ limit: -1 }, { set: 'owner = 1' }, { strength: 'share' }, { where: { id: 1 }, unknown: 1 }]) {
        await refused(() => locks.claim('accounts', query as never), `claim ${label(query)}`);
      }
      for (const options of [{ mode: 'bogus' }, { timeout: -1 }, { mode: 'share; DROP TABLE accounts' }]) {
        await refused(() => locks.model('accounts', options as never), `model ${label(options)}`);
      }
      await refused(() => locks.model([]), 'model of no table');
      expect((await client.query('SELECT count(*)::int AS n FROM accounts')).rows).toEqual([{ n: 0 }]);
      await client.query('COMMIT');
    } finally {
      client.release();
    }
  });

  test('pg: unknown and hostile column names are quoted: the server answers "no such column", nothing else runs', async () => {
    const client = await pool.connect();
    try {
      for (const column of [...HOSTILE_NAMES, 'no_such_column']) {
        await client.query('BEGIN');
        sent();
        const error = await pgLock(client)
          .row('accounts', { where: { [column]: 1 } })
          .catch((e: unknown) => e);
        expect((error as { code?: string }).code, column).toBe('42703');
        const statements = sent();
        expect(statements).toHaveLength(1);
        expect(statements[0]!.text).toContain(quoteIdent(column));
        await client.query('ROLLBACK');
      }
    } finally {
      client.release();
    }
    expect(await db.query(`SELECT to_regclass('accounts') IS NOT NULL AS ok`)).toEqual([{ ok: true }]);
  });

  test('a 1,000-character table name is refused, not truncated by PostgreSQL into another table', async () => {
    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      await refused(() => pgLock(client).row(LONG_IDENTIFIER, { where: { id: 1 } }), 'row');
      await refused(() => pgLock(client).row({ schema: LONG_IDENTIFIER, name: 'accounts' }), 'row schema');
      await refused(() => pgLock(client).row('accounts', { where: { [LONG_IDENTIFIER]: 1 } }), 'row column');
      await refused(() => pgLock(client).model(LONG_IDENTIFIER), 'model');
      await refused(() => pgLock(client).claim(LONG_IDENTIFIER, { set: { id: 2 } }), 'claim');
      await client.query('COMMIT');
    } finally {
      client.release();
    }
  });

  test('identifiers with a NUL character are refused before any SQL', async () => {
    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      await refused(() => pgLock(client).row('acc\0ounts', { where: { id: 1 } }), 'row');
      await refused(() => pgLock(client).row('accounts', { where: { 'i\0d': 1 } }), 'column');
      await client.query('COMMIT');
    } finally {
      client.release();
    }
    expect(() => fencingCondition('fe\0nce', '$1')).toThrow(InvalidLockArgumentError);
  });

  test('drizzle: what is not a table, a raw string condition and bad options are refused before any SQL', async () => {
    await orm.transaction(async (tx) => {
      const locks = drizzleLock(tx);
      sent();
      for (const table of [null, 'accounts', {}, { name: 'accounts' }]) {
        await refused(() => locks.row(table as never, {}), `row ${label(table)}`);
        await refused(() => locks.model(table as never), `model ${label(table)}`);
      }
      await refused(() => locks.row(accounts, { where: 'id = 1' } as never), 'raw where');
      await refused(() => locks.row(accounts, { limit: -1 } as never), 'limit');
      await refused(() => locks.row(accounts, { strength: 'exclusive' } as never), 'strength');
      await refused(() => locks.claim(accounts, { set: 'x' } as never), 'claim set');
      await refused(() => locks.model(accounts, { mode: 'bogus' } as never), 'mode');
    });
    await refused(() => drizzleLock({} as never), '$lock of a plain object');
    await refused(() => drizzleLock(null as never), '$lock of null');
  });

  test('prisma: unknown and hostile model and field names are refused before any SQL', async () => {
    await prisma.$transaction(async (tx) => {
      sent();
      for (const model of ['NoSuchModel', 'accounts', '', `Account"; DROP TABLE accounts; --`, LONG_IDENTIFIER, 42, null]) {
        await refused(() => tx.$lock.row(model as never, {}), `row ${label(model)}`);
        await refused(() => tx.$lock.model(model as never), `model ${label(model)}`);
        await refused(() => tx.$lock.claim(model as never, { set: {} } as never), `claim ${label(model)}`);
      }
      for (const where of [{ nosuch: 1 }, { owner: { regex: 'x' } }, { [`owner"; DROP TABLE accounts; --`]: 'x' }, 'id = 1', { id: { in: 'x' } }]) {
        await refused(() => tx.$lock.row('Account', { where } as never), `where ${label(where)}`);
      }
      await refused(() => tx.$lock.row('Account', { orderBy: { nosuch: 'asc' } } as never), 'orderBy');
      await refused(() => tx.$lock.row('Account', { take: -1 } as never), 'take');
      await refused(() => tx.$lock.claim('Account', { set: { nosuch: 1 } } as never), 'claim set');
    });
  });

  test('prisma: relation filters and of refuse unknown and hostile names before any SQL', async () => {
    await prisma.$transaction(async (tx) => {
      for (const of of [['nosuch'], ['outgoing'], ['fromId'], ['Account'], [`fromAccount"; DROP TABLE accounts; --`], 'fromAccount', [42], [null], [LONG_IDENTIFIER]]) {
        await refused(() => tx.$lock.row('Transfer', { of } as never), `of ${label(of)}`);
      }
      await refused(() => tx.$lock.row('Account', { of: ['outgoing'] } as never), 'of a to-many relation');
      await refused(() => tx.$lock.claim('Transfer', { of: ['fromAccount'] } as never), 'claim of');
      for (const where of [
        { fromAccount: { [`owner"; DROP TABLE accounts; --`]: 'x' } },
        { fromAccount: { is: { nosuch: 1 } } },
        { fromAccount: `'; DROP TABLE accounts; --` },
        { refund: { isNot: { reason: { regex: 'x' } } } },
        { fromAccount: { outgoing: { any: {} } } },
        { NOT: { approver: { role: { in: 'x' } } } },
      ]) {
        await refused(() => tx.$lock.row('Transfer', { where } as never), `where ${label(where)}`);
      }
    });
  });

  test.each(HOSTILE_NAMES.map((n) => [n]))('prisma: the value %s in relation filters reaches the server only as a parameter', async (value) => {
    const rows = await prisma.$transaction((tx) =>
      tx.$lock.row('Transfer', {
        where: {
          OR: [{ fromAccount: { owner: value } }, { toAccount: { isNot: { owner: { contains: value, mode: 'insensitive' } } } }],
          NOT: { refund: { reason: value } },
          approver: { is: { approvals: { some: { status: value } } } },
        },
        of: ['fromAccount', 'toAccount'],
        nowait: true,
      }),
    );
    expect(rows).toEqual([]);
    const statements = sent().filter((s) => s.text.includes('FOR UPDATE'));
    expect(statements).toHaveLength(1);
    const [statement] = statements as [Sent];
    expect(statement.text).not.toContain(value);
    expect(statement.text).toContain('FOR UPDATE OF "transfers", "ormlock_j1", "ormlock_j2" NOWAIT');
    expect(statement.values.filter((v) => v === value)).toHaveLength(4);
  });
});

describe('optimistic versions and retries', () => {
  test('drizzle updateVersioned refuses bad arguments before any SQL', async () => {
    for (const [what, args] of [
      ['no args', null],
      ['no where', { set: { owner: 'x' }, version: 0 }],
      ['version NaN', { where: eq(accounts.id, 1), set: { owner: 'x' }, version: Number.NaN }],
      ['version 1.5', { where: eq(accounts.id, 1), set: { owner: 'x' }, version: 1.5 }],
      ['version "0"', { where: eq(accounts.id, 1), set: { owner: 'x' }, version: '0' }],
      ['set null', { where: eq(accounts.id, 1), set: null, version: 0 }],
      ['set with the version', { where: eq(accounts.id, 1), set: { version: 9 }, version: 0 }],
    ] as const) {
      await refused(() => updateVersioned(orm, accounts, args as never), what);
    }
    // A table without a version column, and a versionColumn of another table.
    await refused(() => updateVersioned(orm, jobs, { where: eq(jobs.id, 1n), set: { status: 'x' }, version: 0 } as never), 'no version column');
    await refused(
      () => (updateVersioned as (...args: unknown[]) => Promise<unknown>)(orm, accounts, { where: eq(accounts.id, 1), set: { owner: 'x' }, version: 0, versionColumn: jobs.attempts }),
      'foreign version column',
    );
  });

  test('deleteVersioned refuses bad arguments before any SQL, in Drizzle and Prisma', async () => {
    for (const args of [null, { version: 0 }, { where: eq(accounts.id, 1), version: Number.NaN }, { where: eq(accounts.id, 1), version: '0' }]) {
      await refused(() => deleteVersioned(orm, accounts, args as never), `drizzle ${label(args)}`);
    }
    for (const version of [Number.NaN, 1.5, '0', null]) {
      await refused(() => prisma.account.deleteVersioned({ where: { id: 1 }, version } as never), `prisma version ${label(version)}`);
    }
  });

  test('prisma updateVersioned refuses bad versions before any SQL', async () => {
    for (const version of [Number.NaN, 1.5, '0', null, undefined, {}]) {
      await refused(() => prisma.account.updateVersioned({ where: { id: 1 }, data: { owner: 'x' }, version } as never), `version ${label(version)}`);
    }
    await refused(() => prisma.account.updateVersioned({ where: { id: 1 }, data: { version: 3 }, version: 0 } as never), 'data with the version');
    await refused(() => prisma.account.updateVersioned(null as never), 'no args');
  });

  test('withRetry refuses what it cannot run before running anything', async () => {
    let runs = 0;
    const fn = async () => {
      runs += 1;
    };
    for (const [what, call] of [
      ['fn not a function', () => withRetry('run' as never)],
      ['retries -1', () => withRetry(fn, { retries: -1 })],
      ['retries NaN', () => withRetry(fn, { retries: Number.NaN })],
      ['retries 1.5', () => withRetry(fn, { retries: 1.5 })],
      ['backoff.initial NaN', () => withRetry(fn, { backoff: { initial: Number.NaN } })],
      ['backoff.factor 0', () => withRetry(fn, { backoff: { factor: 0 } })],
      ['signal not an AbortSignal', () => withRetry(fn, { signal: {} as never })],
      ['onRetry not a function', () => withRetry(fn, { onRetry: 'log' as never })],
    ] as const) {
      await refused(call, what);
    }
    expect(runs).toBe(0);
  });
});

describe('prioritize and inspect', () => {
  test('bad prioritize and inspect arguments are refused before any SQL', async () => {
    const locks = pgLock(pool);
    await refused(() => locks.prioritize('run' as never, { action: 'cancel' }), 'fn');
    await refused(() => locks.prioritize(async () => 1, { action: 'nuke' } as never), 'action');
    await refused(() => locks.prioritize(async () => 1, { action: 'cancel', every: 1 }), 'every under 10 ms');
    await refused(() => locks.inspect({ bogus: true } as never), 'inspect option');
    await refused(() => locks.inspect({ relation: 42 } as never), 'inspect relation');
  });

  test('a hostile relation filter for inspect is a bound value', async () => {
    const name = HOSTILE_NAMES[0];
    const inspection = await pgLock(pool).inspect({ relation: name });
    expect(inspection.locks).toEqual([]);
    for (const statement of sent()) expect(statement.text).not.toContain(name);
    expect(await db.query(`SELECT to_regclass('accounts') IS NOT NULL AS ok`)).toEqual([{ ok: true }]);
  });
});
