/**
 * ormlock renders a caller's Drizzle condition itself (one pass) instead of through
 * `dialect.sqlToQuery`, for speed. These tests pin that the text and the bound values are exactly
 * Drizzle's own for every kind of condition the fast path takes, that everything else goes to
 * Drizzle's renderer, and that the rendered condition selects the same rows on the server.
 */
import {
  type SQL,
  and,
  arrayContains,
  between,
  eq,
  exists,
  gt,
  gte,
  ilike,
  inArray,
  isNotNull,
  isNull,
  like,
  lt,
  lte,
  ne,
  not,
  notInArray,
  or,
  sql,
} from 'drizzle-orm';
import { drizzle } from 'drizzle-orm/node-postgres';
import { PgDialect, alias, integer, pgSchema, pgTable, text, timestamp } from 'drizzle-orm/pg-core';
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { accounts, jobs, memberships } from '../drizzle/schema.js';
import { renderCondition, renderConditionFast } from '../src/drizzle/render-sql.js';
import { $lock } from '../src/drizzle/index.js';
import { useTestDatabase } from './helpers/database.js';

const dialect = new PgDialect();
const snakeDialect = new PgDialect({ casing: 'snake_case' });
const byKey = pgTable('render_things', { someValue: text(), createdAt: timestamp({ mode: 'date' }), tags: text().array() });
const elsewhere = pgSchema('Other "Schema"').table('Weird"Table', { id: integer('i"d'), label: text('label') });
const j = alias(jobs, 'j');
const at = new Date('2026-01-02T03:04:05.678Z');

/** Conditions the fast path renders (no fallback). */
const FAST: Record<string, SQL> = {
  eq: eq(jobs.status, 'pending'),
  'eq bigint': eq(jobs.id, 42n),
  ne: ne(accounts.owner, 'x'),
  'gt numeric': gt(accounts.balance, '10.50'),
  'gte timestamp (Date mapped to text)': gte(accounts.updatedAt, at),
  lt: lt(jobs.attempts, 3),
  lte: lte(jobs.attempts, 3),
  'and / or / not': and(eq(jobs.queue, 'a'), or(isNull(jobs.lockedBy), not(eq(jobs.status, 'done'))))!,
  'and with undefined': and(eq(jobs.queue, 'a'), undefined)!,
  inArray: inArray(jobs.status, ['pending', 'retry']),
  'inArray empty': inArray(jobs.status, []),
  notInArray: notInArray(accounts.id, [1, 2, 3]),
  isNull: isNull(jobs.lockedBy),
  isNotNull: isNotNull(jobs.lockedBy),
  between: between(jobs.attempts, 1, 5),
  like: like(accounts.owner, 'a%'),
  ilike: ilike(accounts.owner, 'A%'),
  'jsonb value (encoded)': eq(jobs.payload, { n: 1, s: "it's" }),
  'composite key': and(eq(memberships.orgId, 1), eq(memberships.userId, 2))!,
  'sql template with values': sql`${jobs.attempts} + ${1} < ${5} and ${jobs.status} = ${'x'} and ${jobs.lockedBy} is distinct from ${null}`,
  'sql template with a list': sql`${jobs.attempts} in ${[1, 2, 3]}`,
  'sql.raw': and(sql.raw('true'), eq(jobs.queue, 'a'))!,
  'boolean and bigint values': sql`${true} and ${10n} > 0`,
  'schema-qualified, quotes in names': and(eq(elsewhere.id, 1), like(elsewhere.label, '%"%'))!,
  'aliased table': eq(j.status, 'pending'),
  'array column': arrayContains(byKey.tags, ['a', 'b']),
};

/** Conditions that need Drizzle's own renderer. */
const SLOW: Record<string, SQL> = {
  'a sub-query': exists(drizzle.mock().select().from(jobs).where(eq(jobs.status, 'x'))),
  'sql.identifier': sql`${sql.identifier('status')} = ${'x'}`,
  'a table chunk': sql`(select count(*) from ${jobs}) > ${0}`,
  'inlined parameters': eq(jobs.status, 'pending').inlineParams(),
  'sql.placeholder': eq(jobs.status, sql.placeholder('status')),
  'a Date in a template (an object)': sql`${jobs.runAt} < ${at}`,
};

