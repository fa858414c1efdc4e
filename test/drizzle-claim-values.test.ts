/**
 * Drizzle claims and row locks return every column as `select()` does, for each of Drizzle's
 * column types: through the Drizzle session (in a transaction), and for a claim outside one on a
 * node-postgres pool, straight on the pool (ormlock then reads dates, times, intervals and their
 * arrays as text, which is what the session hands on). A `customType` column, whose SQL type
 * ormlock cannot judge, keeps the claim in the session.
 */
import { asc, eq } from 'drizzle-orm';
import {
  bigint,
  boolean,
  char,
  cidr,
  customType,
  date,
  doublePrecision,
  inet,
  integer,
  interval,
  json,
  jsonb,
  line,
  macaddr,
  macaddr8,
  numeric,
  pgEnum,
  pgTable,
  point,
  real,
  smallint,
  text,
  time,
  timestamp,
  uuid,
  varchar,
} from 'drizzle-orm/pg-core';
import { beforeAll, describe, expect, test } from 'vitest';
import { $lock } from '../src/drizzle/index.js';
import { useTestDatabase } from './helpers/database.js';

const db = useTestDatabase({ migrations: 'none' });

const mood = pgEnum('claim_mood', ['calm', 'tense']);

const things = pgTable('claim_things', {
  id: integer().primaryKey(),
  claimed: boolean().notNull().default(false),
  big53: bigint({ mode: 'number' }),
  big64: bigint({ mode: 'bigint' }),
  flag: boolean(),
  letter: char({ length: 2 }),
  network: cidr(),
  day: date({ mode: 'date' }),
  dayText: date({ mode: 'string' }),
  double: doublePrecision(),
  address: inet(),
  count: integer(),
  span: interval(),
  doc: json(),
  docb: jsonb(),
  lineTuple: line(),
  lineAbc: line({ mode: 'abc' }),
  mac: macaddr(),
  mac8: macaddr8(),
  amount: numeric({ precision: 20, scale: 6 }),
  amountNumber: numeric({ mode: 'number' }),
  amountBig: numeric({ mode: 'bigint' }),
  spot: point(),
  spotXy: point({ mode: 'xy' }),
  ratio: real(),
  small: smallint(),
  label: text(),
  clock: time({ precision: 6 }),
  at: timestamp({ precision: 6, mode: 'date' }),
  atText: timestamp({ precision: 6, mode: 'string' }),
  atZone: timestamp({ withTimezone: true, mode: 'date' }),
  atZoneText: timestamp({ withTimezone: true, precision: 6, mode: 'string' }),
  ident: uuid(),
  short: varchar({ length: 20 }),
  feeling: mood(),
  feelings: mood().array(),
  ats: timestamp({ precision: 6, mode: 'date' }).array(),
  atZones: timestamp({ withTimezone: true, mode: 'string' }).array(),
  days: date({ mode: 'date' }).array(),
  spans: interval().array(),
  amounts: numeric().array(),
  counts: integer().array(),
  grid: text().array().array(),
});

/** A date-time domain: the server describes its values as timestamps; Drizzle's session hands them on as text. */
const stamp = customType<{ data: string; driverData: string }>({ dataType: () => 'claim_stamp' });
const stamped = pgTable('claim_stamped', {
  id: integer().primaryKey(),
  claimed: boolean().notNull().default(false),
  at: stamp(),
});

