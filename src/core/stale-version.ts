import { describe } from './duration.js';
import { InvalidLockArgumentError, StaleVersionError } from './errors.js';

/** A value of a version column: an integer (`Int`, `integer`) or a bigint (`BigInt`, `bigint`). */
export type VersionValue = number | bigint;

/** Throws {@link InvalidLockArgumentError} unless `value` can be a version (an integer or a bigint). */
export function checkVersion(value: unknown, argument: string): asserts value is VersionValue {
  if (typeof value === 'bigint' || (typeof value === 'number' && Number.isSafeInteger(value))) return;
  throw new InvalidLockArgumentError(argument, `expected the integer version you read, got ${describe(value)}`);
}

/**
 * What a versioned write that matched no row means, once the row has been read again:
 * `current` is the row's version now, or `undefined` when no row matches `where` any more.
 *
 * Returns `undefined` when the row is there with the expected version: then the write did not
 * fail for a stale version (e.g. another filter in `where` excluded it) and the caller should
 * rethrow what it had.
 */
export function staleVersionError(
  expected: VersionValue,
  current: unknown,
  target: { readonly model?: string; readonly table?: string },
  options?: { cause?: unknown },
): StaleVersionError | undefined {
  if (current === undefined || current === null) return new StaleVersionError('gone', expected, undefined, target, options);
  // Drivers hand back int8 as string or bigint depending on settings; compare by value.
  if (String(current) === String(expected)) return undefined;
  const actual = typeof current === 'bigint' || typeof current === 'number' ? current : typeof expected === 'bigint' ? BigInt(String(current)) : Number(current);
  return new StaleVersionError('version-mismatch', expected, actual, target, options);
}
