import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { InvalidLockArgumentError, hashKey, parseDuration } from '../src/index.js';
import { advisoryKeysOf } from '../src/core/keys.js';
import { toDrizzleSql } from '../src/drizzle/to-drizzle-sql.js';
import { PgDialect } from 'drizzle-orm/pg-core';
import { useTestDatabase } from './helpers/database.js';

const db = useTestDatabase();

describe('string keys', () => {
  test('hashKey equals its documented SQL twin for arbitrary strings', async () => {
    const samples = fc.sample(fc.string({ minLength: 1, maxLength: 40, unit: 'grapheme' }), 60);
    samples.push('invoice:42', 'ü', '😀', "'; DROP TABLE x; --", '$1', 'a'.repeat(5000));
    const rows = await db.query<{ twin: string }>(
      `SELECT (('x' || left(encode(sha256(convert_to(k, 'UTF8')), 'hex'), 16))::bit(64)::bigint)::text AS twin
         FROM unnest($1::text[]) WITH ORDINALITY AS t(k, n) ORDER BY n`,
      [samples],
    );
    expect(rows.map((row) => row.twin)).toEqual(samples.map((key) => hashKey(key).toString()));
  });

  test('is stable and spreads over the whole signed 64-bit range', () => {
    expect(hashKey('invoice:42')).toBe(hashKey('invoice:42'));
    const values = Array.from({ length: 2000 }, (_, i) => hashKey(`job:${i}`));
    expect(new Set(values).size).toBe(values.length);
    expect(values.some((v) => v < 0n)).toBe(true);
    expect(values.some((v) => v > 2n ** 62n)).toBe(true);
  });
});

describe('key lists', () => {
  test('are deduplicated and put in one order whatever order they came in', () => {
    fc.assert(
      fc.property(
        fc.array(fc.oneof(fc.string({ minLength: 1, unit: 'grapheme' }), fc.integer(), fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n })), { minLength: 3 }),
        (keys) => {
          const identity = (list: unknown[]) => advisoryKeysOf(list).map((k) => (k.kind === 'int8' ? k.value : `${k.namespace}:${k.id}`));
          expect(identity([...keys].reverse())).toEqual(identity(keys));
        },
      ),
    );
  });

  test('[namespace, id] is the two-int32 form, a key space of its own', () => {
    expect(advisoryKeysOf([7, 42])).toEqual([{ kind: 'pair', namespace: 7, id: 42, source: [7, 42] }]);
    expect(advisoryKeysOf([7n, 42n]).map((k) => k.kind)).toEqual(['int8', 'int8']);
  });
});

describe('durations', () => {
  test.each([
    [0, 0],
    [250, 250],
    [0.2, 1],
    ['500ms', 500],
    ['5s', 5000],
    ['1.5s', 1500],
    ['2m', 120_000],
    ['1h', 3_600_000],
  ])('%s is %i ms', (input, ms) => expect(parseDuration(input, 'timeout')).toBe(ms));

  test.each([-1, Number.NaN, Number.POSITIVE_INFINITY, '5', '5 s', 's', '-5s', '1d', 2 ** 31, null, {}, true])('%s is rejected', (input) =>
    expect(() => parseDuration(input, 'timeout')).toThrow(InvalidLockArgumentError),
  );

  test('any non-negative number of milliseconds within range parses to its ceiling', () => {
    fc.assert(
      fc.property(fc.double({ min: 0, max: 2 ** 31 - 2, noNaN: true }), (ms) => {
        expect(parseDuration(ms, 't')).toBe(Math.ceil(ms));
      }),
    );
  });
});

describe('Drizzle rendering of ormlock SQL', () => {
  test('keeps values as parameters and leaves $n inside quoted names alone', () => {
    const query = new PgDialect().sqlToQuery(toDrizzleSql(`SELECT "a$1""x" AS "$2", 'it''s $1' AS s, $1::int8 AS k, $2 AS v`, ['10', "'; DROP"]));
    expect(query.sql).toBe(`SELECT "a$1""x" AS "$2", 'it''s $1' AS s, $1::int8 AS k, $2 AS v`);
    expect(query.params).toEqual(['10', "'; DROP"]);
  });
});
