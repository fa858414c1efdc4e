import { createHash, randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { InvalidLockArgumentError, LeaseLostError, LeaseTableMissingError } from './errors.js';
import type { Executor, SideChannel } from './executor.js';
import type { LeaseTableNames } from './lease-schema.js';
import {
  acquireSql,
  extendSql,
  getSql,
  heartbeatSql,
  LINE_MARK,
  lineAcquireSql,
  lineLeaveSql,
  lineRowName,
  ownerChannel,
  type LeaseRow,
  listSql,
  pgArrayLiteral,
  pruneSql,
  quickReleaseCountSql,
  quickReleaseSql,
  releaseSql,
  takeOverSql,
} from './lease-sql.js';
import { SqlState, sqlStateOf } from './sqlstate.js';
import { mapDriverError } from './wait.js';

/**
 * A source of `NOTIFY` messages on a connection ormlock owns (`LISTEN` needs a session of its
 * own; a pooled query connection cannot keep one). The `pg` and Drizzle layers build one from a
 * pool; Prisma from the URL given to `lockExtension({ url })`. None behind a transaction-mode
 * pooler (`pooling: 'transaction'`): there waiters poll.
 */
export interface NotifySource {
  /**
   * Starts listening on `channel` and calls `onNotify(payload)` for each message; resolves once
   * `LISTEN` is active. The returned function stops listening and gives the connection back.
   * `onError` is told when the connection fails (waiters then fall back to polling).
   */
  listen(channel: string, onNotify: (payload: string) => void, onError: (error: unknown) => void): Promise<() => Promise<void>>;
}

/** What a host needs from its layer. */
export interface LeaseHostConfig {
  /** Autocommit executor: every lease statement commits by itself, outside any caller transaction. */
  readonly executor: Executor;
  readonly table: LeaseTableNames;
  /** Where waiters hear releases; without it they poll. */
  readonly notify?: NotifySource;
}

/** Outcome of one attempt in line ({@link LeaseHost.tryInLine}). */
export type LineAttempt =
  | { readonly acquired: true; readonly row: AcquiredRow; readonly sentAt: number }
  | {
      readonly acquired: false;
      /** `performance.now()` when the attempt was sent. */
      readonly sentAt: number;
      /** Live waiters in line before this one (0: first in line). */
      readonly ahead: number;
      /** The holder when the attempt was made, if any. */
      readonly holder?: { readonly owner: string; readonly token: string; readonly remainingMs: number };
    };

/** A lease as the table holds it, read without acquiring (`getLease`, `listLeases`). */
export interface LeaseRecord<D = unknown> {
  /** The lease's name. */
  readonly name: string;
  /** The holder's owner id (`host:pid:random`). */
  readonly owner: string;
  /** The fencing token of the current (or last) holder. */
  readonly fencingToken: bigint;
  /** The `data` the holder acquired it with. */
  readonly data: D | null;
  /** When it was acquired (the database's clock). */
  readonly acquiredAt: Date;
  /** When it was last renewed (the database's clock). */
  readonly renewedAt: Date;
  /** When the database will consider the lease expired (its own clock). */
  readonly expiresAt: Date;
  /** The ttl of the last acquisition or renewal, in ms. */
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

/**
 * How long an entry stays in a waiter line without being renewed. Waiters renew theirs at least
 * every 1.5 s (see `acquireLease`); a waiter that died leaves the line after this long.
 */
export const LINE_TTL_MS = 3_000;

/** How many times a release runs again when its row changed under it before it gives up. */
const RELEASE_ROUNDS = 20;

/** How many times in a row an attempt in line runs again at once (`retry`) before the waiter sleeps. */
const LINE_RETRY_ROUNDS = 20;

/** How long a new LISTEN connection has to hear its own probe NOTIFY before this host polls for good. */
const LISTEN_PROBE_MS = 2_000;
/** The lease name of a probe payload: names may not start with U+0001, so no lease has it. */
const LISTEN_PROBE_NAME = `${LINE_MARK}probe`;
/** How long the LISTEN connection stays open after its last waiter is done. */
const LISTEN_LINGER_MS = 2_000;

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
  // Handoffs to this process heard per name (its channel carries no others; see ownerChannel).
  readonly #heard = new Map<string, number>();
  // Names this process was handed a lease of: its entry may still be in the line row, and is no
  // place in line any more (see releaseSql).
  readonly #servedFrom = new Set<string>();
  // Names whose last release here handed the lease to a waiter (see release()).
  readonly #contended = new Set<string>();
  // Leases releases handed to this process, by name, heard by NOTIFY and not yet taken.
  readonly #handed = new Map<string, { token: string; expiresMs: number }>();
  // The last token this process held for each name whose row may still be in the table: a row
  // of ours with that token is our own (perhaps a release that failed), never a handoff.
  readonly #lastToken = new Map<string, string>();
  // The newest token this process took for each name, kept after its release: a NOTIFY of a
  // handoff with that token (or an older one) arriving late was already taken, by a statement
  // that saw the handoff, and may be being released right now (see #wake).
  readonly #taken = new Map<string, bigint>();
  // Tokens whose release failed (cancelled, connection lost): their rows may still live, and are
  // released again before this process next asks for the name.
  readonly #stale = new Map<string, string>();
  #waiters = 0;
  #linger: ReturnType<typeof setTimeout> | undefined;
  #listenActive = false;
  // The LISTEN self-test (see #probeListen): pending probes by nonce, the last result, and whether
  // this host gave up on LISTEN because it heard nothing.
  readonly #probes = new Map<string, () => void>();
  #probe: Promise<boolean> | undefined;
  #deaf = false;
  // Waiters of this process for one name queue in FIFO order: only the head tries, so one process
  // cannot starve its own waiters, and a release wakes one waiter per process, not a herd.
  readonly #queues = new Map<string, (() => void)[]>();

  // Names of the fixed statements, by text, while this host sends them as prepared statements.
  readonly #names = new Map<string, string>();
  /** The statements, built once per host: the table name is fixed. */
  readonly #sql: Record<'acquire' | 'lineAcquire' | 'lineLeave' | 'quickRelease' | 'quickReleaseCount' | 'release' | 'takeOver' | 'extend' | 'heartbeat' | 'get' | 'list' | 'prune', string>;

  constructor(config: LeaseHostConfig) {
    this.#config = config;
    const t = config.table;
    this.#sql = {
      acquire: acquireSql(t),
      lineAcquire: lineAcquireSql(t),
      lineLeave: lineLeaveSql(t),
      quickRelease: quickReleaseSql(t),
      quickReleaseCount: quickReleaseCountSql(t),
      release: releaseSql(t),
      takeOver: takeOverSql(t),
      extend: extendSql(t),
      heartbeat: heartbeatSql(t),
      get: getSql(t),
      list: listSql(t),
      prune: pruneSql(t),
    };
    if (config.executor.queryPrepared !== undefined) {
      // Not the heartbeat: its plan must fit the number of leases it renews (a hash join for
      // thousands), which a plan cached for one lease would not.
      for (const [key, text] of Object.entries(this.#sql)) if (key !== 'heartbeat') this.#names.set(text, preparedName(key, text));
    }
  }

  get table(): LeaseTableNames {
    return this.#config.table;
  }

  /** Another pooled connection, for a prioritized wait's looks at `pg_stat_activity`. */
  get sideChannel(): SideChannel {
    return this.#config.executor;
  }

  /** Runs one lease statement, mapping a missing table to {@link LeaseTableMissingError}. */
  async query<T extends Record<string, unknown>>(text: string, params: readonly unknown[]): Promise<T[]> {
    try {
      const name = this.#names.get(text);
      if (name !== undefined) return await this.#queryPrepared<T>(name, text, params);
      return await this.#config.executor.query<T>(text, params);
    } catch (error) {
      throw this.#driverError(error);
    }
  }

  /** Runs one lease statement through {@link Executor.execute} and resolves how many rows it changed. */
  async #count(execute: NonNullable<Executor['execute']>, text: string, params: readonly unknown[]): Promise<number> {
    try {
      return await execute(text, params);
    } catch (error) {
      throw this.#driverError(error);
    }
  }

  #driverError(error: unknown): unknown {
    const state = sqlStateOf(error);
    if (state === SqlState.undefinedTable || state === '3F000') return new LeaseTableMissingError(this.#config.table.qualified, { cause: error });
    return mapDriverError(error);
  }

  /**
   * A fixed statement by name (parsed and planned once per connection). A server that does not
   * have the statement (26000: a pooler moved the next statement to another backend, or someone
   * ran `DEALLOCATE`) or has it already (42P05) refuses it before running it: this host then uses
   * unnamed statements for good, and the statement is sent once more, unnamed.
   */
  async #queryPrepared<T extends Record<string, unknown>>(name: string, text: string, params: readonly unknown[]): Promise<T[]> {
    try {
      return await this.#config.executor.queryPrepared!<T>(name, text, params);
    } catch (error) {
      const state = sqlStateOf(error);
      if (state !== SqlState.undefinedPreparedStatement && state !== SqlState.duplicatePreparedStatement) throw error;
      this.#names.clear();
      return this.#config.executor.query<T>(text, params);
    }
  }

  /** Whether this host sends its fixed statements by name (see {@link Executor.queryPrepared}). */
  get prepared(): boolean {
    return this.#names.size > 0;
  }

  /** One acquisition attempt; `sentAt` is taken before the request leaves, for the trust deadline. */
  async tryAcquire(name: string, ttlMs: number, data: unknown): Promise<AcquireAttempt> {
    if (this.#stale.has(name)) await this.#releaseStale(name);
    const json = jsonParam(data);
    const sentAt = performance.now();
    const [taken] = await this.query<{ token: string; data: unknown; expires_ms: number }>(this.#sql.acquire, [name, this.owner, json, ttlMs]);
    if (taken !== undefined) return { acquired: true, row: { name, owner: this.owner, ...taken }, sentAt };
    // Busy: who holds it and for how long, for the waiter's sleep and the error message.
    return { acquired: false, holder: await this.get(name) };
  }

  /**
   * One attempt in line (see {@link lineAcquireSql}): takes the lease only if no live waiter joined
   * the line before this owner, else joins the line or keeps this owner's place in it. `mark`: a
   * prioritized wait's mark (`newWaitMark()`), put before the statement so its blockers can be found.
   */
  async tryInLine(name: string, ttlMs: number, data: unknown, mark = ''): Promise<LineAttempt> {
    if (this.#stale.has(name)) await this.#releaseStale(name);
    const json = jsonParam(data);
    // `retry`: the lease or its line changed while the statement ran, in a way that a release
    // could miss this waiter's place (see lineAcquireSql); each retry means another write
    // committed meanwhile. Past the bound the waiter sleeps as usual and tries again after it.
    for (let round = 1; ; round += 1) {
      // Served since the last try: the first attempt joins at the back; a retry keeps the place it took.
      const served = this.#servedFrom.delete(name);
      const { attempt, retry } = await this.#tryInLineOnce(name, ttlMs, data, json, mark, served);
      if (!retry || round === LINE_RETRY_ROUNDS) return attempt;
    }
  }

  async #tryInLineOnce(name: string, ttlMs: number, data: unknown, json: string | null, mark: string, served: boolean): Promise<{ attempt: LineAttempt; retry?: boolean }> {
    this.#handed.delete(name);
    const sentAt = performance.now();
    const [row] = await this.query<{
      token: string | null;
      data: unknown;
      expires_ms: number | null;
      ahead: number;
      holder_owner: string | null;
      holder_token: string | null;
      holder_remaining_ms: number | null;
      holder_expires_ms: number | null;
      handed_token: string | null;
      retry: boolean;
    }>(mark + this.#sql.lineAcquire, [name, this.owner, json, ttlMs, lineRowName(name), LINE_TTL_MS, this.#ownToken(name), served]);
    if (row?.token != null) return { attempt: { acquired: true, row: { name, owner: this.owner, token: row.token, data: row.data, expires_ms: Number(row.expires_ms) }, sentAt } };
    if (row?.handed_token != null) {
      this.#handed.delete(name);
      this.servedFromLine(name);
      // A release handed it to us before this statement ran. The database counted its ttl from
      // then: `sentAt + remaining − ttl` is a local moment no later than that, so the trust
      // deadline counted from it is early, never late.
      const remaining = Number(row.holder_remaining_ms);
      if (remaining < ttlMs / 2) {
        // Handed long ago (this waiter could not hear it): renew first, so that it starts with
        // a full ttl of trust rather than the little left of it.
        const renewed = await this.extend(name, row.handed_token, ttlMs);
        if (renewed === undefined) return { attempt: { acquired: false, sentAt, ahead: 0, holder: undefined } };
        return { attempt: { acquired: true, row: { name, owner: this.owner, token: row.handed_token, data: data ?? null, expires_ms: renewed.expiresMs }, sentAt: renewed.sentAt } };
      }
      const from = sentAt + remaining - ttlMs;
      return { attempt: { acquired: true, row: { name, owner: this.owner, token: row.handed_token, data: data ?? null, expires_ms: Number(row.holder_expires_ms) }, sentAt: from } };
    }
    const holder =
      row?.holder_owner == null ? undefined : { owner: row.holder_owner, token: String(row.holder_token), remainingMs: Number(row.holder_remaining_ms) };
    return { attempt: { acquired: false, sentAt, ahead: Number(row?.ahead ?? 0), holder }, retry: row?.retry === true };
  }

  /**
   * A lease a release handed to this process by NOTIFY since the last attempt in line, if any:
   * its token and expiry (database epoch ms). Taken once.
   */
  takeHandoff(name: string): { token: string; expiresMs: number } | undefined {
    const handed = this.#handed.get(name);
    this.#handed.delete(name);
    if (handed === undefined || handed.token === this.#ownToken(name)) return undefined;
    return handed;
  }

  /** This process took a lease of `name` that a release handed it. */
  servedFromLine(name: string): void {
    this.#servedFrom.add(name);
    if (this.#servedFrom.size > 1000) this.#servedFrom.clear();
  }

  /** Whether a handoff of `name` to this process was heard and not yet taken. */
  hasHandoff(name: string): boolean {
    return this.#handed.has(name);
  }

  /** The token of the lease this process holds for `name`, or null. */
  #heldToken(name: string): string | null {
    for (const lease of this.#held) if (lease.name === name) return lease.token;
    return null;
  }

  /**
   * The token a row of ours for `name` has when it is not a handoff: the one held now, else the
   * last one this process had (a row a failed release left behind). Tokens only grow, so a
   * handoff always carries another one.
   */
  #ownToken(name: string): string | null {
    return this.#heldToken(name) ?? this.#lastToken.get(name) ?? null;
  }

  /** Releases, once more, a row of `name` whose release failed before. */
  async #releaseStale(name: string): Promise<void> {
    const token = this.#stale.get(name);
    if (token === undefined || this.#heldToken(name) === token) return;
    await this.release(name, token).catch(() => {});
  }

  /** Leaves the line of `name` (after a timeout or an abort); gives back a lease handed to us meanwhile. */
  async leaveLine(name: string): Promise<void> {
    const own = this.#ownToken(name);
    const [row] = await this.query<{ handed_token: string | null }>(this.#sql.lineLeave, [lineRowName(name), this.owner, name, own]);
    // Handed over before the statement (it saw it), or while it ran (heard by NOTIFY).
    let token = row?.handed_token ?? this.takeHandoff(name)?.token;
    this.#handed.delete(name);
    if (token == null) {
      // A release that took the line row's lock before our leave committed its handoff after our
      // statement's snapshot: a new statement sees it (a later release no longer finds us in line).
      const now = await this.get(name);
      if (now !== undefined && now.owner === this.owner && now.token !== own && Number(now.remaining_ms) > 0) token = now.token;
    }
    if (token != null) await this.release(name, token);
  }

  /**
   * Deletes the row if this owner and token hold it, or hands the lease to the first in line.
   * `'released'`, `'expired'` (it had expired) or `'not-held'`.
   */
  async release(name: string, token: string): Promise<'released' | 'expired' | 'not-held'> {
    try {
      const outcome = await this.#release(name, token);
      // The row with this token is gone (or was never ours): nothing of it can come back.
      if (this.#lastToken.get(name) === token) this.#lastToken.delete(name);
      if (this.#stale.get(name) === token) this.#stale.delete(name);
      return outcome;
    } catch (error) {
      // The statement may not have run: the row may still live with this owner and token.
      this.#stale.set(name, token);
      if (this.#stale.size > 10_000) this.#stale.delete(this.#stale.keys().next().value as string);
      throw error;
    }
  }

  async #release(name: string, token: string): Promise<'released' | 'expired' | 'not-held'> {
    const line = lineRowName(name);
    // A name that had a line at its last release likely has one now: straight to the handoff.
    if (!this.#contended.has(name)) {
      const { execute } = this.#config.executor;
      if (execute !== undefined) {
        if ((await this.#count(execute, this.#sql.quickReleaseCount, [name, this.owner, token, line])) === 1) return 'released';
      } else {
        const [done] = await this.query<{ live: boolean }>(this.#sql.quickRelease, [name, this.owner, token, line]);
        if (done !== undefined) return done.live ? 'released' : 'expired';
      }
      // Not held (or expired, when counted), or someone is in line: the full statement tells which.
    }
    let row: { live: boolean; handed_to: string | null; done: boolean } | undefined;
    // Not done: the row changed under the statement (a waiter joining, a heartbeat); a fresh
    // snapshot sees why. Each round means another write to the row committed meanwhile.
    for (let round = 1; ; round += 1) {
      [row] = await this.query<{ live: boolean; handed_to: string | null; done: boolean }>(this.#sql.release, [name, this.owner, token, ownerChannel(this.table.channel, ''), line]);
      if (row === undefined || row.done) break;
      if (round === RELEASE_ROUNDS) throw new Error(`release of lease ${JSON.stringify(name)} kept meeting concurrent writes to its row (${RELEASE_ROUNDS} tries)`);
    }
    if (row?.handed_to != null) {
      this.#contended.add(name);
      if (this.#contended.size > 1000) this.#contended.clear();
    } else this.#contended.delete(name);
    if (row === undefined) return 'not-held';
    return row.live ? 'released' : 'expired';
  }

  /**
   * Takes the lease over from the holder `owner` with `token` (a prioritized wait): `undefined` when
   * that holder no longer holds it. `mark` as for {@link tryInLine}.
   */
  async takeOver(name: string, ttlMs: number, data: unknown, holder: { owner: string; token: string }, mark = ''): Promise<Extract<LineAttempt, { acquired: true }> | undefined> {
    const sentAt = performance.now();
    const [row] = await this.query<{ token: string; data: unknown; expires_ms: number }>(mark + this.#sql.takeOver, [name, this.owner, jsonParam(data), ttlMs, holder.owner, holder.token]);
    if (row === undefined) return undefined;
    return { acquired: true, row: { name, owner: this.owner, token: row.token, data: row.data, expires_ms: Number(row.expires_ms) }, sentAt };
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
    this.#lastToken.set(lease.name, lease.token);
    if (this.#lastToken.size > 10_000) this.#lastToken.delete(this.#lastToken.keys().next().value as string);
    const token = BigInt(lease.token);
    if ((this.#taken.get(lease.name) ?? -1n) < token) {
      this.#taken.delete(lease.name);
      this.#taken.set(lease.name, token);
      if (this.#taken.size > 10_000) this.#taken.delete(this.#taken.keys().next().value as string);
    }
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
      const rows = await this.query<{ lost_name: string | null; at_ms: number | null; renewed: number | null }>(this.#sql.heartbeat, [
        this.owner,
        pgArrayLiteral(due.map((l) => l.name)),
        pgArrayLiteral(due.map((l) => l.token)),
        pgArrayLiteral(due.map((l) => l.ttlMs)),
      ]);
      // A process holds one lease per name at most: the name says which one was lost.
      const lost = new Set(rows.filter((row) => row.lost_name !== null).map((row) => row.lost_name));
      // The database's time before the renewals: each lease now expires no earlier than at + ttl.
      const atMs = Number(rows.find((row) => row.lost_name === null)?.at_ms ?? Number.NaN);
      for (const lease of due) {
        if (!lost.has(lease.name)) {
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
    if (this.#config.notify !== undefined && this.#listening === undefined && !this.#deaf) {
      const source = this.#config.notify;
      const listening: Promise<(() => Promise<void>) | undefined> = source
        .listen(ownerChannel(this.table.channel, this.owner), (payload) => this.#wake(payload), () => {
          // The connection failed: forget it, so that the next waiter opens a new one; the ones
          // waiting now poll.
          if (this.#listening === listening) this.#listening = undefined;
          this.#listenActive = false;
        })
        .then(
          (stop) => {
            if (this.#listening === listening) this.#probeListen(listening);
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
      if (this.#waiters === 0) {
        this.#heard.clear();
        this.#handed.clear();
      }
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

  /** Whether waiters hear releases by NOTIFY right now (else they poll). */
  get listening(): boolean {
    return this.#listenActive;
  }

  /**
   * Whether the LISTEN connection hears NOTIFY, once its self-test is done (`false` without a
   * connection, or when it hears nothing). For tests and diagnostics.
   */
  async listenHealth(): Promise<boolean> {
    await this.#listening;
    return (await this.#probe) ?? false;
  }

  /**
   * Trusts a new LISTEN connection only once it has heard a NOTIFY sent to it from another
   * connection. Behind a transaction-mode pooler that was not declared (`pooling`), LISTEN
   * succeeds on a server connection that the pooler hands to other clients next, and nothing is
   * ever delivered: waiters would sleep through every handoff until their safety retry. Until the
   * probe is heard, waiters poll; if it is not heard in time, this host polls for good.
   */
  #probeListen(listening: Promise<(() => Promise<void>) | undefined>): void {
    const nonce = randomUUID();
    // 'heard'; 'deaf' (sent, not heard in time); 'failed' (could not send: try again next time).
    let settle!: (outcome: 'heard' | 'deaf' | 'failed') => void;
    const outcome = new Promise<'heard' | 'deaf' | 'failed'>((resolve) => (settle = resolve));
    this.#probes.set(nonce, () => settle('heard'));
    const timer = setTimeout(() => settle('deaf'), LISTEN_PROBE_MS);
    timer.unref?.();
    this.#probe = outcome.then((result) => {
      clearTimeout(timer);
      this.#probes.delete(nonce);
      if (this.#listening !== listening) return result === 'heard';
      if (result === 'heard') this.#listenActive = true;
      else {
        // Deaf: poll for good. Failed: drop this connection; the next waiter opens and probes another.
        if (result === 'deaf') this.#deaf = true;
        this.#listening = undefined;
        this.#listenActive = false;
        void listening.then((stop) => stop?.()).catch(() => {});
      }
      return result === 'heard';
    });
    // `IS NULL`: pg_notify returns void, which some drivers (Prisma) cannot read.
    this.#config.executor
      .query('SELECT pg_notify($1::text, $2::text) IS NULL AS probe', [ownerChannel(this.table.channel, this.owner), JSON.stringify([LISTEN_PROBE_NAME, nonce])])
      .catch(() => settle('failed'));
  }

  /**
   * Sleeps `ms`, until `signal` aborts, or until a release of `name` is announced and `wakeIf()`
   * says it concerns this waiter. A handoff heard before the sleep began wakes it at once.
   */
  async sleep(name: string, ms: number, signal: AbortSignal | undefined, wakeIf: () => boolean): Promise<void> {
    let wakers = this.#wakers.get(name);
    if (wakers === undefined) this.#wakers.set(name, (wakers = new Set()));
    let resolve!: () => void;
    const woken = new Promise<void>((r) => (resolve = r));
    const timer = setTimeout(resolve, Math.max(0, ms));
    const waker = (): void => {
      if (wakeIf()) resolve();
    };
    wakers.add(waker);
    // A handoff heard while the last try was on its way (that try did not see it) wakes at once,
    // not at the timer: nothing else would announce it again.
    waker();
    try {
      await abortable(woken, signal, () => {});
    } finally {
      clearTimeout(timer);
      wakers.delete(waker);
      if (wakers.size === 0) this.#wakers.delete(name);
    }
  }

  /** How many handoffs of `name` to this host it has heard of while anyone waited. */
  heard(name: string): number {
    return this.#heard.get(name) ?? 0;
  }

  /** A NOTIFY of a handoff to this process: `[name, new owner, token, expires_ms]` (see releaseSql). */
  #wake(payload: string): void {
    let name: string;
    try {
      const [leaseName, owner, token, expiresMs] = JSON.parse(payload) as [string, string, string, number];
      if (leaseName === LISTEN_PROBE_NAME) {
        this.#probes.get(String(owner))?.();
        return;
      }
      name = String(leaseName);
      if (owner === this.owner) {
        // A waiter of this process takes it (or gives it back if it is leaving the line). With
        // nobody here waiting for it any more (it gave up just as a release handed it over), give
        // it back at once, to the next in line, rather than keep it until its ttl; unless a
        // statement of the waiter saw the handoff first and took it: that lease may be being
        // released by its holder right now, and of two releases of one token the second finds
        // the row gone, which would tell the holder its lease was lost.
        if (BigInt(token) <= (this.#taken.get(name) ?? -1n)) return;
        if (this.#queues.has(name)) this.#handed.set(name, { token: String(token), expiresMs: Number(expiresMs) });
        else void this.release(name, String(token)).catch(() => {});
      }
    } catch {
      return;
    }
    if (this.#waiters > 0) this.#heard.set(name, this.heard(name) + 1);
    for (const wake of this.#wakers.get(name) ?? []) wake();
  }
}

/** A lease's `data` as the jsonb text parameter of its statements (`null` for none). */
function jsonParam(data: unknown): string | null {
  return data === undefined || data === null ? null : JSON.stringify(data);
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

/**
 * A prepared statement's name: what it is, and a hash of its text (which holds the table name), so
 * one name never stands for two texts on a connection, whichever hosts share it.
 */
function preparedName(key: string, text: string): string {
  return `ormlock_lease_${key}_${createHash('sha256').update(text).digest('hex').slice(0, 16)}`;
}

/** Hosts, one per root object (pool, database, client) and table. */
const hosts = new WeakMap<object, Map<string, LeaseHost>>();

/**
 * The host of `root` for this table, created on first use. `variant` tells hosts of one root
 * apart that are wired differently (`pooling: 'transaction'` has no LISTEN).
 */
export function leaseHostOf(root: object, table: LeaseTableNames, make: () => Omit<LeaseHostConfig, 'table'>, variant = ''): LeaseHost {
  let byTable = hosts.get(root);
  if (byTable === undefined) hosts.set(root, (byTable = new Map()));
  const key = `${variant}|${table.qualified}`;
  let host = byTable.get(key);
  if (host === undefined) byTable.set(key, (host = new LeaseHost({ ...make(), table })));
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
  // Rows whose name starts with U+0001 keep the waiter lines (see lineRowName).
  if (name.startsWith(LINE_MARK)) throw new InvalidLockArgumentError('name', 'names starting with U+0001 are reserved for ormlock');
  // The name is the primary key (a btree entry holds at most ~2.7 kB) and the NOTIFY payload.
  if (name.length > MAX_LEASE_NAME) throw new InvalidLockArgumentError('name', `at most ${MAX_LEASE_NAME} characters`);
  return name;
}

/** The longest lease name, in characters (4 bytes each at worst, well inside a btree entry). */
export const MAX_LEASE_NAME = 512;
