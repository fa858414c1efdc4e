/**
 * `$lock(target, options)` is called per request, often per statement: building the lock object
 * (executors, bound methods) each time costs more than the SQL it sends. The object is stateless
 * over its target, so one is kept per target and set of option values and handed out again.
 */

interface Entry {
  readonly keys: readonly string[];
  readonly values: readonly unknown[];
  readonly lock: unknown;
}

// A few entries per target: option objects made fresh on every call (e.g. a literal
// `leaseTable: { … }`) never match, and must not make the list grow.
const MAX_ENTRIES = 4;
const cache = new WeakMap<object, Entry[]>();

/** The lock object for `target` built with options equal (key by key, `===`) to `options`. */
export function cachedLock<L>(target: object, options: object | undefined, build: () => L): L {
  const keys = options === undefined ? [] : Object.keys(options);
  const values = keys.map((key) => (options as Record<string, unknown>)[key]);
  let entries = cache.get(target);
  const found = entries?.find((entry) => entry.keys.length === keys.length && entry.keys.every((key, i) => key === keys[i] && entry.values[i] === values[i]));
  if (found) return found.lock as L;
  const lock = build();
  if (entries === undefined) cache.set(target, (entries = []));
  if (entries.length >= MAX_ENTRIES) entries.shift();
  entries.push({ keys, values, lock });
  return lock;
}
