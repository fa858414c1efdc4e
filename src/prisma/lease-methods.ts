import { InvalidLockArgumentError } from '../core/errors.js';
import type { Executor } from '../core/executor.js';
import { type LeaseMethods, leaseMethods } from '../core/lease.js';
import { type LeaseHost, type NotifySource, leaseHostOf } from '../core/lease-host.js';
import { type LeaseTableOptions, ensureLeaseTable as ensureLeaseTableWith, leaseTableNames } from '../core/lease-schema.js';
import { poolLeaseExecutor } from '../pg/pg-executor.js';
import { isPool } from '../pg/pg-like.js';
import { poolNotifySource, urlNotifySource } from '../pg/pg-notify.js';
import { prismaExecute, prismaQuery } from './prisma-executor.js';
import { type AdapterSource, adapterOf } from './adapter-pool.js';
import type { PrismaRawLike } from './prisma-like.js';

/** Lease options of `lockExtension()`. */
export interface PrismaLeaseOptions {
  /**
   * A connection string for the one connection lease waiters LISTEN on while they wait, so they
   * wake within milliseconds of a release. Default: the connection string or pool given to
   * `@prisma/adapter-pg`, where the client exposes it (not with `pooling: 'transaction'`);
   * without one, waiters poll. Behind pgbouncer in transaction mode, point it at PostgreSQL
   * directly, or declare `pooling: 'transaction'` and let waiters poll.
   */
  readonly url?: string;
  /**
   * `'transaction'` when the adapter's connections go through a transaction-mode pooler
   * (pgbouncer `pool_mode = transaction` and the like): lease waiters then poll instead of
   * LISTENing through it (unless `url` is given), and lease statements on an adapter's `pg.Pool`
   * are not sent as named prepared statements.
   */
  readonly pooling?: 'none' | 'session' | 'transaction';
  /** Where the lease table is (default `ormlock_leases` on the search path). */
  readonly leaseTable?: LeaseTableOptions;
}

/** The lease methods of `prisma.$lock` (`root`) and of `tx.$lock` (`inTransaction`, which refuses). */
export function prismaLeases(base: PrismaRawLike, options: PrismaLeaseOptions): { root: LeaseMethods; inTransaction: LeaseMethods } {
  const table = leaseTableNames(options.leaseTable);
  let host: LeaseHost | undefined;
  const hostOf = (): LeaseHost =>
    (host ??= leaseHostOf(
      base,
      table,
      () => {
        const adapter = adapterOf(base);
        return {
          // Outside any transaction: each lease statement commits by itself.
          executor: leaseExecutor(base, adapter, options.pooling),
          notify: options.url === undefined && options.pooling === 'transaction' ? undefined : prismaNotifySource(adapter, options.url),
        };
      },
      `${options.pooling ?? ''}|${options.url ?? ''}`,
    ));
  return {
    root: leaseMethods(hostOf),
    inTransaction: leaseMethods(() => {
      throw new InvalidLockArgumentError(
        'tx.$lock',
        'leases commit on their own and outlive transactions: take them on the client (prisma.$lock.lease), not inside $transaction',
      );
    }),
  };
}

/**
 * The lease statements' executor. When the adapter was given a `pg.Pool`, they run on that pool
 * directly, as Drizzle's do on its node-postgres pool: the same connections Prisma uses, but each
 * fixed statement sent by name (parsed and planned once per connection, never through a
 * transaction-mode pooler), which makes an acquire + release about a third faster than through
 * `$queryRawUnsafe`. Otherwise (a connection string: the adapter's pool is private) through
 * Prisma. Lease statements commit on their own either way, so no Prisma transaction is bypassed.
 */
function leaseExecutor(base: PrismaRawLike, adapter: AdapterSource | undefined, pooling: PrismaLeaseOptions['pooling']): Executor {
  const pool = adapter?.externalPool;
  if (!isPool(pool)) return { query: prismaQuery(base), execute: prismaExecute(base), inTransaction: false };
  return poolLeaseExecutor(pool, pooling);
}

/** The LISTEN connection: `url`, else the pool or connection string given to `@prisma/adapter-pg`. */
function prismaNotifySource(adapter: AdapterSource | undefined, url: string | undefined): NotifySource | undefined {
  if (url !== undefined) return urlNotifySource(url);
  if (isPool(adapter?.externalPool)) return poolNotifySource(adapter.externalPool);
  const config = adapter?.config;
  if (typeof config === 'string') return urlNotifySource(config);
  if (typeof config === 'object' && config !== null) return urlNotifySource(config);
  return undefined;
}

/**
 * Creates the lease table if it does not exist (for scripts and tests; apps run
 * `npx ormlock migrate prisma`, which adds the model and a migration).
 *
 * @example
 * ```ts
 * await ensureLeaseTable(prisma);
 * ```
 */
export async function ensureLeaseTable(prisma: PrismaRawLike, options: LeaseTableOptions = {}): Promise<void> {
  await ensureLeaseTableWith({ query: prismaQuery(prisma) }, options);
}
