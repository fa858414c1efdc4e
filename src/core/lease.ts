import { type Duration, describe, MAX_DURATION_MS, parseDuration } from './duration.js';
import { InvalidLockArgumentError, LeaseLostError, LockAbortedError, LockNotAvailableError, LockTimeoutError } from './errors.js';
import { type AcquireAttempt, checkLeaseName, type HeldLease, type LeaseHost, type LeaseRecord, type LineAttempt, leaseRecordOf } from './lease-host.js';
import { newWaitMark, planPrioritize, type PrioritizeOptions, type PrioritizePlan, type Prioritizer, scopedPrioritizePlan, startPrioritizer } from './prioritize.js';
import { quoteIdent } from './sql.js';

/** Options of `lease(name, options)`. */
export interface LeaseOptions<D = unknown> {
  /** How long the lease lives without a renewal, by the database's clock. Default `'30s'`. */
  readonly ttl?: Duration;
  /**
   * How often this process renews it: default a third of `ttl`; must be under half of `ttl`.
   * `false`: never renewed automatically (the lease ends after `ttl` unless you `extend()` it).
   */
  readonly heartbeat?: Duration | false;
  /**
   * `false` (default): try once. A duration: wait up to that long for the holder to release or
   * expire (woken by NOTIFY where the layer can LISTEN, else by polling).
   */
  readonly wait?: false | Duration;
  /** A JSON value stored with the lease (readable by `getLease` / `listLeases`). */
  readonly data?: D;
  /** Cancels a wait. (To end a held lease, call `release()`.) */
  readonly signal?: AbortSignal;
  /** Called once if the lease is lost (expired, taken over, table gone) while held. */
  readonly onLost?: (error: LeaseLostError) => void;
  /** A busy lease: `'throw'` (default) or `'return'` `null`. */
  readonly onBusy?: 'throw' | 'return';
  /**
   * Win the lease from whoever holds it (migration and deploy scripts): needs `wait`. From `after`,
   * every `every` while the wait lasts, it takes the lease over from its holder and signals the
   * backends that block the wait's statements; see {@link LeasePrioritizeOptions}.
   */
  readonly prioritize?: LeasePrioritizeOptions;
}

/**
 * `prioritize` of a lease wait. A lease's holder is a process, not a session: holding a lease keeps
 * no backend busy, so there is no statement of it to cancel and no session to terminate. Instead,
 * with either `action`, the waiter **takes the lease over**: in one statement the row gets this
 * waiter as owner and a new, larger fencing token, ahead of any other waiter. From that moment
 * the old holder's fenced writes are refused ({@link fencingCondition}); its next heartbeat (or
 * `extend()`, or `release()`) finds the lease gone, and its `lease.signal` aborts.
 *
 * `action` and `filter` apply, as for every other wait, to the backends that block the wait's
 * own statements (a transaction that keeps the lease's row locked, a `LOCK TABLE` on the lease table).
 */
export interface LeasePrioritizeOptions extends PrioritizeOptions {
  /**
   * Which holders may be taken over: `true` (default) any, `false` none (only blocking backends
   * are signalled), or a function of the holder's lease as the table has it.
   */
  readonly takeOver?: boolean | ((holder: LeaseRecord) => boolean);
  /** Told about each takeover, with the lease as the previous holder had it. */
  readonly onTakeOver?: (previous: LeaseRecord) => void;
}

/** Options of `withLease(name, fn, options)`. */
export interface WithLeaseOptions<D = unknown> extends Omit<LeaseOptions<D>, 'onBusy'> {
  /** A busy lease: `'throw'` (default) or `'skip'` the function and resolve `undefined`. */
  readonly onBusy?: 'throw' | 'skip';
}

/**
 * A lease held by this process. Its `signal` aborts the moment the lease is lost or released: pass
 * it to the work done under the lease. Release it in `finally`, or with `await using`.
 *
 * @example
 * ```ts
 * await using lease = await $lock(pool).lease('nightly-report', { ttl: '1m' });
 * await buildReport({ signal: lease.signal, fence: lease.fencingToken });
 * ```
 */
