import { type AdvisoryKey } from '../core/keys.js';
import { releaseSessionLocks } from '../core/advisory.js';
import { LockReleaseError } from '../core/errors.js';
import type { Executor } from '../core/executor.js';

/**
 * A session-scoped advisory lock held by one connection until released (or until that connection
 * closes). Release it on the same client it was taken on; `await using` does that for you.
 *
 * Not behind a transaction-mode pooler (pgbouncer `pool_mode = transaction`, and the like): the
 * pooler gives each statement or transaction to any server backend, so the lock stays with a
 * backend other clients then use. Declare such a connection with `$lock(client, { pooling:
 * 'transaction' })` and session locks are refused up front; without it, `release()` notices a
 * changed backend and throws {@link LockReleaseError} with reason `'backend-changed'`.
 *
 * @example
 * ```ts
 * const client = await pool.connect();
 * try {
 *   await using lock = await $lock(client).advisory('nightly-report', { scope: 'session' });
 *   await buildReport(client);
 * } finally {
 *   client.release();
 * }
 * ```
 */
export class SessionAdvisoryLock implements AsyncDisposable {
  #released = false;

  /** @internal */
  constructor(
    private readonly executor: Executor,
    private readonly keys: readonly AdvisoryKey[],
    private readonly shared: boolean,
    /** What the lock is, for messages. */
    readonly description: string,
    /** `pg_backend_pid()` of the server backend that took the lock (read in the locking statement). */
    readonly backendPid?: number,
  ) {}

  /** Whether {@link release} has run. */
  get released(): boolean {
    return this.#released;
  }

  /**
   * Releases the lock and checks that PostgreSQL really held it on this connection; if it did not,
   * throws {@link LockReleaseError}: reason `'backend-changed'` when the release ran on another
   * server backend than the one that took the lock (a transaction-mode pooler: the lock may still
   * be held by that backend), `'not-held'` otherwise (released already, or the connection was
   * reset). A second call does nothing.
   */
  async release(): Promise<void> {
    if (this.#released) return;
    this.#released = true;
    let releasedBy: number | undefined;
    const held = await releaseSessionLocks(this.executor, { keys: [...this.keys], shared: this.shared }, (pid) => (releasedBy = pid));
    const backends = { acquired: this.backendPid, released: releasedBy };
    if (this.backendPid !== undefined && releasedBy !== undefined && releasedBy !== this.backendPid) {
      throw new LockReleaseError(
        `${this.description} was taken by server backend ${this.backendPid}, but its release ran on backend ${releasedBy}: ` +
          `this connection goes through a transaction-mode pooler (e.g. pgbouncer pool_mode = transaction), which does not keep ` +
          `a session on one backend. Backend ${this.backendPid} may still hold the lock` +
          `${held.some(Boolean) ? `, and the unlock on backend ${releasedBy} released a lock of the same key held there (perhaps for another client)` : ''}. ` +
          `Use transaction-scoped locks or leases through such a pooler, or take session locks on a direct or session-mode connection`,
        'backend-changed',
        backends,
      );
    }
    if (!held.every(Boolean)) {
      throw new LockReleaseError(
        `${this.description} was not held by this connection when released: it was lost (released already, or the connection was reset)`,
        'not-held',
        backends,
      );
    }
  }

  /** Releases the lock at the end of an `await using` block (as {@link SessionAdvisoryLock.release}). */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.release();
  }
}
