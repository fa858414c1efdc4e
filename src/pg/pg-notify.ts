import type { NotifySource } from '../core/lease-host.js';
import { quoteIdent } from '../core/sql.js';
import type { PgPoolLike } from './pg-like.js';

interface NotificationLike {
  readonly channel: string;
  readonly payload?: string;
}

/** The event-emitter side of a node-postgres client, which the query-only types leave out. */
interface ListeningClient {
  query(text: string): Promise<unknown>;
  on(event: 'notification', fn: (message: NotificationLike) => void): unknown;
  on(event: 'error', fn: (error: Error) => void): unknown;
  removeListener(event: string, fn: (...args: never[]) => void): unknown;
}

/**
 * LISTEN on a connection of its own, opened with the pool's own client class and settings (so a
 * small pool is not starved: with `max: 1`, a listener holding the only pooled client would leave
 * the waiter's own queries waiting forever). Closed when the last waiter is done. A pool that does
 * not expose its class and settings lends a pooled client instead.
 */
export function poolNotifySource(pool: PgPoolLike): NotifySource {
  const { Client, options } = pool as unknown as { Client?: new (config: unknown) => OwnClient; options?: Record<string, unknown> };
  if (typeof Client === 'function' && options !== undefined && typeof options === 'object') {
    return {
      async listen(channel, onNotify, onError) {
        const client = new Client({ ...options, application_name: 'ormlock-lease-listener' });
        client.on('error', () => {});
        await client.connect();
        return listenOn(client, channel, onNotify, onError, () => void client.end().catch(() => {}));
      },
    };
  }
  return {
    async listen(channel, onNotify, onError) {
      const pooled = await pool.connect();
      return listenOn(pooled as unknown as ListeningClient, channel, onNotify, onError, (error) => pooled.release(error ?? undefined));
    },
  };
}

type OwnClient = ListeningClient & { connect(): Promise<void>; end(): Promise<void> };

/**
 * LISTEN on a connection of its own, opened from a connection string with node-postgres (loaded
 * only when a waiter first waits: the Prisma layer uses this with `lockExtension({ url })`).
 */
export function urlNotifySource(url: string | object): NotifySource {
  return {
    async listen(channel, onNotify, onError) {
      const pg = (await import('pg')) as unknown as { default?: { Client: new (config: unknown) => unknown }; Client?: new (config: unknown) => unknown };
      const Client = (pg.default?.Client ?? pg.Client) as new (config: unknown) => OwnClient;
      const config = typeof url === 'string' ? { connectionString: url } : url;
      const client = new Client({ ...config, application_name: 'ormlock-lease-listener' });
      client.on('error', () => {});
      await client.connect();
      return listenOn(client, channel, onNotify, onError, () => void client.end().catch(() => {}));
    },
  };
}

async function listenOn(
  client: ListeningClient,
  channel: string,
  onNotify: (payload: string) => void,
  onError: (error: unknown) => void,
  giveBack: (error: Error | undefined) => void,
): Promise<() => Promise<void>> {
  let done = false;
  const onNotification = (message: NotificationLike): void => {
    if (message.channel === channel) onNotify(message.payload ?? '');
  };
  const finish = (error: Error | undefined): void => {
    if (done) return;
    done = true;
    client.removeListener('notification', onNotification as (...args: never[]) => void);
    client.removeListener('error', onClientError as (...args: never[]) => void);
    giveBack(error);
  };
  const onClientError = (error: Error): void => {
    onError(error);
    finish(error);
  };
  client.on('notification', onNotification);
  client.on('error', onClientError);
  try {
    await client.query(`LISTEN ${quoteIdent(channel)}`);
  } catch (error) {
    finish(error as Error);
    throw error;
  }
  // Only once LISTEN is done: a statement in flight on an unref'd socket would let the process
  // exit under the caller's feet.
  unrefSocket(client);
  return async () => {
    if (done) return;
    refSocket(client);
    try {
      await client.query(`UNLISTEN ${quoteIdent(channel)}`);
      finish(undefined);
    } catch (error) {
      finish(error as Error);
    }
  };
}

/**
 * The listener's socket must not keep the process alive on its own: a script that has ended its
 * pool (or Prisma client) exits even while the listener lingers. Waiters keep the process alive
 * with their own timers while they wait.
 */
function unrefSocket(client: unknown): void {
  (client as { connection?: { stream?: { unref?: () => void } } }).connection?.stream?.unref?.();
}

function refSocket(client: unknown): void {
  (client as { connection?: { stream?: { ref?: () => void } } }).connection?.stream?.ref?.();
}
