/** A row as a driver returns it. */
export type Row = Record<string, unknown>;

/**
 * The single seam between lock semantics and a driver. `core/` talks to PostgreSQL only through
 * this; the Prisma, Drizzle and `pg` layers each implement it in a few lines.
 *
 * `text` is always ormlock's own SQL with `$1…$n` placeholders; every value travels in `params`.
 */
export interface Executor {
  /** Runs one statement (`text` with `$1…$n`, values in `params`) and resolves its rows. */
  query<T extends Row = Row>(text: string, params?: readonly unknown[]): Promise<T[]>;
  /**
   * Runs one of ormlock's own fixed statements as a named prepared statement (`name` is unique to
   * `text`), so a connection parses and plans it once instead of on every call. Only layers whose
   * driver names statements per connection set it (node-postgres; not behind a transaction-mode
   * pooler, where the next statement may reach another backend). ormlock falls back to
   * {@link Executor.query} for good if the server answers 26000 or 42P05.
   */
  readonly queryPrepared?: <T extends Row = Row>(name: string, text: string, params: readonly unknown[]) => Promise<T[]>;
  /**
   * Runs one statement and resolves how many rows it changed, without reading any row back. Only
   * layers whose driver pays noticeably per returned row set it (Prisma deserializes every raw
   * result); ormlock then sends its most frequent lease statement without `RETURNING`.
   */
  readonly execute?: (text: string, params: readonly unknown[]) => Promise<number>;
  /** True when every query runs inside one open transaction. */
  readonly inTransaction: boolean;
  /**
   * Runs a statement on another connection of the same database; ormlock uses it only to cancel
   * its own lock wait when the caller's `AbortSignal` fires. Without it, an abort still rejects
   * the call but the wait ends by itself (its `timeout`, or the lock being granted).
   */
  readonly sideChannel?: SideChannel;
  /** The backend's pid if the layer knows it without a query (node-postgres does). */
  readonly backendPid?: () => number | undefined;
  /**
   * When the driver itself will end the surrounding transaction (`performance.now()` ms), as
   * Prisma does after an interactive transaction's `timeout`. Waits are bounded by it so they
   * fail with a {@link LockTimeoutError} that says why, not with a driver error later.
   */
  readonly deadline?: number;
  /** The name of the bound on `deadline`, for error messages. */
  readonly deadlineSource?: string;
  /**
   * Runs `fn` inside a savepoint opened through the driver's own API, for drivers that need it:
   * postgres.js fails the whole transaction on any failed statement that did not run inside its
   * savepoint API, even one the caller caught. Rolled back if `fn` throws. Without it, ormlock
   * sends `SAVEPOINT` / `ROLLBACK TO SAVEPOINT` itself.
   */
  readonly savepoint?: <T>(fn: (executor: Executor) => Promise<T>) => Promise<T>;
}

/** Another connection to the same database. */
export interface SideChannel {
  /** Runs one statement on that other connection and resolves its rows. */
  query<T extends Row = Row>(text: string, params?: readonly unknown[]): Promise<T[]>;
}

/** A layer that can open a transaction and hand the ORM's own transaction object to the caller. */
export interface TransactionOpener<Tx, O = unknown> {
  /** Opens a transaction, runs `fn` in it, commits (a throw rolls back) and resolves `fn`'s result. */
  transaction<R>(fn: (executor: Executor, tx: Tx) => Promise<R>, options?: O): Promise<R>;
}
