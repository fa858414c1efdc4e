/**
 * A claim that updates remembers its statement by the shape of the call (core/row-lock.ts,
 * `ClaimCall`): a later call of the same shape sends the remembered text with its own values,
 * without building anything. These tests pin that this never changes what a call does. Over
 * random sequences of claim calls on `pg` and on Drizzle, every call sends exactly the text and
 * values it sends when it builds its statement itself, and claims and returns the same rows (or
 * fails with the same error), whatever calls ran before it.
 *
 * The calls come in pairs: the second is the first with one part changed (a value, a value's
 * kind, a direction, the order of keys, an option made wrong). Calls whose shapes differ in one
 * detail then meet, as they would have to if a shape missed that detail.
 */
import { and, asc, desc, eq, gt, inArray, isNull, or, sql } from 'drizzle-orm';
import { drizzle } from 'drizzle-orm/node-postgres';
import fc from 'fast-check';
import type pg from 'pg';
import { beforeAll, describe, expect, test, vi } from 'vitest';
import { jobs } from '../drizzle/schema.js';
import { forgetClaimStatements } from '../src/core/row-lock.js';
import { $lock as drizzleLock } from '../src/drizzle/index.js';
import { $lock as pgLock } from '../src/pg/index.js';
import { useTestDatabase } from './helpers/database.js';

const db = useTestDatabase({ migrations: 'prisma' });

let client: pg.Client;

beforeAll(async () => {
  client = await db.client();
  await client.query('TRUNCATE jobs RESTART IDENTITY');
  await client.query(
    `INSERT INTO jobs (queue, status, locked_by, attempts, run_at)
     SELECT (ARRAY['a', 'b', 'c'])[1 + i % 3], (ARRAY['pending', 'running', 'done'])[1 + i % 4 % 3],
            CASE WHEN i % 5 = 0 THEN NULL ELSE 'w' || (i % 3) END, i % 4, timestamp '2026-01-01' + i * interval '1 minute'
     FROM generate_series(1, 24) AS i`,
  );
});

/** Runs a test's calls in one transaction, rolled back at the end. */
async function rolledBack(fn: () => Promise<void>): Promise<void> {
  await client.query('BEGIN');
  try {
    await fn();
  } finally {
    await client.query('ROLLBACK');
  }
}

type Path = readonly (string | number)[];

