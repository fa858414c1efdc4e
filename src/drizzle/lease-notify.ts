import type { NotifySource } from '../core/lease-host.js';
import { type LeaseTableOptions, ensureLeaseTable as ensureLeaseTableWith } from '../core/lease-schema.js';
import { isPool } from '../pg/pg-like.js';
import { poolNotifySource } from '../pg/pg-notify.js';
import { type DrizzleExecuteLike, drizzleQuery } from './drizzle-executor.js';

/** postgres.js's `sql.listen`, which opens a connection of its own. */
interface PostgresJsLike {
  listen(channel: string, onNotify: (payload: string) => void): Promise<{ unlisten(): Promise<void> }>;
}

/**
 * Where a Drizzle database hears lease releases: node-postgres (`db.$client` is a Pool) LISTENs on
 * a pooled client; postgres.js (`db.$client` is the `sql` function) through `sql.listen`. Other
 * drivers have none, and waiters poll.
 */
export function drizzleNotifySource(db: DrizzleExecuteLike): NotifySource | undefined {
  const client = (db as { $client?: unknown }).$client;
  if (isPool(client)) return poolNotifySource(client);
  if (typeof client === 'function' && typeof (client as Partial<PostgresJsLike>).listen === 'function') {
    const sql = client as unknown as PostgresJsLike;
    return {
      async listen(channel, onNotify) {
        const subscription = await sql.listen(channel, onNotify);
        return () => subscription.unlisten();
      },
    };
  }
  return undefined;
}

/**
 * Creates the lease table if it does not exist (for scripts and tests; apps export
 * {@link leaseTable} from their Drizzle schema so that drizzle-kit generates the migration).
 *
 * @example
 * ```ts
 * await ensureLeaseTable(db);
 * ```
 */
export async function ensureLeaseTable(db: DrizzleExecuteLike, options: LeaseTableOptions = {}): Promise<void> {
  await ensureLeaseTableWith({ query: drizzleQuery(db) }, options);
}
