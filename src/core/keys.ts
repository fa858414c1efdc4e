import { createHash } from 'node:crypto';
import { describe } from './duration.js';
import { InvalidLockArgumentError } from './errors.js';

/**
 * What names an advisory lock.
 *
 * - a string: hashed to one signed 64-bit key by {@link hashKey} (SHA-256, first 8 bytes,
 *   big-endian, two's complement);
 * - an integer `number` (a safe integer) or a `bigint` in the signed 64-bit range: used as is;
 * - `[namespace, id]`, two 32-bit signed integers: PostgreSQL's two-key form, a separate key space.
 *
 * The same key is the same lock from Prisma, Drizzle and `pg`, and from any other language that
 * computes the same function.
 */
export type LockKey = string | number | bigint | readonly [namespace: number, id: number];

/** A key as PostgreSQL sees it. */
export type AdvisoryKey =
  | { readonly kind: 'int8'; readonly value: bigint; readonly source: LockKey }
  | { readonly kind: 'pair'; readonly namespace: number; readonly id: number; readonly source: LockKey };

const INT8_MIN = -(2n ** 63n);
const INT8_MAX = 2n ** 63n - 1n;
const INT4_MIN = -(2 ** 31);
const INT4_MAX = 2 ** 31 - 1;

/**
 * The signed 64-bit advisory key of a string: the first 8 bytes of SHA-256 over its UTF-8 bytes,
 * read as a big-endian two's-complement integer. The same in SQL:
 *
 * ```sql
 * SELECT ('x' || left(encode(sha256(convert_to('invoice:42', 'UTF8')), 'hex'), 16))::bit(64)::bigint;
 * ```
 *
 * 64 bits make an accidental collision negligible (about 1 in 10^10 for a million distinct keys),
 * unlike the 32-bit hashes some libraries use. An empty string or one with a lone surrogate
 * throws {@link InvalidLockArgumentError}, as it does as a lock key.
 */
export function hashKey(key: string): bigint {
  // The same refusals as a lock key: a lone surrogate would be hashed as U+FFFD (the UTF-8
  // encoder replaces it), the key of another string, and PostgreSQL cannot hold it to compare.
  if (typeof key !== 'string' || key.length === 0) throw new InvalidLockArgumentError('key', `expected a non-empty string, got ${describe(key)}`);
  return hashStringKey(key, 'key');
}

/** A non-empty string key's 64-bit hash; a lone surrogate is refused, naming `argument`. */
function hashStringKey(key: string, argument: string): bigint {
  const value = hashWellFormed(key);
  if (value === undefined) throw new InvalidLockArgumentError(argument, 'a string key must be well-formed UTF-16 (it has a lone surrogate)');
  return value;
}

/** How many recently hashed string keys this process remembers, for {@link knownKeyOf}. */
export const KNOWN_KEYS_LIMIT = 10_000;

// The keys hashed last, both ways: by key, so that a key locked again is not hashed again, and by
// value, for inspect(). First hashed first dropped (a Map keeps insertion order); a key still in
// use comes back with its next lock.
const hashedKeys = new Map<string, bigint>();
const knownKeys = new Map<bigint, string>();

/** The key's 64-bit hash, or undefined when it is not well-formed UTF-16 (checked before hashing it). */
function hashWellFormed(key: string): bigint | undefined {
  const known = hashedKeys.get(key);
  if (known !== undefined) return known;
  if (!key.isWellFormed()) return undefined;
  const value = createHash('sha256').update(key, 'utf8').digest().readBigInt64BE(0);
  hashedKeys.set(key, value);
  knownKeys.set(value, key);
  if (hashedKeys.size > KNOWN_KEYS_LIMIT) {
    const [oldest, oldValue] = hashedKeys.entries().next().value as [string, bigint];
    hashedKeys.delete(oldest);
    if (knownKeys.get(oldValue) === oldest) knownKeys.delete(oldValue);
  }
  return value;
}

/**
 * The string key that hashed to `value` in this process, if it was one of the last
 * {@link KNOWN_KEYS_LIMIT} keys hashed here; `undefined` otherwise (a hash cannot be reversed).
 * `inspect()` uses it to show `"invoice:42"` instead of a number.
 */
