import {
  type AdvisoryLockOptions,
  type AdvisoryRunOptions,
  acquireAdvisory,
  type LockKeys,
  type LockResult,
  planAdvisory,
} from './advisory.js';
import { NotInTransactionError } from './errors.js';
import { type LockBinding, runUnderAdvisory } from './run-under-lock.js';

/**
 * `advisory()` as every layer exposes it.
 *
 * - `advisory(key, options?)` inside a transaction: takes a transaction-scoped lock, held until
 *   commit or rollback; resolves whether it was taken. Outside one: {@link NotInTransactionError}.
 * - `advisory(key, fn, options?)`: runs `fn(tx)` under the lock, opening (and committing) a
 *   transaction when none is open.
 */
export interface AdvisoryMethod<Tx, TxOptions> {
  (key: LockKeys, options?: AdvisoryLockOptions): Promise<boolean>;
  <R, T extends Tx = Tx>(key: LockKeys, fn: (tx: T) => R | Promise<R>, options?: AdvisoryRunOptions<TxOptions> & { readonly onBusy?: 'throw' }): Promise<R>;
  <R, T extends Tx = Tx>(key: LockKeys, fn: (tx: T) => R | Promise<R>, options: AdvisoryRunOptions<TxOptions> & { readonly onBusy: 'skip' }): Promise<R | undefined>;
  <R, T extends Tx = Tx>(key: LockKeys, fn: (tx: T) => R | Promise<R>, options: AdvisoryRunOptions<TxOptions> & { readonly onBusy: 'return' }): Promise<LockResult<R>>;
}

/** Builds `advisory()` over a binding that is resolved at each call (a `pg` client may open a transaction between calls). */
export function advisoryMethod<Tx, TxOptions>(bindingOf: () => LockBinding<Tx, TxOptions>): AdvisoryMethod<Tx, TxOptions> {
  return (async (key: LockKeys, fnOrOptions?: unknown, options?: unknown) => {
    if (typeof fnOrOptions === 'function') return runUnderAdvisory(bindingOf(), key, fnOrOptions, options);
    return lockInTransaction(bindingOf(), key, fnOrOptions);
  }) as AdvisoryMethod<Tx, TxOptions>;
}

async function lockInTransaction<Tx>(binding: LockBinding<Tx>, key: LockKeys, options: unknown): Promise<boolean> {
  const plan = planAdvisory(key, options, 'lock');
  if (binding.kind !== 'transaction') {
    throw new NotInTransactionError(
      `${plan.what}: no transaction is open here, and a transaction-scoped lock would be released as soon as it was taken. ` +
        `Call it on a transaction (tx.$lock / $lock(tx)), or pass a function to run under the lock: advisory(key, async (tx) => { … })`,
    );
  }
  return acquireAdvisory(binding.executor, plan, { scope: 'xact' });
}
