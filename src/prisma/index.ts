/**
 * ormlock for Prisma 7: {@link lockExtension} adds `$lock` (advisory, row, table locks, leases,
 * prioritize, inspect) and `updateVersioned` / `deleteVersioned` to a client.
 *
 * @module ormlock/prisma
 */
export { lockExtension, type LockExtensionOptions, type PrismaLock, type PrismaLockTransaction } from './lock-extension.js';
export type { PrismaTransactionOptions, PrismaRawLike } from './prisma-like.js';
export type { VersionFieldMap, VersionedModelMethods, UpdateVersionedArgs, DeleteVersionedArgs } from './versioned.js';
export { ensureLeaseTable, type PrismaLeaseOptions } from './lease-methods.js';
export type {
  PrismaRowLocks,
  PrismaRowQuery,
  PrismaClaimQuery,
  PrismaModelName,
  PrismaModelRow,
  PrismaWhere,
  PrismaOrderBy,
  PrismaToOneRelation,
} from './row-lock-methods.js';
