/**
 * ormlock: every PostgreSQL lock for Prisma and Drizzle apps. The ORM layers live in
 * `ormlock/prisma`, `ormlock/drizzle` and `ormlock/pg`; this entry holds what they share: errors,
 * keys, durations and the types of the lock API.
 *
 * @module ormlock
 */
export {
  OrmlockError,
  InvalidLockArgumentError,
  NotInTransactionError,
  LockNotAvailableError,
  LockTimeoutError,
  LockAbortedError,
  DeadlockError,
  SerializationError,
  QueryCanceledError,
  LockReleaseError,
  type LockReleaseReason,
  SessionLockUnsupportedError,
  StaleVersionError,
  type StaleVersionReason,
  PrioritizePermissionError,
  PrioritizeFailedError,
} from './core/errors.js';
export type { PrioritizeOptions, PrioritizeFilter, PrioritizeRunOptions, PrioritizeMethod, BlockerInfo } from './core/prioritize.js';
export {
  inspectionToJson,
  type InspectOptions,
  type Inspection,
  type LockInfo,
  type LeaseInfo,
  type InspectedAdvisoryKey,
  type InspectMethod,
} from './core/inspect.js';
export { withRetry, isRetryable, type RetryOptions, type BackoffOptions } from './core/retry.js';
export type { VersionValue } from './core/stale-version.js';
export { type LockKey, hashKey } from './core/keys.js';
export { type Duration, parseDuration } from './core/duration.js';
export type { AdvisoryLockOptions, AdvisoryRunOptions, LockKeys, LockResult } from './core/advisory.js';
export type { AdvisoryMethod } from './core/lock-api.js';
export type { Executor, SideChannel, TransactionOpener, Row } from './core/executor.js';
export { sqlStateOf } from './core/sqlstate.js';
export { LeaseLostError, LeaseTableMissingError, type LeaseLostReason } from './core/errors.js';
export {
  type Lease,
  type LeaseOptions,
  type LeasePrioritizeOptions,
  type WithLeaseOptions,
  type LeaderOptions,
  type Leadership,
  type LeaseMethods,
  fencingCondition,
} from './core/lease.js';
export type { LeaseRecord } from './core/lease-host.js';
export {
  type LeaseTableOptions,
  type PrismaLeaseModelOptions,
  DEFAULT_LEASE_TABLE,
  leaseTableSql,
  leaseTableStatements,
  ensureLeaseTable,
  prismaLeaseModel,
} from './core/lease-schema.js';
export type { RowLockStrength, RowLockWait, RowLockOptions } from './core/row-lock.js';
export { type TableLockMode, type TableLockOptions, TABLE_LOCK_MODES } from './core/table-lock.js';