beforeAll(async () => {
  await db.query(`CREATE TYPE claim_mood AS ENUM ('calm', 'tense')`);
  await db.query(`CREATE DOMAIN claim_stamp AS timestamp(6)`);
  await db.query(`
    CREATE TABLE claim_things (
      id integer PRIMARY KEY, claimed boolean NOT NULL DEFAULT false, big53 bigint, big64 bigint, flag boolean,
      letter char(2), network cidr, day date, "dayText" date, double double precision, address inet, count integer,
      span interval, doc json, docb jsonb, "lineTuple" line, "lineAbc" line, mac macaddr, mac8 macaddr8,
      amount numeric(20, 6), "amountNumber" numeric, "amountBig" numeric, spot point, "spotXy" point, ratio real,
      small smallint, label text, clock time(6), at timestamp(6), "atText" timestamp(6), "atZone" timestamptz,
      "atZoneText" timestamptz(6), ident uuid, short varchar(20), feeling claim_mood, feelings claim_mood[],
      ats timestamp(6)[], "atZones" timestamptz[], days date[], spans interval[], amounts numeric[], counts integer[], grid text[][]
    )`);
  await db.query(`
    INSERT INTO claim_things VALUES
      (1, false, 9007199254740991, 9223372036854775807, true, 'ab', '10.0.0.0/8', '2026-02-03', '2026-02-03', 1.5, '192.168.0.1',
       42, '1 year 2 mons 3 days 04:05:06.789', '{"a": [1, null]}', '{"b": {"c": "d"}}', '{1,2,3}', '{4,5,6}',
       '08:00:2b:01:02:03', '08:00:2b:01:02:03:04:05', '12345678901234.123456', '3.25', '12345678901234567890', '(1.5,2)',
       '(3,4.5)', 0.25, 7, 'text ''quoted''', '12:34:56.123456', '2026-02-03 04:05:06.123456', '2026-02-03 04:05:06.123456',
       '2026-02-03 04:05:06.789+05:30', '2026-02-03 04:05:06.123456+00', '00000000-0000-4000-8000-000000000001', 'short',
       'tense', '{calm,tense}', '{"2026-01-01 00:00:00.5","2026-12-31 23:59:59.999999"}',
       '{"2026-01-01 00:00:00+00","2026-06-01 12:00:00+02"}', '{2026-01-01,2026-12-31}', '{"1 day","02:00:00"}',
       '{1.50,2.000001}', '{1,2,NULL}', '{{a,b},{c,NULL}}'),
      (2, false, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
       NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
       NULL, NULL, NULL, NULL, NULL)`);
  await db.query(`CREATE TABLE claim_stamped (id integer PRIMARY KEY, claimed boolean NOT NULL DEFAULT false, at claim_stamp)`);
  await db.query(`INSERT INTO claim_stamped VALUES (1, false, '2026-02-03 04:05:06.123456'), (2, false, NULL)`);
});

describe('Drizzle claims return what select() returns', () => {
  test.each([1, 2])('every built-in column type, row %i: a claim on the database, a claim and a row lock in a transaction', async (id) => {
    const orm = db.drizzle();
    const [claimed] = await $lock(orm).claim(things, { where: eq(things.id, id), set: { claimed: true } });
    const [selected] = await orm.select().from(things).where(eq(things.id, id));
    expect(selected?.claimed).toBe(true);
    expect(claimed).toEqual(selected);
    await orm.transaction(async (tx) => {
      const [inTransaction] = await $lock(tx).claim(things, { where: eq(things.id, id), set: { claimed: false } });
      const [locked] = await $lock(tx).row(things, { where: eq(things.id, id) });
      const [selectedInTransaction] = await tx.select().from(things).where(eq(things.id, id));
      expect(inTransaction).toEqual(selectedInTransaction);
      expect(locked).toEqual(selectedInTransaction);
    });
    if (id === 1) {
      // The values that node-postgres would otherwise parse itself, as Drizzle hands them on.
      expect(claimed?.atText).toBe('2026-02-03 04:05:06.123456');
      expect(claimed?.span).toBe('1 year 2 mons 3 days 04:05:06.789');
      expect(claimed?.ats).toEqual([new Date('2026-01-01T00:00:00.500Z'), new Date('2026-12-31T23:59:59.999Z')]);
    }
  });

  test('a customType column (a domain over timestamp): the claim on the database returns what select() returns', async () => {
    const orm = db.drizzle();
    const claimed = await $lock(orm).claim(stamped, { orderBy: asc(stamped.id), limit: 2, set: { claimed: true } });
    const selected = await orm.select().from(stamped).orderBy(asc(stamped.id));
    expect(claimed).toEqual(selected);
    expect(claimed[0]?.at).toBe('2026-02-03 04:05:06.123456');
  });
});
