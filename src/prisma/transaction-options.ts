import { InvalidLockArgumentError } from '../core/errors.js';

const ISOLATION_LEVELS = new Set(['ReadUncommitted', 'ReadCommitted', 'RepeatableRead', 'Serializable']);
const NAMES = new Set(['maxWait', 'timeout', 'isolationLevel']);

/**
 * Checks the `transaction` option of the transactions ormlock opens through `prisma.$transaction`
 * before any SQL: a string or a typo would otherwise be ignored, and a `timeout` that is not a
 * number would spoil the deadline ormlock bounds lock waits with.
 */
export function checkPrismaTransactionOptions(options: unknown): void {
  if (options === undefined) return;
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new InvalidLockArgumentError('options.transaction', 'expected { maxWait?, timeout?, isolationLevel? }');
  }
  for (const name of Object.keys(options)) if (!NAMES.has(name)) throw new InvalidLockArgumentError(`options.transaction.${name}`, 'unknown option');
  const { maxWait, timeout, isolationLevel } = options as Record<string, unknown>;
  for (const [name, value] of [
    ['maxWait', maxWait],
    ['timeout', timeout],
  ] as const) {
    if (value !== undefined && !(typeof value === 'number' && Number.isFinite(value) && value >= 0)) {
      throw new InvalidLockArgumentError(`options.transaction.${name}`, 'expected a non-negative number of milliseconds');
    }
  }
  if (isolationLevel !== undefined && !ISOLATION_LEVELS.has(isolationLevel as string)) {
    throw new InvalidLockArgumentError('options.transaction.isolationLevel', `expected one of ${[...ISOLATION_LEVELS].map((v) => `'${v}'`).join(', ')}`);
  }
}