export function knownKeyOf(value: bigint): string | undefined {
  return knownKeys.get(value);
}

/**
 * The key of an advisory lock as `pg_locks` shows it: `objsubid` 1 is one bigint key split into
 * two unsigned 32-bit halves (`classid` high, `objid` low); `objsubid` 2 is the `[namespace, id]`
 * form (`classid`, `objid`, each an int4 shown unsigned).
 */
export function advisoryKeyFromLock(classid: number | string, objid: number | string, objsubid: number | string): AdvisoryKey {
  const high = BigInt(classid);
  const low = BigInt(objid);
  if (Number(objsubid) === 2) {
    const namespace = Number(BigInt.asIntN(32, high));
    const id = Number(BigInt.asIntN(32, low));
    return { kind: 'pair', namespace, id, source: [namespace, id] };
  }
  const value = BigInt.asIntN(64, (high << 32n) | low);
  return { kind: 'int8', value, source: knownKeyOf(value) ?? value };
}

/** Validates a caller's key and maps it to the form PostgreSQL takes. */
export function advisoryKeyOf(key: unknown, argument = 'key'): AdvisoryKey {
  if (typeof key === 'string') {
    if (key.length === 0) throw new InvalidLockArgumentError(argument, 'a string key must not be empty');
    return { kind: 'int8', value: hashStringKey(key, argument), source: key };
  }
  if (typeof key === 'number') {
    if (!Number.isSafeInteger(key)) {
      throw new InvalidLockArgumentError(argument, `a number key must be a safe integer (use a bigint beyond 2^53), got ${describe(key)}`);
    }
    return { kind: 'int8', value: BigInt(key), source: key };
  }
  if (typeof key === 'bigint') {
    if (key < INT8_MIN || key > INT8_MAX) {
      throw new InvalidLockArgumentError(argument, `a bigint key must fit in a signed 64-bit integer, got ${describe(key)}`);
    }
    return { kind: 'int8', value: key, source: key };
  }
  if (Array.isArray(key)) {
    const [namespace, id] = key as unknown[];
    if (key.length !== 2 || !isInt4(namespace) || !isInt4(id)) {
      throw new InvalidLockArgumentError(argument, 'a [namespace, id] key must be two 32-bit signed integers');
    }
    return { kind: 'pair', namespace, id, source: key as [number, number] };
  }
  throw new InvalidLockArgumentError(argument, `expected a string, an integer, a bigint or [namespace, id], got ${describe(key)}`);
}

function isInt4(value: unknown): value is number {
  return Number.isInteger(value) && (value as number) >= INT4_MIN && (value as number) <= INT4_MAX;
}

/**
 * Validates one key or several and returns them deduplicated in one fixed order (64-bit keys by
 * value, then pairs), so that two callers locking the same set never wait on each other in a cycle.
 */
export function advisoryKeysOf(keys: unknown): AdvisoryKey[] {
  // A two-element array of numbers is the [namespace, id] form, not two keys.
  const many = Array.isArray(keys) && !isPairShape(keys);
  if (!many) return [advisoryKeyOf(keys, 'key')];
  const list = keys as unknown[];
  if (list.length === 0) throw new InvalidLockArgumentError('key', 'at least one key is required');
  const byIdentity = new Map<string, AdvisoryKey>();
  list.forEach((key, index) => {
    const parsed = advisoryKeyOf(key, many ? `key[${index}]` : 'key');
    byIdentity.set(identityOf(parsed), parsed);
  });
  return [...byIdentity.values()].sort(compareKeys);
}

function isPairShape(keys: unknown[]): boolean {
  return keys.length === 2 && typeof keys[0] === 'number' && typeof keys[1] === 'number';
}

function identityOf(key: AdvisoryKey): string {
  return key.kind === 'int8' ? `8:${key.value}` : `4:${key.namespace}:${key.id}`;
}

function compareKeys(a: AdvisoryKey, b: AdvisoryKey): number {
  if (a.kind === 'int8' && b.kind === 'int8') return a.value < b.value ? -1 : a.value > b.value ? 1 : 0;
  if (a.kind === 'pair' && b.kind === 'pair') return a.namespace - b.namespace || a.id - b.id;
  return a.kind === 'int8' ? -1 : 1;
}