export interface Lease<D = unknown> extends AsyncDisposable {
  /** The lease's name. */
  readonly name: string;
  /** This process's owner id (`host:pid:random`). */
  readonly owner: string;
  /**
   * Strictly larger than the token of every earlier acquisition of this name (through release,
   * expiry and pruning of old rows). Write it next to what the lease protects and refuse writes
   * with a smaller one: see {@link fencingCondition}.
   */
  readonly fencingToken: bigint;
  /** The `data` option it was acquired with (stored in the lease row). */
  readonly data: D | null;
  /** When the database will expire the lease unless renewed (its own clock, last known). */
  readonly expiresAt: Date;
  /** Aborts when the lease is lost (reason: a {@link LeaseLostError}) or released. */
  readonly signal: AbortSignal;
  /** `'held'`, `'released'` or `'lost'`. */
  readonly state: 'held' | 'released' | 'lost';
  /** Renews now, optionally with a new ttl. Throws {@link LeaseLostError} if it is no longer held. */
  extend(ttl?: Duration): Promise<void>;
  /**
   * Releases it and wakes waiters. Throws {@link LeaseLostError} if it was lost before (expired or
   * taken over): the work done under it may have overlapped another holder's. A second call does nothing.
   */
  release(): Promise<void>;
}

/** Validated lease options. */
interface LeasePlan {
  readonly ttlMs: number;
  readonly heartbeatMs: number | undefined;
  readonly waitMs: number | undefined;
  readonly data: unknown;
  readonly signal: AbortSignal | undefined;
  readonly onLost: ((error: LeaseLostError) => void) | undefined;
  readonly onBusy: 'throw' | 'return' | 'skip';
  readonly prioritize: LeasePrioritizePlan | undefined;
}

/** Validated {@link LeasePrioritizeOptions}. */
interface LeasePrioritizePlan extends PrioritizePlan {
  readonly takeOver: boolean | ((holder: LeaseRecord) => boolean);
  readonly onTakeOver: ((previous: LeaseRecord) => void) | undefined;
}

const DEFAULT_TTL_MS = 30_000;
const OPTIONS = new Set(['ttl', 'heartbeat', 'wait', 'data', 'signal', 'onLost', 'onBusy', 'prioritize']);

/** Validates lease options before any SQL is sent. */
export function planLease(options: unknown, form: 'lease' | 'run'): LeasePlan {
  const opts = (options ?? {}) as Record<string, unknown>;
  if (typeof opts !== 'object' || Array.isArray(opts)) throw new InvalidLockArgumentError('options', 'expected an object');
  for (const name of Object.keys(opts)) if (!OPTIONS.has(name)) throw new InvalidLockArgumentError(`options.${name}`, 'unknown option');
  const ttlMs = opts['ttl'] === undefined ? DEFAULT_TTL_MS : parseDuration(opts['ttl'], 'options.ttl');
  if (ttlMs < 10) throw new InvalidLockArgumentError('options.ttl', 'at least 10 ms');
  let heartbeatMs: number | undefined;
  if (opts['heartbeat'] === false) heartbeatMs = undefined;
  else if (opts['heartbeat'] === undefined) heartbeatMs = Math.max(1, Math.floor(ttlMs / 3));
  else {
    heartbeatMs = parseDuration(opts['heartbeat'], 'options.heartbeat');
    if (heartbeatMs <= 0 || heartbeatMs >= ttlMs / 2) {
      throw new InvalidLockArgumentError('options.heartbeat', `must be above 0 and under half the ttl (${ttlMs} ms), so that a renewal can fail once and still arrive in time`);
    }
  }
  const wait = opts['wait'];
  const waitMs = wait === undefined || wait === false ? undefined : parseDuration(wait, 'options.wait');
  const signal = opts['signal'];
  if (signal !== undefined && !(signal instanceof AbortSignal)) throw new InvalidLockArgumentError('options.signal', 'expected an AbortSignal');
  const onLost = opts['onLost'];
  if (onLost !== undefined && typeof onLost !== 'function') throw new InvalidLockArgumentError('options.onLost', 'expected a function');
  const allowed = form === 'run' ? ['throw', 'skip'] : ['throw', 'return'];
  const onBusy = opts['onBusy'] ?? 'throw';
  if (!allowed.includes(onBusy as string)) throw new InvalidLockArgumentError('options.onBusy', `expected one of ${allowed.map((v) => `'${v}'`).join(', ')}`);
  if (opts['data'] !== undefined) {
    try {
      JSON.stringify(opts['data']);
    } catch (error) {
      throw new InvalidLockArgumentError('options.data', `expected a JSON value (${(error as Error).message})`);
    }
  }
  const prioritize = opts['prioritize'] === undefined ? undefined : planLeasePrioritize(opts['prioritize']);
  if (prioritize !== undefined && (waitMs === undefined || waitMs === 0)) {
    throw new InvalidLockArgumentError('options.prioritize', 'needs a wait: pass wait (how long to wait while blockers are cancelled, terminated or taken over)');
  }
  return {
    ttlMs,
    heartbeatMs,
    waitMs,
    data: opts['data'],
    signal: signal as AbortSignal | undefined,
    onLost: onLost as LeasePlan['onLost'],
    onBusy: onBusy as LeasePlan['onBusy'],
    prioritize,
  };
}

