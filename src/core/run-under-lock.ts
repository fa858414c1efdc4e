import { type AdvisoryPlan, type LockKeys, type LockResult, planAdvisory, tryAcquireAdvisory } from './advisory.js';
import { InvalidLockArgumentError } from './errors.js';
import type { Executor, TransactionOpener } from './executor.js';

/**
 * Where a `$lock` object works: bound to an open transaction, or able to open one. Every layer
 * builds one of these; the lock semantics behind it are written once, here in core.
 */
export type LockBinding<Tx, TxOptions = unknown> =
  | { readonly kind: 'transaction'; readonly executor: Executor; readonly tx: Tx }
  | { readonly kind: 'opener'; readonly opener: TransactionOpener<Tx, TxOptions>; readonly executor: Executor };

const BUSY = Symbol('busy');

/**
 * Runs `fn` under advisory locks. Inside a transaction the locks are taken there and held until it
 * ends; otherwise a transaction is opened, the locks taken, `fn(tx)` run, and the transaction
 * committed (or rolled back if `fn` throws).
 */
export async function runUnderAdvisory<Tx, R>(
  binding: LockBinding<Tx>,
  keys: LockKeys,
  fn: unknown,
  options: unknown,
): Promise<R | undefined | LockResult<R>> {
  const plan = planAdvisory(keys, options, 'run');
  if (typeof fn !== 'function') throw new InvalidLockArgumentError('fn', 'expected a function to run under the lock');
  const run = fn as (tx: Tx) => R | Promise<R>;
  const txOptions = (options as { transaction?: unknown } | undefined)?.transaction;

  let outcome: { value: R } | typeof BUSY;
  const attempt = async (executor: Executor, tx: Tx, ownTransaction: boolean): Promise<{ value: R } | typeof BUSY> => {
    const taken = await tryAcquireAdvisory(executor, plan, { scope: 'xact', ownTransaction });
    if (taken !== true) {
      if (plan.onBusy === 'throw') throw taken;
      return BUSY;
    }
    return { value: await run(tx) };
  };
  if (binding.kind === 'transaction') {
    if (txOptions !== undefined) throw new InvalidLockArgumentError('options.transaction', 'cannot be used inside a transaction that is already open');
    outcome = await attempt(binding.executor, binding.tx, false);
  } else {
    outcome = await binding.opener.transaction((executor, tx) => attempt(executor, tx, true), txOptions);
  }
  return settle(plan, outcome);
}

function settle<R>(plan: AdvisoryPlan, outcome: { value: R } | typeof BUSY): R | undefined | LockResult<R> {
  if (outcome === BUSY) return plan.onBusy === 'return' ? { acquired: false } : undefined;
  return plan.onBusy === 'return' ? { acquired: true, value: outcome.value } : outcome.value;
}