function isPlain(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/** Every part of a call that can be changed: the values inside its plain objects and arrays. */
function parts(value: unknown, at: Path = []): Path[] {
  const inside = isPlain(value) ? Object.entries(value) : Array.isArray(value) ? value.map((item, index) => [index, item] as const) : [];
  return [...(at.length > 0 ? [at] : []), ...inside.flatMap(([key, item]) => parts(item, [...at, key]))];
}

/** `value` with the part at `path` changed by `change` (copies along the path; keys keep their order). */
function changed(value: unknown, path: Path, change: (part: unknown) => unknown): unknown {
  if (path.length === 0) return change(value);
  const [head, ...rest] = path;
  if (Array.isArray(value)) return value.map((item, index) => (index === head ? changed(item, rest, change) : item));
  return Object.fromEntries(Object.entries(value as Record<string, unknown>).map(([key, item]) => [key, key === head ? changed(item, rest, change) : item]));
}

/** Its keys in reverse order, if it is a plain object. */
function reversedKeys(value: unknown): unknown {
  return isPlain(value) ? Object.fromEntries(Object.entries(value).reverse()) : value;
}

/** Pairs of calls, the second the first with one part replaced by one of `replacements` or its keys reversed. */
function relatives<T>(call: fc.Arbitrary<T>, replacements: readonly unknown[]): fc.Arbitrary<T[]> {
  const pair = fc.tuple(call, fc.nat(), fc.constantFrom(...replacements, reversedKeys)).map(([first, which, replacement]) => {
    const all = parts(first);
    const path = all[which % all.length]!;
    const second = changed(first, path, (part) => (replacement === reversedKeys ? reversedKeys(part) : replacement)) as T;
    return [first, second];
  });
  return fc.array(pair, { minLength: 1, maxLength: 3 }).map((pairs) => pairs.flat());
}

/** What one call sent and what came of it. */
interface Outcome {
  readonly sent: readonly (readonly [text: string, values: unknown])[];
  readonly result: unknown;
}

/**
 * Runs each call once with nothing remembered (its own build), then each call twice more in a
 * shuffled order with the statements of earlier calls remembered, and checks that those runs
 * sent and got exactly what the first did. Every run sits in a savepoint that is rolled back, so
 * each one sees the same rows.
 */
async function expectSameAsBuilt(calls: readonly (() => Promise<unknown>)[], order: readonly number[], sent: () => readonly (readonly [string, unknown])[]): Promise<void> {
  const once = async (call: () => Promise<unknown>): Promise<Outcome> => {
    const before = sent().length;
    await client.query('SAVEPOINT shape');
    let result: unknown;
    try {
      result = { rows: await call() };
    } catch (error) {
      result = { error: String(error) };
    }
    await client.query('ROLLBACK TO SAVEPOINT shape');
    // The claim statements alone (not the savepoints, nor the one read of the table's key).
    return { sent: sent().slice(before).filter(([text]) => /^(UPDATE|WITH) /.test(text)), result };
  };
  const built: Outcome[] = [];
  for (const call of calls) {
    forgetClaimStatements();
    built.push(await once(call));
  }
  for (const index of order) expect(await once(calls[index]!)).toEqual(built[index]);
}

/** Every call twice, shuffled. */
function replayOrder(count: number): fc.Arbitrary<number[]> {
  const twice = Array.from({ length: count * 2 }, (_, index) => index % count);
  return fc.shuffledSubarray(twice, { minLength: twice.length, maxLength: twice.length });
}

describe('pg claims', () => {
  const call = fc.record({
    table: fc.constantFrom('plain', 'object', 'qualified'),
    query: fc.record(
      {
        where: fc.record(
          {
            status: fc.oneof(fc.constantFrom('pending', 'running'), fc.constant(null), fc.constant(['pending', 'done'])),
            queue: fc.oneof(fc.constant('a'), fc.constant(['a', 'c'])),
            locked_by: fc.constantFrom('w1', null),
          },
          { requiredKeys: [] },
        ),
        orderBy: fc.oneof(fc.record({ id: fc.constantFrom('asc', 'desc') }), fc.constant([{ attempts: 'desc' }, { id: 'asc' }]), fc.constant({ run_at: 'asc', id: 'desc' })),
        limit: fc.constantFrom(0, 1, 2, 5),
        set: fc.record(
          {
            status: fc.constantFrom('running', 'claimed'),
            locked_by: fc.constantFrom('me', null),
            attempts: fc.integer({ min: 0, max: 9 }),
          },
          { requiredKeys: ['status'] },
        ),
        strength: fc.constantFrom('update', 'noKeyUpdate'),
      },
      { requiredKeys: ['set'] },
    ),
  });
  const replacements = [undefined, null, 'pending', 'running', ['pending'], 'asc', 'desc', 1, 2, 'noKeyUpdate', 'share', {}, -1];

  test('every call sends the statement and values it builds itself, and claims the same rows', async () => {
    const spy = vi.spyOn(client, 'query');
    const sent = () => spy.mock.calls.filter((args) => typeof args[0] === 'string').map((args) => [args[0] as string, args[1]] as const);
    const locks = pgLock(client);
    try {
      await rolledBack(() =>
        fc.assert(
          fc.asyncProperty(
            relatives(call, replacements).chain((calls) => fc.tuple(fc.constant(calls), replayOrder(calls.length))),
            async ([calls, order]) => {
              const runs = calls.map(({ table, query }) => () => {
                const name = table === 'plain' ? 'jobs' : table === 'object' ? { name: 'jobs' } : { schema: db.schema, name: 'jobs' };
                return locks.claim(name, query as never);
              });
              await expectSameAsBuilt(runs, order, sent);
            },
          ),
          { numRuns: 150 },
        ),
      );
    } finally {
      spy.mockRestore();
    }
  });
});

describe('Drizzle claims', () => {
  const conditions = [eq(jobs.status, 'pending'), eq(jobs.status, 'running'), eq(jobs.queue, 'a'), inArray(jobs.queue, ['a', 'b']), isNull(jobs.lockedBy), gt(jobs.attempts, 1)];
  const condition = fc.oneof(
    fc.constantFrom(...conditions),
    fc.tuple(fc.constantFrom(...conditions), fc.constantFrom(...conditions)).map(([a, b]) => and(a, b)),
    fc.tuple(fc.constantFrom(...conditions), fc.constantFrom(...conditions)).map(([a, b]) => or(a, b)),
  );
  const orderItems = [jobs.id, jobs.attempts, asc(jobs.runAt), desc(jobs.id), sql`${jobs.attempts} + ${1}`];
  const call = fc.record(
    {
      where: condition,
      orderBy: fc.oneof(fc.constantFrom(...orderItems), fc.constant([jobs.attempts, desc(jobs.id)])),
      limit: fc.constantFrom(0, 1, 2, 5),
      set: fc.record(
        {
          status: fc.constantFrom('running', 'claimed'),
          lockedBy: fc.constantFrom('me', null),
          attempts: fc.oneof(fc.integer({ min: 0, max: 9 }), fc.constant(sql`${jobs.attempts} + 1`)),
          runAt: fc.constant(new Date('2026-02-03T04:05:06.789Z')),
        },
        { requiredKeys: ['status'] },
      ),
      strength: fc.constantFrom('update', 'noKeyUpdate'),
    },
    { requiredKeys: ['set'] },
  );
  const replacements = [undefined, null, 'running', 1, 2, 'noKeyUpdate', 'share', jobs.id, desc(jobs.attempts), ...conditions, sql`${jobs.attempts} + 2`, new Date('2026-03-04T05:06:07.000Z')];

  test('every call sends the statement and values it builds itself, and claims the same rows', async () => {
    const log: (readonly [string, unknown])[] = [];
    const tx = drizzle({ client, logger: { logQuery: (text, params) => void log.push([text, params]) } });
    const locks = drizzleLock(tx);
    await rolledBack(() =>
      fc.assert(
        fc.asyncProperty(
          relatives(call, replacements).chain((calls) => fc.tuple(fc.constant(calls), replayOrder(calls.length))),
          async ([calls, order]) => {
            await expectSameAsBuilt(
              calls.map((query) => () => locks.claim(jobs, query as never)),
              order,
              () => log,
            );
          },
        ),
        { numRuns: 150 },
      ),
    );
  });
});