describe('rendering Drizzle conditions', () => {
  test.each(Object.entries(FAST))('%s: one pass, exactly what sqlToQuery renders', (_name, condition) => {
    const expected = dialect.sqlToQuery(condition);
    const fast = renderConditionFast(dialect, condition);
    expect(fast).toEqual({ text: expected.sql, params: expected.params });
  });

  test('column names follow the instance casing, as Drizzle renders them', () => {
    const condition = and(eq(byKey.someValue, 'x'), lt(byKey.createdAt, at))!;
    const expected = snakeDialect.sqlToQuery(condition);
    expect(expected.sql).toContain('"some_value"');
    expect(renderConditionFast(snakeDialect, condition)).toEqual({ text: expected.sql, params: expected.params });
    expect(renderConditionFast(dialect, condition)?.text).toContain('"someValue"');
  });

  test.each(Object.entries(SLOW))('%s: rendered by Drizzle', (_name, condition) => {
    expect(renderConditionFast(dialect, condition)).toBeUndefined();
    let expected: { sql: string; params: unknown[] } | undefined;
    try {
      expected = dialect.sqlToQuery(condition);
    } catch {
      return; // Drizzle cannot render it outside a prepared query (a placeholder): neither can ormlock.
    }
    expect(renderCondition(dialect, condition)).toEqual({ text: expected.sql, params: expected.params });
  });

  test('property: generated trees of conditions render exactly as Drizzle renders them', () => {
    const leaf = fc.oneof(
      fc.string().map((s) => eq(jobs.status, s)),
      fc.integer().map((n) => gt(jobs.attempts, n)),
      fc.array(fc.string(), { maxLength: 4 }).map((list) => inArray(jobs.queue, list)),
      fc.constant(isNull(jobs.lockedBy)),
      fc.jsonValue().map((value) => eq(jobs.payload, value)),
      fc.date({ noInvalidDate: true }).map((date) => lte(jobs.runAt, date)),
      fc.tuple(fc.integer(), fc.string()).map(([n, s]) => sql`${jobs.attempts} <> ${n} or ${jobs.status} like ${s}`),
    );
    const tree: fc.Arbitrary<SQL> = fc.letrec<{ node: SQL }>((tie) => ({
      node: fc.oneof(
        { depthSize: 'small', withCrossShrink: true },
        leaf,
        fc.array(tie('node'), { minLength: 1, maxLength: 3 }).map((items) => and(...items)!),
        fc.array(tie('node'), { minLength: 1, maxLength: 3 }).map((items) => or(...items)!),
        tie('node').map((item) => not(item)),
      ),
    })).node;
    fc.assert(
      fc.property(tree, (condition) => {
        const expected = dialect.sqlToQuery(condition);
        expect(renderConditionFast(dialect, condition)).toEqual({ text: expected.sql, params: expected.params });
      }),
      { numRuns: 300 },
    );
  });
});

describe('rendered conditions on the server', () => {
  const database = useTestDatabase({ migrations: 'drizzle' });

  test('row() with a one-pass condition locks the rows select() returns for it', async () => {
    const db = database.drizzle();
    await db.delete(jobs);
    await db.insert(jobs).values([
      { status: 'pending', attempts: 0, payload: { n: 1 } },
      { status: 'pending', attempts: 4, payload: { n: 2 }, lockedBy: 'w' },
      { status: 'done', attempts: 1, payload: { n: 3 } },
      { status: 'retry', attempts: 2, payload: { n: 1 }, queue: 'other' },
    ]);
    const conditions = [
      and(inArray(jobs.status, ['pending', 'retry']), lt(jobs.attempts, 3))!,
      or(isNotNull(jobs.lockedBy), eq(jobs.payload, { n: 1 }))!,
      sql`${jobs.attempts} in ${[1, 4]} and ${jobs.queue} = ${'default'}`,
      not(eq(jobs.queue, 'default')),
    ];
    for (const where of conditions) {
      const expected = await db.select().from(jobs).where(where).orderBy(jobs.id);
      const locked = await db.transaction((tx) => $lock(tx).row(jobs, { where, orderBy: jobs.id }));
      expect(locked).toEqual(expected);
      expect(expected.length).toBeGreaterThan(0);
    }
  });
});
