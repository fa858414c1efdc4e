import { type Duration, parseDuration } from './duration.js';
import {
  DeadlockError,
  InvalidLockArgumentError,
  LockNotAvailableError,
  LockTimeoutError,
  SerializationError,
  StaleVersionError,
} from './errors.js';
import { SqlState, sqlStateOf } from './sqlstate.js';

/** Exponential backoff with full jitter: before retry `n` (1-based) wait a random time in `[0, min(max, initial × factor^(n-1))]`. */
export interface BackoffOptions {
  /** The cap of the first wait. Default `'10ms'`. */
  readonly initial?: Duration;
  /** No wait is longer than this. Default `'1s'`. */
  readonly max?: Duration;
  /** Growth of the cap per retry. Default `2`. */
  readonly factor?: number;
}

/** Options of {@link withRetry}. */
export interface RetryOptions {
  /** How many times `fn` may be re-run after its first attempt. Default `10`; `0` never retries. */
  readonly retries?: number;
  /** How long to wait between attempts. Default `{ initial: '10ms', max: '1s', factor: 2 }`, full jitter. */
  readonly backoff?: BackoffOptions;
  /**
   * Stops retrying: checked before every attempt and during every wait, where it rejects at once
   * with the signal's `reason`. An attempt already running is not interrupted; hand the signal
   * to `fn` yourself for that.
   */
  readonly signal?: AbortSignal;
  /** Called before each wait, with the error that failed attempt number `attempt` (1-based) and the wait chosen. */
  readonly onRetry?: (error: unknown, attempt: number, delayMs: number) => void;
  /**
   * Also retry when a lock stayed busy: `LockTimeoutError`, `LockNotAvailableError`, SQLSTATE
   * 55P03. Off by default: a timeout usually means "give up", not "try again at once".
   */
  readonly lockTimeouts?: boolean;
}

const DEFAULT_RETRIES = 10;
const DEFAULT_INITIAL_MS = 10;
const DEFAULT_MAX_MS = 1_000;
const DEFAULT_FACTOR = 2;

// Prisma's own code for "Transaction failed due to a write conflict or a deadlock".
const PRISMA_WRITE_CONFLICT = 'P2034';

/**
 * Runs `fn`, and runs it again when it failed because of a conflict that a fresh attempt can win:
 * a {@link StaleVersionError}, a serialization failure (40001), a deadlock (40P01), Prisma's
 * write-conflict error (P2034), and, with `lockTimeouts: true`, a busy lock (55P03). Any other
 * error is rethrown at once, and so is the last conflict when `retries` are used up.
 *
 * `fn` must be the whole unit of work, reads included: after 40001 or 40P01 PostgreSQL has
 * aborted the transaction, and after a stale version the data you read is old. So wrap the
 * transaction (or the read + `updateVersioned`), never one statement inside a transaction.
 *
 * @example
 * ```ts
 * await withRetry(async () => {
 *   const counter = await prisma.counter.findUniqueOrThrow({ where: { name } });
 *   await prisma.counter.updateVersioned({ where: { name }, version: counter.version, data: { value: counter.value + 1 } });
 * });
 *
 * await withRetry(
 *   () => prisma.$transaction(async (tx) => transfer(tx, from, to, amount), { isolationLevel: 'Serializable' }),
 *   { retries: 5, onRetry: (error, attempt) => log.warn({ error, attempt }, 'retrying transfer') },
 * );
 * ```
 */
export async function withRetry<T>(fn: (attempt: number) => Promise<T>, options: RetryOptions = {}): Promise<T> {
  if (typeof fn !== 'function') throw new InvalidLockArgumentError('fn', 'expected a function to run and retry');
  if (options.onRetry !== undefined && typeof options.onRetry !== 'function') throw new InvalidLockArgumentError('options.onRetry', 'expected a function');
  const retries = options.retries ?? DEFAULT_RETRIES;
  if (!(Number.isInteger(retries) || retries === Infinity) || retries < 0) {
    throw new InvalidLockArgumentError('options.retries', 'expected a non-negative integer');
  }
  const backoff = backoffOf(options.backoff);
  const { signal } = options;
  if (signal !== undefined && !(signal instanceof AbortSignal)) {
    throw new InvalidLockArgumentError('options.signal', 'expected an AbortSignal');
  }
  for (let attempt = 1; ; attempt += 1) {
    signal?.throwIfAborted();
    try {
      return await fn(attempt);
    } catch (error) {
      if (attempt > retries || !isRetryable(error, { lockTimeouts: options.lockTimeouts })) throw error;
      const delayMs = Math.floor(Math.random() * Math.min(backoff.max, backoff.initial * backoff.factor ** (attempt - 1)));
      options.onRetry?.(error, attempt, delayMs);
      await sleep(delayMs, signal);
    }
  }
}

/**
 * Whether {@link withRetry} would retry `error`: it is (or was caused by) a stale version, a
 * serialization failure, a deadlock or Prisma's write conflict, or, with `lockTimeouts`, a busy lock.
 */
export function isRetryable(error: unknown, options: { lockTimeouts?: boolean } = {}): boolean {
  if (error instanceof StaleVersionError || error instanceof SerializationError || error instanceof DeadlockError) return true;
  if (error instanceof LockTimeoutError || error instanceof LockNotAvailableError) return options.lockTimeouts === true;
  if (isPrismaWriteConflict(error)) return true;
  switch (sqlStateOf(error)) {
    case SqlState.serializationFailure:
    case SqlState.deadlockDetected:
      return true;
    case SqlState.lockNotAvailable:
      return options.lockTimeouts === true;
    default:
      return false;
  }
}

// Prisma's driver adapters report 40001 and 40P01 as this kind (with the SQLSTATE as `originalCode`).
const PRISMA_CONFLICT_KIND = 'TransactionWriteConflict';

/** Whether Prisma marked the error, or an error it wraps, as a write conflict or deadlock. */
function isPrismaWriteConflict(error: unknown): boolean {
  const seen = new Set<unknown>();
  const queue: unknown[] = [error];
  while (queue.length > 0) {
    const current = queue.shift();
    if (current === null || typeof current !== 'object' || seen.has(current)) continue;
    seen.add(current);
    const record = current as Record<string, unknown>;
    if (record['code'] === PRISMA_WRITE_CONFLICT || record['kind'] === PRISMA_CONFLICT_KIND) return true;
    queue.push(record['cause'], record['meta'], record['driverAdapterError']);
  }
  return false;
}

function backoffOf(options: BackoffOptions = {}): { initial: number; max: number; factor: number } {
  const initial = options.initial === undefined ? DEFAULT_INITIAL_MS : parseDuration(options.initial, 'options.backoff.initial');
  const max = options.max === undefined ? Math.max(DEFAULT_MAX_MS, initial) : parseDuration(options.max, 'options.backoff.max');
  const factor = options.factor ?? DEFAULT_FACTOR;
  if (!Number.isFinite(factor) || factor < 1) throw new InvalidLockArgumentError('options.backoff.factor', 'expected a number ≥ 1');
  return { initial, max, factor };
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