function planLeasePrioritize(value: unknown): LeasePrioritizePlan {
  // The lease-only options come off first; planPrioritize checks the rest (and refuses a non-object).
  const isObject = typeof value === 'object' && value !== null && !Array.isArray(value);
  const { takeOver = true, onTakeOver, ...rest } = isObject ? (value as Record<string, unknown>) : {};
  const base = planPrioritize(isObject ? rest : value, 'options.prioritize');
  if (typeof takeOver !== 'boolean' && typeof takeOver !== 'function') {
    throw new InvalidLockArgumentError('options.prioritize.takeOver', `expected true, false or a function of the holder, got ${describe(takeOver)}`);
  }
  if (onTakeOver !== undefined && typeof onTakeOver !== 'function') throw new InvalidLockArgumentError('options.prioritize.onTakeOver', 'expected a function');
  return { ...base, takeOver: takeOver as LeasePrioritizePlan['takeOver'], onTakeOver: onTakeOver as LeasePrioritizePlan['onTakeOver'] };
}

/**
 * How much earlier than the database this process stops trusting its lease: a tenth of the ttl,
 * between 20 ms and 5 s. It covers timer lateness and clock-rate differences; the trust deadline
 * is counted from when the request was sent, so network delay only makes it earlier.
 */
export function trustMarginMs(ttlMs: number): number {
  return Math.min(5_000, Math.max(20, Math.ceil(ttlMs / 10)));
}

