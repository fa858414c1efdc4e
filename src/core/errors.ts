/**
 * Every error ormlock throws is an {@link OrmlockError} with a stable `code`. PostgreSQL failures
 * are classified by SQLSTATE (never by message text) whichever driver raised them; the driver's
 * original error is kept as `cause`.
 *
 * @example
 * ```ts
 * try {
 *   await tx.$lock.advisory('invoice:42', { timeout: '2s' });
 * } catch (error) {
 *   if (error instanceof LockTimeoutError) return reply.status(409).send('busy, try again');
 *   throw error;
 * }
 * ```
 */
export abstract class OrmlockError extends Error {
  /** A stable, machine-readable code; never changes between releases. */
  abstract readonly code: string;

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** The caller passed something ormlock cannot use. Thrown before any SQL is sent. */
export class InvalidLockArgumentError extends OrmlockError {
  readonly code = 'INVALID_ARGUMENT';
  constructor(
    /** The argument or option at fault, e.g. `key` or `options.timeout`. */
    readonly argument: string,
    message: string,
  ) {
    super(`${argument}: ${message}`);
  }
}

/**
 * A transaction-scoped lock was requested where no transaction is open. PostgreSQL would take it
 * and release it at the end of the same statement, so it would protect nothing.
 */
export class NotInTransactionError extends OrmlockError {
  readonly code = 'NOT_IN_TRANSACTION';
}

/** The lock was busy and the caller asked not to wait (`wait: false`, `nowait`). */
export class LockNotAvailableError extends OrmlockError {
  readonly code = 'LOCK_NOT_AVAILABLE';
}

/** The lock stayed busy for the whole `timeout`. */
export class LockTimeoutError extends OrmlockError {
  readonly code = 'LOCK_TIMEOUT';
  constructor(
    message: string,
    /** How long the wait was allowed to last, in milliseconds. */
    readonly timeoutMs: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** The wait was cancelled through the caller's `AbortSignal`. `cause` is the signal's reason. */
export class LockAbortedError extends OrmlockError {
  readonly code = 'LOCK_ABORTED';
}

/** PostgreSQL broke a deadlock by failing this transaction (SQLSTATE 40P01). Retry it whole. */
export class DeadlockError extends OrmlockError {
  readonly code = 'DEADLOCK';
}

/** A serializable or repeatable-read transaction could not be serialized (SQLSTATE 40001). Retry it whole. */
export class SerializationError extends OrmlockError {
  readonly code = 'SERIALIZATION_FAILURE';
}

/** A statement was cancelled by someone else or by `statement_timeout` (SQLSTATE 57014). */
export class QueryCanceledError extends OrmlockError {
  readonly code = 'QUERY_CANCELED';
}

/**
 * Why a session lock's release failed: PostgreSQL did not hold it on this connection any more
 * (`'not-held'`), or the release ran on another server backend than the one that took it
 * (`'backend-changed'`: a transaction-mode pooler sits between the client and PostgreSQL).
 */
export type LockReleaseReason = 'not-held' | 'backend-changed';

/** PostgreSQL did not release a session lock that this handle believed it held. */
export class LockReleaseError extends OrmlockError {
  readonly code = 'LOCK_RELEASE_FAILED';
  constructor(
    message: string,
    /** What went wrong; `'backend-changed'` means transaction pooling stranded the lock. */
    readonly reason: LockReleaseReason = 'not-held',
    /** The backends that took and released the lock (`pg_backend_pid()`), when known. */
    readonly backends: {
      /** The backend that took the lock. */
      readonly acquired?: number;
      /** The backend the release ran on. */
      readonly released?: number;
    } = {},
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/**
 * A session-scoped lock was asked for on a connection declared to go through a transaction-mode
 * pooler (`$lock(client, { pooling: 'transaction' })`): the pooler hands each transaction to any
 * server backend, so the lock would stay with a backend other clients then use. Thrown before any
 * SQL is sent. Use a transaction-scoped lock or a lease instead.
 */
export class SessionLockUnsupportedError extends OrmlockError {
  readonly code = 'SESSION_LOCK_UNSUPPORTED';
}

/** Why a versioned write matched no row: the row no longer exists, or it has another version. */
export type StaleVersionReason = 'gone' | 'version-mismatch';

/**
 * A versioned write (`updateVersioned` / `deleteVersioned`) found no row with the version the
 * caller read: someone else changed or deleted it in between. Nothing was written. Read the row
 * again and redo the change, or let `withRetry` re-run the whole read-modify-write.
 *
 * @example
 * ```ts
 * try {
 *   await prisma.account.updateVersioned({ where: { id }, version: 3, data: { owner: 'ann' } });
 * } catch (error) {
 *   if (error instanceof StaleVersionError && error.reason === 'gone') return reply.status(404).send();
 *   if (error instanceof StaleVersionError) return reply.status(409).send(`now at version ${error.actual}`);
 *   throw error;
 * }
 * ```
 */
export class StaleVersionError extends OrmlockError {
  readonly code = 'STALE_VERSION';
  constructor(
    /** `'gone'`: no row matches `where` any more; `'version-mismatch'`: it does, with another version. */
    readonly reason: StaleVersionReason,
    /** The version the caller expected (the one it read). */
    readonly expected: number | bigint,
    /** The version the row has now; `undefined` when the row is gone. */
    readonly actual: number | bigint | undefined,
    /** Where: the Prisma model (`model`) or the SQL table (`table`), whichever layer raised it. */
    readonly target: {
      /** The Prisma model (Prisma layer). */
      readonly model?: string;
      /** The SQL table (Drizzle layer). */
      readonly table?: string;
    },
    options?: { cause?: unknown },
  ) {
    const name = target.model ?? target.table ?? 'row';
    super(
      reason === 'gone'
        ? `${name}: the row to write (expected version ${expected}) no longer exists`
        : `${name}: expected version ${expected}, but the row is at version ${actual}; read it again and retry`,
      options,
    );
  }

  /** The Prisma model name, when raised by the Prisma extension. */
  get model(): string | undefined {
    return this.target.model;
  }

  /** The SQL table name, when raised by the Drizzle helpers. */
  get table(): string | undefined {
    return this.target.table;
  }
}

/** Why a lease ended without its holder releasing it. */
export type LeaseLostReason =
  /** The database clock passed `expires_at` (or this process stopped trusting the lease before renewing it). */
  | 'expired'
  /** Another owner holds the name now (the row has another owner or fencing token). */
  | 'taken'
  /** No row for the name: released already, or pruned. */
  | 'gone';

/**
 * A lease is no longer held by this handle: it expired (heartbeats did not reach the database in
 * time), another owner took it over, or it was released already. Work done under the lease must
 * stop; writes guarded by its fencing token are refused by the database from now on.
 * Also thrown by `release()` / `extend()` on a lease that is not held (wrong owner, or after expiry).
 */
export class LeaseLostError extends OrmlockError {
  readonly code = 'LEASE_LOST';
  constructor(
    message: string,
    /** The lease's name. */
    readonly lease: string,
    /** How it was lost: see {@link LeaseLostReason}. */
    readonly reason: LeaseLostReason,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/**
 * The lease table does not exist (SQLSTATE 42P01). The message names the command that creates it:
 * `npx ormlock migrate prisma`, `npx ormlock migrate drizzle`, `npx ormlock migrate sql`, or
 * `ensureLeaseTable()` in a script.
 */
export class LeaseTableMissingError extends OrmlockError {
  readonly code = 'LEASE_TABLE_MISSING';
  constructor(
    /** The table ormlock looked for, quoted as in SQL: `"ormlock_leases"`. */
    readonly table: string,
    options?: { cause?: unknown },
  ) {
    super(
      `the lease table ${table} does not exist. Create it with a migration: \`npx ormlock migrate prisma\` (adds the model and a migration to prisma/), ` +
        `\`npx ormlock migrate drizzle\` (or export the table from 'ormlock/drizzle' in your schema) then drizzle-kit generate, ` +
        `\`npx ormlock migrate sql\` (prints the SQL), or call ensureLeaseTable() in a script or test setup`,
      options,
    );
  }
}

/**
 * `prioritize` could not cancel or terminate a backend that blocks the wait: the connection lacks
 * the privilege (SQLSTATE 42501). Only superusers, members of the blocker's role, and members of
 * `pg_signal_backend` may signal another session (and only superusers may signal a superuser's).
 * The wait was given up (blockers signalled before the failing one stay signalled). `cause` is
 * the driver's error.
 */
export class PrioritizePermissionError extends OrmlockError {
  readonly code = 'PRIORITIZE_PERMISSION_DENIED';
}

/**
 * `prioritize` could not look for blockers several times in a row (its second connection failed:
 * a full pool, a network error). The wait was given up rather than left to wait unprioritized.
 * `cause` is the last driver error.
 */
export class PrioritizeFailedError extends OrmlockError {
  readonly code = 'PRIORITIZE_FAILED';
}
