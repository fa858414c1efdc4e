import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { InvalidLockArgumentError, LeaseLostError, LeaseTableMissingError } from './errors.js';
import type { Executor } from './executor.js';
import type { LeaseTableNames } from './lease-schema.js';
import { acquireSql, extendSql, getSql, heartbeatSql, type LeaseRow, listSql, pruneSql, releaseSql } from './lease-sql.js';
import { hashKey } from './keys.js';
import { SqlState, sqlStateOf } from './sqlstate.js';
import { mapDriverError } from './wait.js';

/**
 * A source of `NOTIFY` messages on a connection ormlock owns (`LISTEN` needs a session of its
 * own; a pooled query connection cannot keep one). The `pg` and Drizzle layers build one from a
 * pool; Prisma from the URL given to `lockExtension({ url })`.
 */
export interface NotifySource {
  /**
   * Starts listening on `channel` and calls `onNotify(payload)` for each message; resolves once
   * `LISTEN` is active. The returned function stops listening and gives the connection back.
   * `onError` is told when the connection fails (waiters then fall back to polling).
   */
  listen(channel: string, onNotify: (payload: string) => void, onError: (error: unknown) => void): Promise<() => Promise<void>>;
  /**
   * Opens a connection of its own that LISTENs on `channel`, for one waiter: it queues there in
   * PostgreSQL's lock queue (first come, first served) and hears releases. Optional.
   */
  session?(channel: string, onNotify: (payload: string) => void): Promise<WaitSession>;
}

/** A waiter's own connection (see {@link NotifySource.session}). */
export interface WaitSession {
  query(text: string, params?: readonly unknown[]): Promise<unknown>;
  /** Ends the connection: a statement waiting on it ends, and its session locks go with it. */
  close(): void;
}

/** What a host needs from its layer. */
export interface LeaseHostConfig {
  /** Autocommit executor: every lease statement commits by itself, outside any caller transaction. */
  readonly executor: Executor;
  readonly table: LeaseTableNames;
  /** Where waiters hear releases; without it they poll. */
  readonly notify?: NotifySource;
}

/** A lease as the table holds it, read without acquiring (`getLease`, `listLeases`). */
export interface LeaseRecord<D = unknown> {
  readonly name: string;
  readonly owner: string;
  readonly fencingToken: bigint;
  readonly data: D | null;
  readonly acquiredAt: Date;
  readonly renewedAt: Date;
  /** When the database will consider the lease expired (its own clock). */
  readonly expiresAt: Date;
  readonly ttlMs: number;
  /** Whether it was unexpired by the database's clock when read. */
  readonly live: boolean;
}

/** Outcome of one acquisition attempt. */
export type AcquireAttempt =
  | { readonly acquired: true; readonly row: AcquiredRow; readonly sentAt: number }
  | { readonly acquired: false; readonly holder?: LeaseRow };

/** What an acquisition returns. */
export interface AcquiredRow {
  readonly name: string;
  readonly owner: string;
  readonly token: string;
  readonly data: unknown;
  readonly expires_ms: number;
}

/** What the host needs of a held lease to heartbeat it. */
export interface HeldLease {
  readonly name: string;
  readonly token: string;
  /** The lease's ttl in ms (what each renewal sets). */
  ttlMs: number;
  /** Renewal interval in ms; `undefined`: no heartbeat. */
  readonly heartbeatMs: number | undefined;
  /** `performance.now()` at which the next renewal is due. */
  renewAt: number;
  /** A renewal sent at `sentAt` succeeded; the lease now expires at `expiresMs` (database epoch ms). */
  renewed(sentAt: number, expiresMs: number): void;
  /** The database no longer has this lease for us. */
  lost(error: LeaseLostError): void;
}

/** How long a process that just released a name holds back before competing for it again. */
const RELEASER_YIELD_MS = 5;
/** How long the LISTEN connection stays open after its last waiter is done. */
const LISTEN_LINGER_MS = 2_000;
/** Polling interval while waiting, when no NOTIFY source exists (jittered ±50 %). */
const POLL_MS = 100;