class LeaseHandle<D> implements Lease<D>, HeldLease {
  readonly name: string;
  readonly owner: string;
  readonly token: string;
  readonly fencingToken: bigint;
  readonly data: D | null;
  ttlMs: number;
  readonly heartbeatMs: number | undefined;
  renewAt: number;
  #expiresAt: Date;
  #state: 'held' | 'released' | 'lost' = 'held';
  #lostError: LeaseLostError | undefined;
  // Made when `signal` is first read: most leases are released without anyone reading it, and an
  // AbortController with its event target is the costliest part of a lease's JavaScript.
  #controller: AbortController | undefined;
  #endReason: (() => unknown) | undefined;
  readonly #host: LeaseHost;
  readonly #onLost: ((error: LeaseLostError) => void) | undefined;
  #trustedUntil = 0;
  #lastSentAt = Number.NEGATIVE_INFINITY;
  #trustTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(host: LeaseHost, attempt: Extract<AcquireAttempt, { acquired: true }>, plan: LeasePlan) {
    this.#host = host;
    this.name = attempt.row.name;
    this.owner = attempt.row.owner;
    this.token = attempt.row.token;
    this.fencingToken = BigInt(attempt.row.token);
    this.data = (attempt.row.data ?? null) as D | null;
    this.ttlMs = plan.ttlMs;
    this.heartbeatMs = plan.heartbeatMs;
    this.renewAt = attempt.sentAt + (plan.heartbeatMs ?? 0);
    this.#expiresAt = new Date(Number(attempt.row.expires_ms));
    this.#onLost = plan.onLost;
    this.renewed(attempt.sentAt, Number(attempt.row.expires_ms));
    host.hold(this);
  }

  get expiresAt(): Date {
    return this.#expiresAt;
  }

  get signal(): AbortSignal {
    if (this.#controller === undefined) {
      this.#controller = new AbortController();
      if (this.#endReason !== undefined) this.#controller.abort(this.#endReason());
    }
    return this.#controller.signal;
  }

  /** Aborts `signal` with `reason()` now, or when it is first read. */
  #end(reason: () => unknown): void {
    this.#endReason = reason;
    this.#controller?.abort(reason());
  }

  get state(): 'held' | 'released' | 'lost' {
    return this.#state;
  }

  /** @internal A renewal sent at `sentAt` (performance.now()) got through. */
  renewed(sentAt: number, expiresMs: number): void {
    if (this.#state !== 'held' || sentAt < this.#lastSentAt) return;
    this.#lastSentAt = sentAt;
    this.#expiresAt = new Date(expiresMs);
    // Trusted until sent + ttl − margin by this process's monotonic clock: the database counted
    // its ttl from some moment after we sent, so we stop before it does, never after.
    this.#trustedUntil = sentAt + this.ttlMs - trustMarginMs(this.ttlMs);
    if (this.#trustTimer !== undefined) clearTimeout(this.#trustTimer);
    this.#trustTimer = setTimeout(() => this.#distrust(), Math.max(0, this.#trustedUntil - performance.now()));
    this.#trustTimer.unref?.();
  }

  #distrust(): void {
    if (this.#state !== 'held') return;
    if (performance.now() < this.#trustedUntil) {
      this.renewed(this.#lastSentAt, this.#expiresAt.getTime());
      return;
    }
    this.lost(
      new LeaseLostError(
        `lease ${JSON.stringify(this.name)} was not renewed in time (ttl ${this.ttlMs} ms): this process stopped trusting it before the database would expire it`,
        this.name,
        'expired',
      ),
    );
    // Give it back early if the database still has it, so that others need not wait for expiry.
    this.#host.release(this.name, this.token).catch(() => {});
  }

  /** @internal */
  lost(error: LeaseLostError): void {
    if (this.#state !== 'held') return;
    this.#state = 'lost';
    this.#lostError = error;
    this.#stop();
    this.#end(() => error);
    try {
      this.#onLost?.(error);
    } catch {
      // A throwing onLost must not break the heartbeat of other leases.
    }
  }

  #stop(): void {
    this.#host.drop(this);
    if (this.#trustTimer !== undefined) clearTimeout(this.#trustTimer);
    this.#trustTimer = undefined;
  }

  async extend(ttl?: Duration): Promise<void> {
    if (this.#state !== 'held') throw this.#notHeld('extend');
    const ttlMs = ttl === undefined ? this.ttlMs : parseDuration(ttl, 'ttl');
    if (this.heartbeatMs !== undefined && this.heartbeatMs >= ttlMs / 2) {
      throw new InvalidLockArgumentError('ttl', `must be over twice the heartbeat (${this.heartbeatMs} ms)`);
    }
    const renewed = await this.#host.extend(this.name, this.token, ttlMs);
    if (renewed === undefined) {
      const error = new LeaseLostError(`lease ${JSON.stringify(this.name)} could not be extended: it expired or was taken over`, this.name, 'expired');
      this.lost(error);
      throw error;
    }
    this.ttlMs = ttlMs;
    this.#lastSentAt = Number.NEGATIVE_INFINITY;
    this.renewed(renewed.sentAt, renewed.expiresMs);
  }

  async release(): Promise<void> {
    if (this.#state === 'released') return;
    if (this.#state === 'lost') throw this.#notHeld('release');
    this.#state = 'released';
    this.#stop();
    const name = this.name;
    this.#end(() => new Error(`lease ${JSON.stringify(name)} was released`));
    const outcome = await this.#host.release(this.name, this.token);
    if (outcome === 'released') return;
    const error =
      outcome === 'expired'
        ? new LeaseLostError(`lease ${JSON.stringify(this.name)} had already expired when released: work done under it may have overlapped another holder`, this.name, 'expired')
        : new LeaseLostError(`lease ${JSON.stringify(this.name)} was no longer held by this owner when released (taken over or removed)`, this.name, 'taken');
    this.#state = 'lost';
    this.#lostError = error;
    try {
      this.#onLost?.(error);
    } catch {
      // as above
    }
    throw error;
  }

  /** Releases without throwing for a lease that is already lost (used when the work itself failed). */
  async releaseQuietly(): Promise<void> {
    if (this.#state === 'held') await this.release().catch(() => {});
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.release();
  }

  #notHeld(action: string): LeaseLostError {
    const cause = this.#lostError;
    if (this.#state === 'released') return new LeaseLostError(`cannot ${action} lease ${JSON.stringify(this.name)}: it was released`, this.name, 'gone');
    return new LeaseLostError(`cannot ${action} lease ${JSON.stringify(this.name)}: it was lost (${cause?.message ?? 'expired'})`, this.name, cause?.reason ?? 'expired', { cause });
  }
}

/** Takes a lease per `plan`, waiting if asked. `null` when busy and `onBusy` is not `'throw'`. */
export async function acquireLease<D>(host: LeaseHost, name: string, plan: LeasePlan): Promise<Lease<D> | null> {
  const what = `lease ${JSON.stringify(name)}`;
  if (plan.signal?.aborted) throw new LockAbortedError(`wait for ${what} aborted before it started`, { cause: plan.signal.reason });
  if (plan.waitMs === undefined || plan.waitMs === 0) {
    const attempt = await host.tryAcquire(name, plan.ttlMs, plan.data);
    if (attempt.acquired) return new LeaseHandle<D>(host, attempt, plan);
    if (plan.onBusy !== 'throw') return null;
    throw new LockNotAvailableError(`${what} is held by ${describeHolder(attempt)}`);
  }

  const deadline = performance.now() + plan.waitMs;
  let leave: (() => void) | undefined;
  let stopWaiting: (() => void) | undefined;
  let inLine = false;
  let last: LineAttempt | undefined;
  // Prioritized: the wait's statements carry a mark by which a second connection finds the
  // backend running them, and signals what blocks it; the holder itself is taken over.
  const scoped = plan.prioritize === undefined ? scopedPrioritizePlan() : undefined;
  // The scope's plan (from `prioritize(fn)`) takes over any holder: the lease-only options have their defaults.
  const priority: LeasePrioritizePlan | undefined = plan.prioritize ?? (scoped === undefined ? undefined : { ...scoped, takeOver: true, onTakeOver: undefined });
  const mark = priority === undefined ? '' : newWaitMark();
  let prioritizer: Prioritizer | undefined;
  let nextTakeOver = priority === undefined || priority.takeOver === false ? Number.POSITIVE_INFINITY : performance.now() + priority.afterMs;
  try {
    if (priority !== undefined) prioritizer = startPrioritizer(host.sideChannel, undefined, mark, priority);
    leave = await host.enqueue(name, plan.signal).catch((reason: unknown) => {
      throw new LockAbortedError(`wait for ${what} aborted`, { cause: reason });
    });
    // LISTEN (where the layer can) before the first try, so a release between a try and the
    // sleep after it is not missed.
    stopWaiting = await host.startWaiting();
    let fastMs = FAST_POLL_MIN_MS;
    for (;;) {
      try {
        last = await host.tryInLine(name, plan.ttlMs, plan.data, mark);
      } catch (error) {
        // Prioritize gave up (no privilege to signal a blocker) and cancelled the statement.
        throw prioritizer?.failure ?? error;
      }
      if (last.acquired) {
        inLine = false;
        return new LeaseHandle<D>(host, last, plan);
      }
      inLine = true;
      if (priority !== undefined && performance.now() >= nextTakeOver) {
        nextTakeOver = performance.now() + priority.everyMs;
        const taken = last.holder === undefined ? undefined : await takeOver(host, name, plan, priority, mark, last.holder);
        // Still in line (inLine): the finally leaves it.
        if (taken !== undefined) return new LeaseHandle<D>(host, taken, plan);
      }
      if (deadline - performance.now() <= 0) break;
      // Awake for the next takeover, if one is due before the deadline.
      const left = Math.min(deadline, nextTakeOver) - performance.now();
      const ahead = last.ahead;
      const holderLeft = last.holder === undefined ? 0 : Math.max(0, last.holder.remainingMs);
      let sleepMs: number;
      if (host.listening) {
        // A release hands the lease to the first in line and tells its process by NOTIFY, so no
        // waiter needs to poll for it: the timer renews the place in line (well inside
        // LINE_TTL_MS), covers a lost NOTIFY, and lets the first in line take over at the
        // holder's expiry (a holder that died never releases).
        sleepMs = jitter(LINE_SAFETY_NET_MS);
        if (ahead === 0 && holderLeft > 0) sleepMs = Math.min(sleepMs, holderLeft + 1);
      } else if (ahead <= 1) {
        // Polling: the first in line finds a handed lease on its next try; a short interval with
        // jitter, growing while the holder keeps it, and never past the holder's expiry.
        sleepMs = jitter(fastMs);
        fastMs = Math.min(FAST_POLL_MAX_MS, fastMs * 1.5);
        if (holderLeft > 0) sleepMs = Math.min(sleepMs, holderLeft + 1);
      } else {
        // Further back, nothing tells a poller it moved up: the further back, the less often it
        // looks (25 ms per waiter ahead, at most FAST_POLL_MAX_MS).
        fastMs = FAST_POLL_MIN_MS;
        sleepMs = jitter(Math.min(FAST_POLL_MAX_MS, 25 * ahead));
      }
      const missedAt = last.sentAt;
      await host.sleep(name, Math.min(left, sleepMs), plan.signal, () => host.hasHandoff(name)).catch((reason: unknown) => {
        throw new LockAbortedError(`wait for ${what} aborted`, { cause: reason });
      });
      const handed = host.takeHandoff(name);
      // Handed by NOTIFY: the database counted the ttl from the handoff, after our last try was
      // sent (that try did not see it), so the trust deadline counts from the try. A try long ago
      // would leave little trust: then the next try in line picks the lease up instead.
      if (handed !== undefined && performance.now() - missedAt < plan.ttlMs / 2) {
        inLine = false;
        host.servedFromLine(name);
        return new LeaseHandle<D>(host, { acquired: true, row: { name, owner: host.owner, token: handed.token, data: plan.data ?? null, expires_ms: handed.expiresMs }, sentAt: missedAt }, plan);
      }
    }
    if (plan.onBusy !== 'throw') return null;
    throw new LockTimeoutError(`${what} was still held by ${describeHolder(last)} after ${plan.waitMs} ms`, plan.waitMs);
  } finally {
    await prioritizer?.stop();
    stopWaiting?.();
    // Give the place in line up at once, so that the next waiter need not wait for it to lapse.
    if (inLine) await host.leaveLine(name).catch(() => {});
    leave?.();
  }
}

/**
 * A prioritized wait takes the lease over from `seen` (the holder its last try saw), if the plan
 * lets it: the acquisition, or `undefined` when the holder changed meanwhile or may not be taken over.
 */
async function takeOver(
  host: LeaseHost,
  name: string,
  plan: LeasePlan,
  priority: LeasePrioritizePlan,
  mark: string,
  seen: { readonly owner: string; readonly token: string; readonly remainingMs: number },
): Promise<Extract<AcquireAttempt, { acquired: true }> | undefined> {
  let holder: { owner: string; token: string } = seen;
  let previous: LeaseRecord | undefined;
  if (typeof priority.takeOver === 'function' || priority.onTakeOver !== undefined) {
    // The predicate and the callback get the lease as the table has it now.
    const row = await host.get(name);
    if (row === undefined || Number(row.remaining_ms) <= 0) return undefined;
    previous = leaseRecordOf(row);
    if (typeof priority.takeOver === 'function' && priority.takeOver(previous) !== true) return undefined;
    holder = row;
  }
  const taken = await host.takeOver(name, plan.ttlMs, plan.data, holder, mark);
  if (taken !== undefined && previous !== undefined) priority.onTakeOver?.(previous);
  return taken;
}

/** Waiters that are (about) first in line, without NOTIFY, poll from this interval… */
const FAST_POLL_MIN_MS = 5;
/** …growing to this one while the holder keeps the lease (jittered ±50 %). */
const FAST_POLL_MAX_MS = 100;
/**
 * Waiters that hear releases by NOTIFY retry this often (±50 %): to renew their place in line,
 * well inside `LINE_TTL_MS` (3 s), and in case a NOTIFY is lost.
 */
const LINE_SAFETY_NET_MS = 1_000;

const jitter = (ms: number) => ms * (0.5 + Math.random());

function describeHolder(attempt: AcquireAttempt | LineAttempt | undefined): string {
  if (attempt === undefined || attempt.acquired || attempt.holder === undefined) return 'another owner';
  const holder = attempt.holder as { remainingMs?: number; remaining_ms?: number };
  const remaining = Number(holder.remainingMs ?? holder.remaining_ms);
  return `${attempt.holder.owner} (token ${attempt.holder.token}, ${Math.max(0, Math.round(remaining))} ms left)`;
}

/** Runs `fn(lease)` under a lease and releases it in `finally`; see {@link LeaseMethods.withLease}. */
export async function runWithLease<D, R>(host: LeaseHost, name: string, fn: (lease: Lease<D>) => R | Promise<R>, plan: LeasePlan): Promise<R | undefined> {
  const lease = (await acquireLease<D>(host, name, plan)) as LeaseHandle<D> | null;
  if (lease === null) return undefined;
  let result: R;
  try {
    result = await fn(lease);
  } catch (error) {
    await lease.releaseQuietly();
    throw error;
  }
  // Throws LeaseLostError if the lease was lost while fn ran: its work may have overlapped.
  await lease.release();
  return result;
}

/** Options of `leader(name, options)`. */
export interface LeaderOptions<D = unknown> extends Omit<LeaseOptions<D>, 'wait' | 'onBusy' | 'onLost' | 'signal' | 'prioritize'> {
  /** Called each time this process becomes the leader; `lease.signal` aborts when it stops being it. */
  readonly onElected: (lease: Lease<D>) => void | Promise<void>;
  /** Called when leadership ends: lost (with the error) or given up by `stop()` (`undefined`). */
  readonly onDemoted?: (error: LeaseLostError | undefined) => void | Promise<void>;
  /** Errors of the election loop itself (database unreachable) and of the callbacks. Default: ignored, the loop retries. */
  readonly onError?: (error: unknown) => void;
  /** Pause before retrying after an error or a loss. Default a third of the ttl. */
  readonly retry?: Duration;
  /** Stops the election loop (as `stop()` does). */
  readonly signal?: AbortSignal;
}

/** A running leader election; see {@link LeaseMethods.leader}. */
export interface Leadership extends AsyncDisposable {
  /** Whether this process leads right now. */
  readonly isLeader: boolean;
  /** The lease while leading. */
  readonly lease: Lease | undefined;
  /** Stops competing, gives leadership up (releasing the lease), and resolves when the loop has ended. */
  stop(): Promise<void>;
}

/** Runs leader election until stopped; see {@link LeaseMethods.leader}. */
export function runLeader<D>(host: LeaseHost, name: string, options: LeaderOptions<D>): Leadership {
  if (typeof options?.onElected !== 'function') throw new InvalidLockArgumentError('options.onElected', 'expected a function');
  const { onElected, onDemoted, onError = () => {}, retry, signal, ...leaseOptions } = options;
  // An election that took the lease over would depose a live leader each round.
  if ('prioritize' in leaseOptions) throw new InvalidLockArgumentError('options.prioritize', 'leader election does not take leadership by force; use lease(name, { wait, prioritize })');
  const plan = planLease(leaseOptions, 'lease');
  const retryMs = retry === undefined ? Math.max(10, Math.floor(plan.ttlMs / 3)) : parseDuration(retry, 'options.retry');
  const stopper = new AbortController();
  if (signal !== undefined) {
    if (signal.aborted) stopper.abort();
    else signal.addEventListener('abort', () => stopper.abort(), { once: true });
  }
  let current: LeaseHandle<D> | undefined;
  const pause = (ms: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms * (0.5 + Math.random()));
      stopper.signal.addEventListener('abort', () => (clearTimeout(timer), resolve()), { once: true });
    });
  const loop = (async () => {
    while (!stopper.signal.aborted) {
      let lease: LeaseHandle<D> | null;
      try {
        lease = (await acquireLease<D>(host, name, { ...plan, waitMs: MAX_DURATION_MS, signal: stopper.signal, onBusy: 'return' })) as LeaseHandle<D> | null;
      } catch (error) {
        if (stopper.signal.aborted) break;
        onError(error);
        await pause(retryMs);
        continue;
      }
      if (lease === null) continue;
      current = lease;
      try {
        await onElected(lease);
      } catch (error) {
        onError(error);
      }
      if (lease.state === 'held') {
        await new Promise<void>((resolve) => {
          lease.signal.addEventListener('abort', () => resolve(), { once: true });
          stopper.signal.addEventListener('abort', () => resolve(), { once: true });
        });
      }
      current = undefined;
      const lostError = lease.state === 'lost' ? (lease.signal.reason as LeaseLostError) : undefined;
      if (lease.state === 'held') await lease.releaseQuietly();
      try {
        await onDemoted?.(lostError);
      } catch (error) {
        onError(error);
      }
      if (lostError !== undefined) await pause(retryMs);
    }
  })();
  const leadership: Leadership = {
    get isLeader() {
      return current?.state === 'held';
    },
    get lease() {
      return current?.state === 'held' ? current : undefined;
    },
    async stop() {
      stopper.abort();
      await loop;
    },
    async [Symbol.asyncDispose]() {
      await leadership.stop();
    },
  };
  return leadership;
}

/**
 * A SQL condition that admits a write only from the holder of the newest lease: the protected row
 * keeps the fencing token of the last write (`bigint` column), and a write carries its lease's
 * token. A holder that lost its lease (and was paused, or partitioned, past its expiry) has a
 * smaller token than the new holder, so its late write matches no row.
 *
 * `column` is quoted here; `placeholder` must be a parameter placeholder such as `$3`.
 *
 * @example
 * ```ts
 * const { rowCount } = await pool.query(
 *   `UPDATE reports SET body = $1, fence = $2 WHERE id = $3 AND ${fencingCondition('fence', '$2')}`,
 *   [body, lease.fencingToken.toString(), id],
 * );
 * if (rowCount === 0) throw new Error('a newer lease holder wrote this report');
 * ```
 */
export function fencingCondition(column: string, placeholder: string): string {
  if (typeof column !== 'string' || column.length === 0) throw new InvalidLockArgumentError('column', 'expected a column name');
  if (!/^\$[1-9]\d*$/.test(placeholder)) throw new InvalidLockArgumentError('placeholder', 'expected a parameter placeholder such as $2');
  return `(${quoteIdent(column)} IS NULL OR ${quoteIdent(column)} <= ${placeholder}::int8)`;
}

/**
 * The lease API every layer exposes (`prisma.$lock`, `$lock(db)`, `$lock(pool)`). Lease statements
 * run in autocommit on the layer's own connections, never inside a caller's transaction.
 */
export interface LeaseMethods {
  /**
   * Takes a lease: a row in the lease table that lives `ttl` by the database's clock, renewed by
   * this process's heartbeat until released or lost.
   *
   * @example
   * ```ts
   * const lease = await prisma.$lock.lease('import:orders', { ttl: '30s', wait: '10s' });
   * try {
   *   await importOrders({ signal: lease.signal });
   * } finally {
   *   await lease.release();
   * }
   * ```
   */
  lease<D = unknown>(name: string, options?: LeaseOptions<D> & { readonly onBusy?: 'throw' }): Promise<Lease<D>>;
  /** As above, but resolves `null` instead of throwing when the lease stays busy (`onBusy: 'return'`). */
  lease<D = unknown>(name: string, options: LeaseOptions<D> & { readonly onBusy: 'return' }): Promise<Lease<D> | null>;
  /**
   * Runs `fn(lease)` under a lease, heartbeating, and releases it in `finally`. `lease.signal`
   * aborts the moment the lease is lost; if `fn` finishes after a loss, {@link LeaseLostError} is
   * thrown instead of its result.
   *
   * @example
   * ```ts
   * // A cron job that runs on one instance at a time; the others skip this tick.
   * await $lock(db).withLease('cron:cleanup', (lease) => cleanup({ signal: lease.signal }), { ttl: '1m', onBusy: 'skip' });
   * ```
   */
  withLease<R, D = unknown>(name: string, fn: (lease: Lease<D>) => R | Promise<R>, options?: WithLeaseOptions<D> & { readonly onBusy?: 'throw' }): Promise<R>;
  /** As above, but skips `fn` and resolves `undefined` when the lease is busy (`onBusy: 'skip'`). */
  withLease<R, D = unknown>(name: string, fn: (lease: Lease<D>) => R | Promise<R>, options: WithLeaseOptions<D> & { readonly onBusy: 'skip' }): Promise<R | undefined>;
  /** Reads a lease without acquiring it; `null` when there is no row (expired rows are returned with `live: false`). */
  getLease<D = unknown>(name: string): Promise<LeaseRecord<D> | null>;
  /** Lists leases whose name starts with `prefix` (all when omitted), expired rows included (`live: false`). */
  listLeases<D = unknown>(prefix?: string): Promise<LeaseRecord<D>[]>;
  /**
   * Leader election on a lease: keeps competing while the process lives; `onElected(lease)` runs
   * each time this process wins, `onDemoted` when it loses or gives up.
   *
   * @example
   * ```ts
   * const leadership = $lock(pool).leader('scheduler', {
   *   ttl: '15s',
   *   onElected: (lease) => startScheduler({ signal: lease.signal }),
   *   onDemoted: () => stopScheduler(),
   * });
   * process.on('SIGTERM', () => leadership.stop());
   * ```
   */
  leader<D = unknown>(name: string, options: LeaderOptions<D>): Leadership;
  /** Deletes rows expired for longer than `grace` (default 0). Fencing tokens keep increasing after. */
  pruneLeases(grace?: Duration): Promise<number>;
}

/** Builds {@link LeaseMethods} over a host resolved at each call. */
export function leaseMethods(hostOf: () => LeaseHost): LeaseMethods {
  return {
    lease: (async (name: string, options?: unknown) => acquireLease(hostOf(), checkLeaseName(name), planLease(options, 'lease'))) as LeaseMethods['lease'],
    withLease: (async (name: string, fn: unknown, options?: unknown) => {
      if (typeof fn !== 'function') throw new InvalidLockArgumentError('fn', 'expected a function to run under the lease');
      return runWithLease(hostOf(), checkLeaseName(name), fn as (lease: Lease) => unknown, planLease(options, 'run'));
    }) as LeaseMethods['withLease'],
    async getLease<D>(name: string) {
      const row = await hostOf().get(checkLeaseName(name));
      return row === undefined ? null : leaseRecordOf<D>(row);
    },
    async listLeases<D>(prefix = '') {
      if (typeof prefix !== 'string') throw new InvalidLockArgumentError('prefix', 'expected a string');
      return (await hostOf().list(prefix)).map((row) => leaseRecordOf<D>(row));
    },
    leader: (name, options) => runLeader(hostOf(), checkLeaseName(name), options),
    pruneLeases: async (grace = 0) => hostOf().prune(parseDuration(grace, 'grace')),
  };
}
