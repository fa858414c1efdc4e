/**
 * `withRetry` on its own: what it retries, what it passes through at once, the backoff bounds,
 * `onRetry` and `signal`. The conflicts raised by a real PostgreSQL are in retry-postgres.test.ts.
 */
import { describe, expect, test } from 'vitest';
import {
  DeadlockError,
  InvalidLockArgumentError,
  LockNotAvailableError,
  LockTimeoutError,
  SerializationError,
  StaleVersionError,
  isRetryable,
  withRetry,
} from '../src/index.js';

/** A function that fails with `errors` in turn, then resolves `'done'`; counts its calls. */
function failing(...errors: unknown[]): { fn: (attempt: number) => Promise<string>; attempts: number[] } {
  const attempts: number[] = [];
  return {
    attempts,
    fn: async (attempt) => {
      attempts.push(attempt);
      if (attempts.length <= errors.length) throw errors[attempts.length - 1];
      return 'done';
    },
  };
}

const fast = { backoff: { initial: 1, max: 2 } } as const;

const retryable: [string, unknown][] = [
  ['StaleVersionError', new StaleVersionError('version-mismatch', 1, 2, { table: 't' })],
  ['SerializationError', new SerializationError('x')],
  ['DeadlockError', new DeadlockError('x')],
  ['node-postgres 40001', Object.assign(new Error('could not serialize access'), { code: '40001' })],
  ['node-postgres 40P01 under a Drizzle wrapper', new Error('Failed query', { cause: Object.assign(new Error('deadlock'), { code: '40P01' }) })],
  ['Prisma P2034', Object.assign(new Error('Transaction failed due to a write conflict or a deadlock'), { code: 'P2034' })],
  ['Prisma DriverAdapterError TransactionWriteConflict', Object.assign(new Error('TransactionWriteConflict'), { cause: { kind: 'TransactionWriteConflict' } })],
  ['Prisma driver adapter 40001', Object.assign(new Error('x'), { code: 'P2010', meta: { driverAdapterError: { cause: { originalCode: '40001' } } } })],
];

const notRetryable: [string, unknown][] = [
  ['a plain Error', new Error('boom')],
  ['unique violation 23505', Object.assign(new Error('duplicate key'), { code: '23505' })],
  ['Prisma P2002', Object.assign(new Error('Unique constraint failed'), { code: 'P2002' })],
  ['InvalidLockArgumentError', new InvalidLockArgumentError('x', 'bad')],
  ['LockTimeoutError (lockTimeouts off)', new LockTimeoutError('busy', 10)],
  ['LockNotAvailableError (lockTimeouts off)', new LockNotAvailableError('busy')],
  ['raw 55P03 (lockTimeouts off)', Object.assign(new Error('lock timeout'), { code: '55P03' })],
  ['a string', 'nope'],
  ['undefined', undefined],
];

describe('withRetry', () => {
  test.each(retryable)('retries %s', async (_name, error) => {
    const { fn, attempts } = failing(error, error);
    await expect(withRetry(fn, fast)).resolves.toBe('done');
    expect(attempts).toEqual([1, 2, 3]);
    expect(isRetryable(error)).toBe(true);
  });

  test.each(notRetryable)('passes %s through at once', async (_name, error) => {
    const { fn, attempts } = failing(error);
    const outcome = await withRetry(fn, fast).then(
      () => 'resolved',
      (caught: unknown) => caught,
    );
    expect(outcome).toBe(error);
    expect(attempts).toEqual([1]);
  });

  test('retries busy locks only with lockTimeouts: true', async () => {
    for (const error of [new LockTimeoutError('busy', 10), new LockNotAvailableError('busy'), Object.assign(new Error('x'), { code: '55P03' })]) {
      const { fn, attempts } = failing(error);
      await expect(withRetry(fn, { ...fast, lockTimeouts: true })).resolves.toBe('done');
      expect(attempts).toEqual([1, 2]);
    }
  });

  test('gives up after `retries` re-runs with the last error', async () => {
    const errors = [1, 2, 3, 4].map((n) => new StaleVersionError('version-mismatch', 0, n, { model: 'M' }));
    const { fn, attempts } = failing(...errors);
    await expect(withRetry(fn, { ...fast, retries: 3 })).rejects.toBe(errors[3]);
    expect(attempts).toEqual([1, 2, 3, 4]);

    const once = failing(errors[0]);
    await expect(withRetry(once.fn, { retries: 0 })).rejects.toBe(errors[0]);
    expect(once.attempts).toEqual([1]);
  });

  test('onRetry sees each error, the failed attempt and a full-jitter delay under the exponential cap', async () => {
    const errors = Array.from({ length: 6 }, () => new DeadlockError('x'));
    const { fn } = failing(...errors);
    const calls: [unknown, number, number][] = [];
    await withRetry(fn, { backoff: { initial: 2, max: 16, factor: 2 }, onRetry: (error, attempt, delayMs) => calls.push([error, attempt, delayMs]) });
    expect(calls.map(([error]) => error)).toEqual(errors);
    expect(calls.map(([, attempt]) => attempt)).toEqual([1, 2, 3, 4, 5, 6]);
    const caps = [2, 4, 8, 16, 16, 16];
    calls.forEach(([, , delayMs], index) => {
      expect(delayMs).toBeGreaterThanOrEqual(0);
      expect(delayMs).toBeLessThanOrEqual(caps[index]!);
      expect(Number.isInteger(delayMs)).toBe(true);
    });
  });

  test('a signal aborted between attempts stops the retries with its reason', async () => {
    const controller = new AbortController();
    const reason = new Error('shutting down');
    const { fn, attempts } = failing(new SerializationError('x'), new SerializationError('x'), new SerializationError('x'));
    const outcome = withRetry(fn, {
      backoff: { initial: 10_000, max: 10_000 },
      signal: controller.signal,
      onRetry: (_error, attempt) => {
        if (attempt === 2) controller.abort(reason);
      },
    });
    // The first wait may be long; abort it from outside too.
    setTimeout(() => controller.abort(reason), 20);
    await expect(outcome).rejects.toBe(reason);
    expect(attempts.length).toBeLessThanOrEqual(2);

    const never = failing();
    await expect(withRetry(never.fn, { signal: controller.signal })).rejects.toBe(reason);
    expect(never.attempts).toEqual([]);
  });

  test('rejects invalid options before the first attempt', async () => {
    const { fn, attempts } = failing();
    await expect(withRetry(fn, { retries: -1 })).rejects.toThrow(InvalidLockArgumentError);
    await expect(withRetry(fn, { retries: 1.5 })).rejects.toThrow(InvalidLockArgumentError);
    await expect(withRetry(fn, { backoff: { factor: 0.5 } })).rejects.toThrow(InvalidLockArgumentError);
    await expect(withRetry(fn, { backoff: { initial: 'soon' as never } })).rejects.toThrow(InvalidLockArgumentError);
    await expect(withRetry(fn, { signal: {} as AbortSignal })).rejects.toThrow(InvalidLockArgumentError);
    expect(attempts).toEqual([]);
  });
});
