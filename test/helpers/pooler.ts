/**
 * Test helpers for runs through pgbouncer (`ORMLOCK_TEST_POOLER`, see `test/helpers/pgbouncer.ts`).
 */
import { inject, test, type TestFunction } from 'vitest';
import type {} from './provided-context.js';

/** Why {@link sessionBoundTest} skips: the same words in every skipped test's name. */
export const SESSION_BOUND_REASON = 'skipped under transaction pooling: it holds a session lock, which needs one server backend';

/** Whether this run goes through pgbouncer in transaction mode. */
export function transactionPooling(): boolean {
  return inject('ormlockPooler') === 'transaction';
}

/**
 * `test(name, fn)` for a test that holds state on one server session between statements
 * (session advisory locks): skipped, with {@link SESSION_BOUND_REASON} in its name, only when the
 * run goes through a transaction-mode pooler. `test/compat-pooler.test.ts` proves what ormlock
 * does there instead (refuses, or detects the changed backend).
 */
export function sessionBoundTest(name: string, fn: TestFunction, timeout?: number): void {
  const skip = transactionPooling();
  test.skipIf(skip)(skip ? `${name} (${SESSION_BOUND_REASON})` : name, fn, timeout);
}