/**
 * One per pool / Drizzle database / Prisma client and lease table: the process's owner id, the
 * leases it holds, one heartbeat statement per interval for all of them, and one LISTEN
 * connection shared by every waiter.
 */
export class LeaseHost {
  /** This process's owner id: `host:pid:random`, unique per host object. */
  readonly owner = `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
  readonly #config: LeaseHostConfig;
  readonly #held = new Set<HeldLease>();
  #timer: ReturnType<typeof setTimeout> | undefined;
  #timerAt = Number.POSITIVE_INFINITY;
  #beating = false;
  /** Test hook: while true, no heartbeat is sent (as if the network were down). */
  heartbeatPaused = false;
  // LISTEN, shared by all waiters of this host.
  #listening: Promise<(() => Promise<void>) | undefined> | undefined;
  readonly #wakers = new Map<string, Set<() => void>>();
  // Releases heard per name, so a NOTIFY that arrives between a try and its sleep is not lost.
  readonly #heard = new Map<string, number>();
  // When this host last released each name (performance.now()), for the releaser's yield below.
  readonly #releasedAt = new Map<string, number>();
  #waiters = 0;
  #linger: ReturnType<typeof setTimeout> | undefined;
  #listenActive = false;
  // Waiters of this process for one name queue in FIFO order: only the head tries, so one process
  // cannot starve its own waiters, and a release wakes one waiter per process, not a herd.
  readonly #queues = new Map<string, (() => void)[]>();

  /** The statements, built once per host: the table name is fixed. */
  readonly #sql: Record<'acquire' | 'release' | 'extend' | 'heartbeat' | 'get' | 'list' | 'prune', string>;

  constructor(config: LeaseHostConfig) {
    this.#config = config;
    const t = config.table;
    this.#sql = {
      acquire: acquireSql(t),
      release: releaseSql(t),
      extend: extendSql(t),
      heartbeat: heartbeatSql(t),
      get: getSql(t),
      list: listSql(t),
      prune: pruneSql(t),
    };
  }

  get table(): LeaseTableNames {
    return this.#config.table;
  }

  /** Runs one lease statement, mapping a missing table to {@link LeaseTableMissingError}. */
  async query<T extends Record<string, unknown>>(text: string, params: readonly unknown[]): Promise<T[]> {
    try {
      return await this.#config.executor.query<T>(text, params);
    } catch (error) {
      const state = sqlStateOf(error);
      if (state === SqlState.undefinedTable || state === '3F000') throw new LeaseTableMissingError(this.#config.table.qualified, { cause: error });
      throw mapDriverError(error);
    }
  }

  /** One acquisition attempt; `sentAt` is taken before the request leaves, for the trust deadline. */
  async tryAcquire(name: string, ttlMs: number, data: unknown): Promise<AcquireAttempt> {
    const json = data === undefined || data === null ? null : JSON.stringify(data);
    const sentAt = performance.now();
    const [taken] = await this.query<{ token: string; data: unknown; expires_ms: number }>(this.#sql.acquire, [name, this.owner, json, ttlMs]);
    if (taken !== undefined) return { acquired: true, row: { name, owner: this.owner, ...taken }, sentAt };
    // Busy: who holds it and for how long, for the waiter's sleep and the error message.
    return { acquired: false, holder: await this.get(name) };
  }

  /** The advisory key waiters queue on for `name` (as a decimal string, bound as int8). */
  queueKey(name: string): string {
    return hashKey(`ormlock:lease-queue:${this.table.qualified}:${name}`).toString();
  }

  /** Deletes the row if this owner and token hold it. `'released'`, `'expired'` (deleted, but it had expired) or `'not-held'`. */
  async release(name: string, token: string): Promise<'released' | 'expired' | 'not-held'> {
    const rows = await this.query<{ live: boolean }>(this.#sql.release, [name, this.owner, token, this.table.channel, this.queueKey(name)]);
    const row = rows[0];
    this.#releasedAt.set(name, performance.now());
    if (this.#releasedAt.size > 1000) this.#releasedAt.clear();
    if (row === undefined) return 'not-held';
    return row.live ? 'released' : 'expired';
  }

  /** Renews one lease now with a new ttl; `undefined` when it is no longer held. */
  async extend(name: string, token: string, ttlMs: number): Promise<{ sentAt: number; expiresMs: number } | undefined> {
    const sentAt = performance.now();
    const [row] = await this.query<{ expires_ms: number }>(this.#sql.extend, [name, this.owner, token, ttlMs]);
    return row === undefined ? undefined : { sentAt, expiresMs: Number(row.expires_ms) };
  }

  async get(name: string): Promise<LeaseRow | undefined> {
    return (await this.query<LeaseRow>(this.#sql.get, [name]))[0];
  }

  async list(prefix: string): Promise<LeaseRow[]> {
    return this.query<LeaseRow>(this.#sql.list, [prefix]);
  }

  async prune(graceMs: number): Promise<number> {
    const [row] = await this.query<{ pruned: number }>(this.#sql.prune, [graceMs]);
    return Number(row?.pruned ?? 0);
  }

  // ---- heartbeat -------------------------------------------------------------------------

  /** Starts renewing `lease` with the others of this process. */
  hold(lease: HeldLease): void {
    this.#held.add(lease);
    this.#schedule();
  }

  /** Stops renewing `lease`. */
  drop(lease: HeldLease): void {
    this.#held.delete(lease);
    if (this.#held.size === 0 && this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
      this.#timerAt = Number.POSITIVE_INFINITY;
    }
  }

  /** The number of leases this host is renewing. */
  get heldCount(): number {
    return this.#held.size;
  }

  #schedule(): void {
    if (this.#beating) return;
    let next = Number.POSITIVE_INFINITY;
    for (const lease of this.#held) if (lease.heartbeatMs !== undefined) next = Math.min(next, lease.renewAt);
    if (next === Number.POSITIVE_INFINITY) return;
    if (this.#timer !== undefined && this.#timerAt <= next) return;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timerAt = next;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#timerAt = Number.POSITIVE_INFINITY;
      void this.beat();
    }, Math.max(0, next - performance.now()));
    // Heartbeats alone do not keep a process alive; the work holding the lease does.
    this.#timer.unref?.();
  }

  /**
   * Sends one heartbeat for every lease that is due, or due within half its interval (so leases
   * share statements instead of each getting its own). Exposed for benchmarks and tests.
   */
  async beat(all = false): Promise<number> {
    if (this.#beating) return 0;
    const now = performance.now();
    const due = [...this.#held].filter((l) => l.heartbeatMs !== undefined && (all || l.renewAt - now <= l.heartbeatMs / 2));
    if (due.length === 0 || this.heartbeatPaused) {
      for (const lease of due) lease.renewAt = now + (lease.heartbeatMs ?? 0);
      this.#schedule();
      return 0;
    }
    this.#beating = true;
    const sentAt = performance.now();
    try {
      const payload = JSON.stringify(due.map((l) => ({ name: l.name, token: l.token, ttl: l.ttlMs })));
      const rows = await this.query<{ lost_name: string | null; lost_token: string | null; at_ms: number | null; renewed: number | null }>(this.#sql.heartbeat, [
        this.owner,
        payload,
      ]);
      const lost = new Set(rows.filter((row) => row.lost_name !== null).map((row) => `${row.lost_token}:${row.lost_name}`));
      // The database's time before the renewals: each lease now expires no earlier than at + ttl.
      const atMs = Number(rows.find((row) => row.lost_name === null)?.at_ms ?? Number.NaN);
      for (const lease of due) {
        if (!lost.has(`${lease.token}:${lease.name}`)) {
          lease.renewAt = sentAt + (lease.heartbeatMs ?? 0);
          lease.renewed(sentAt, atMs + lease.ttlMs);
        } else if (this.#held.has(lease)) {
          lease.lost(
            new LeaseLostError(`lease ${JSON.stringify(lease.name)} was lost: the database no longer holds it for this owner (expired or taken over)`, lease.name, 'expired'),
          );
        }
      }
      return due.length - lost.size;
    } catch (error) {
      // The database is unreachable or failed: try again soon. Each lease's own trust deadline
      // aborts it if no renewal gets through in time.
      for (const lease of due) lease.renewAt = performance.now() + Math.max(10, (lease.heartbeatMs ?? 0) / 4);
      if (error instanceof LeaseTableMissingError) {
        for (const lease of due) lease.lost(new LeaseLostError(error.message, lease.name, 'gone', { cause: error }));
      }
      return 0;
    } finally {
      this.#beating = false;
      this.#schedule();
    }
  }

  // ---- waiting ---------------------------------------------------------------------------

  /** Joins this process's FIFO queue for `name`; resolves when it is this caller's turn. */
  async enqueue(name: string, signal: AbortSignal | undefined): Promise<() => void> {
    let queue = this.#queues.get(name);
    if (queue === undefined) this.#queues.set(name, (queue = []));
    let turn!: () => void;
    const myTurn = new Promise<void>((resolve) => (turn = resolve));
    queue.push(turn);
    if (queue.length === 1) turn();
    const leave = (): void => {
      const q = this.#queues.get(name);
      if (q === undefined) return;
      const wasHead = q[0] === turn;
      const index = q.indexOf(turn);
      if (index >= 0) q.splice(index, 1);
      if (q.length === 0) this.#queues.delete(name);
      else if (wasHead) q[0]?.();
    };
    await abortable(myTurn, signal, leave);
    return leave;
  }

  /** Starts listening (if a source exists) while a waiter is waiting. Returns the function that stops. */
  async startWaiting(): Promise<() => void> {
    this.#waiters += 1;
    if (this.#linger !== undefined) clearTimeout(this.#linger);
    this.#linger = undefined;
    if (this.#config.notify !== undefined && this.#listening === undefined) {
      const source = this.#config.notify;
      const listening: Promise<(() => Promise<void>) | undefined> = source
        .listen(this.table.channel, (payload) => this.#wake(payload), () => {
          // The connection failed: forget it, so that the next waiter opens a new one; the ones
          // waiting now poll.
          if (this.#listening === listening) this.#listening = undefined;
          this.#listenActive = false;
        })
        .then(
          (stop) => {
            this.#listenActive = this.#listening === listening;
            return stop;
          },
          () => {
            // Could not LISTEN (no connection to spare, pgbouncer in transaction mode): poll.
            if (this.#listening === listening) this.#listening = undefined;
            return undefined;
          },
        );
      this.#listening = listening;
    }
    await this.#listening;
    let stopped = false;
    return () => {
      if (stopped) return;
      stopped = true;
      this.#waiters -= 1;
      if (this.#waiters === 0) this.#heard.clear();
      // Keep the connection a little while: a process that waits again soon (a worker loop)
      // should not pay for a new connection and LISTEN each time.
      if (this.#waiters === 0 && this.#listening !== undefined && this.#linger === undefined) {
        this.#linger = setTimeout(() => {
          this.#linger = undefined;
          if (this.#waiters > 0 || this.#listening === undefined) return;
          const listening = this.#listening;
          this.#listening = undefined;
          this.#listenActive = false;
          void listening.then((stop) => stop?.()).catch(() => {});
        }, LISTEN_LINGER_MS);
        this.#linger.unref?.();
      }
    };
  }

  /** A connection of its own for one waiter, where the layer can open one; `undefined` otherwise or on failure. */
  async openSession(onNotify: (payload: string) => void): Promise<WaitSession | undefined> {
    const source = this.#config.notify;
    if (source?.session === undefined) return undefined;
    try {
      return await source.session(this.table.channel, onNotify);
    } catch {
      return undefined;
    }
  }

  /** Whether waiters hear releases by NOTIFY right now (else they poll). */
  get listening(): boolean {
    return this.#listenActive;
  }

  /**
   * Sleeps until a release of `name` is announced, `ms` pass, or `signal` aborts. `ms` should be
   * the holder's remaining time when known: the lease cannot be free before then unless released.
   */
  async sleep(name: string, ms: number, signal: AbortSignal | undefined, heardBefore: number): Promise<void> {
    if (this.heard(name) !== heardBefore) return;
    // Releases NOTIFY only when a waiter is in line (see releaseSql), so a waiter outside the line
    // cannot count on being woken: it polls at the short interval even while listening.
    const cap = POLL_MS;
    const jittered = Math.max(1, Math.min(ms, cap * (0.5 + Math.random())));
    let wakers = this.#wakers.get(name);
    if (wakers === undefined) this.#wakers.set(name, (wakers = new Set()));
    let wake!: () => void;
    const woken = new Promise<void>((resolve) => (wake = resolve));
    const timer = setTimeout(wake, jittered);
    wakers.add(wake);
    try {
      await abortable(woken, signal, () => {});
    } finally {
      clearTimeout(timer);
      wakers.delete(wake);
      if (wakers.size === 0) this.#wakers.delete(name);
    }
  }

  /** How many releases of `name` this host has heard of while anyone waited. */
  heard(name: string): number {
    return this.#heard.get(name) ?? 0;
  }

  /**
   * How long a waiting acquirer should hold back its first try: a process that released `name`
   * moments ago and wants it again yields briefly, so waiters of other processes (woken by its
   * NOTIFY) get the first chance instead of watching it take the lease back forever.
   */
  yieldMs(name: string): number {
    const at = this.#releasedAt.get(name);
    if (at === undefined) return 0;
    const since = performance.now() - at;
    return since < RELEASER_YIELD_MS ? RELEASER_YIELD_MS - since : 0;
  }

  #wake(name: string): void {
    if (this.#waiters > 0) this.#heard.set(name, this.heard(name) + 1);
    for (const wake of this.#wakers.get(name) ?? []) wake();
  }
}

/** Resolves with `promise`, or rejects with the signal's reason when it aborts first (then calls `onAbort`). */
async function abortable<T>(promise: Promise<T>, signal: AbortSignal | undefined, onAbort: () => void): Promise<T> {
  if (signal === undefined) return promise;
  if (signal.aborted) {
    onAbort();
    throw signal.reason;
  }
  let listener: (() => void) | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        listener = () => {
          onAbort();
          reject(signal.reason);
        };
        signal.addEventListener('abort', listener, { once: true });
      }),
    ]);
  } finally {
    if (listener) signal.removeEventListener('abort', listener);
  }
}

/** Hosts, one per root object (pool, database, client) and table. */
const hosts = new WeakMap<object, Map<string, LeaseHost>>();

/** The host of `root` for this table, created on first use. */
export function leaseHostOf(root: object, table: LeaseTableNames, make: () => Omit<LeaseHostConfig, 'table'>): LeaseHost {
  let byTable = hosts.get(root);
  if (byTable === undefined) hosts.set(root, (byTable = new Map()));
  let host = byTable.get(table.qualified);
  if (host === undefined) byTable.set(table.qualified, (host = new LeaseHost({ ...make(), table })));
  return host;
}

/** Converts a row to what `getLease` / `listLeases` return. */
export function leaseRecordOf<D>(row: LeaseRow): LeaseRecord<D> {
  return {
    name: row.name,
    owner: row.owner,
    fencingToken: BigInt(row.token),
    data: (row.data ?? null) as D | null,
    acquiredAt: new Date(Number(row.acquired_ms)),
    renewedAt: new Date(Number(row.renewed_ms)),
    expiresAt: new Date(Number(row.expires_ms)),
    ttlMs: Number(row.ttl_ms),
    live: Number(row.remaining_ms) > 0,
  };
}

/** Validates a lease name (any non-empty string; it is always a bound parameter). */
export function checkLeaseName(name: unknown): string {
  if (typeof name !== 'string' || name.length === 0) throw new InvalidLockArgumentError('name', 'expected a non-empty string');
  // The name is the primary key (a btree entry holds at most ~2.7 kB) and the NOTIFY payload.
  if (name.length > MAX_LEASE_NAME) throw new InvalidLockArgumentError('name', `at most ${MAX_LEASE_NAME} characters`);
  return name;
}

/** The longest lease name, in characters (4 bytes each at worst, well inside a btree entry). */
export const MAX_LEASE_NAME = 512;
