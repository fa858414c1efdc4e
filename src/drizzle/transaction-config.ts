import { InvalidLockArgumentError } from '../core/errors.js';

const ISOLATION_LEVELS = new Set(['read uncommitted', 'read committed', 'repeatable read', 'serializable']);
const ACCESS_MODES = new Set(['read only', 'read write']);
const NAMES = new Set(['isolationLevel', 'accessMode', 'deferrable']);

/**
 * Checks the `transaction` option before it reaches `db.transaction(fn, config)`: Drizzle writes
 * `isolationLevel` and `accessMode` into its BEGIN statement as they are, so a value from a caller
 * must be one of the words PostgreSQL knows, never arbitrary text.
 */
export function checkTransactionConfig(config: unknown): void {
  if (config === undefined) return;
  if (typeof config !== 'object' || config === null || Array.isArray(config)) {
    throw new InvalidLockArgumentError('options.transaction', 'expected { isolationLevel?, accessMode?, deferrable? }');
  }
  const { isolationLevel, accessMode, deferrable } = config as Record<string, unknown>;
  for (const name of Object.keys(config)) if (!NAMES.has(name)) throw new InvalidLockArgumentError(`options.transaction.${name}`, 'unknown option');
  if (isolationLevel !== undefined && !ISOLATION_LEVELS.has(isolationLevel as string)) {
    throw new InvalidLockArgumentError('options.transaction.isolationLevel', `expected one of ${[...ISOLATION_LEVELS].map((v) => `'${v}'`).join(', ')}`);
  }
  if (accessMode !== undefined && !ACCESS_MODES.has(accessMode as string)) {
    throw new InvalidLockArgumentError('options.transaction.accessMode', `expected 'read only' or 'read write'`);
  }
  if (deferrable !== undefined && typeof deferrable !== 'boolean') throw new InvalidLockArgumentError('options.transaction.deferrable', 'expected a boolean');
}
