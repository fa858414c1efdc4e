/**
 * Reads the chaos run's ledger and proves what the locks promised, for every kind and name:
 *
 * - **exclusion**: no two accepted critical sections overlap on the database clock;
 * - **tokens**: in the order the protected counter was written, tokens strictly increase (a lease's
 *   fencing token, or the transaction id taken under an advisory or row lock), so every accepted
 *   write carried the highest token so far;
 * - **data**: the counter equals the number of ledger rows, and the sequence numbers written are
 *   exactly 1 … n (a doubled number is a lost update, a missing one a lost row);
 * - **liveness**: after every fault aimed at a name (and after every server restart, for all names)
 *   someone acquired that name again, and the final probe got every lock.
 */
import type pg from 'pg';

/** One accepted critical section. Times are microseconds since the epoch, on the database clock. */
export interface LedgerRow {
  readonly id: bigint;
  readonly kind: string;
  readonly name: string;
  readonly token: bigint;
  readonly seq: bigint;
  readonly startedAt: bigint;
  readonly endedAt: bigint;
  readonly worker: number;
}

/** One injected fault; `kind` and `name` are null for a server restart (it hits every lock). */
export interface FaultRow {
  readonly fault: string;
  readonly kind: string | null;
  readonly name: string | null;
  readonly worker: number | null;
  readonly at: bigint;
}

export interface CounterRow {
  readonly kind: string;
  readonly name: string;
  readonly n: bigint;
}

export interface Ledger {
  readonly rows: readonly LedgerRow[];
  readonly counters: readonly CounterRow[];
  readonly faults: readonly FaultRow[];
}

export type ViolationKind = 'overlap' | 'token' | 'lost-or-doubled' | 'not-reacquired';

export interface Violation {
  readonly kind: ViolationKind;
  readonly lock: string;
  readonly detail: string;
}

/** Worker number of the driver's final probe, which takes every lock once after the run. */
export const PROBE_WORKER = 0;

const micros = (column: string): string => `(extract(epoch FROM ${column}) * 1000000)::int8::text`;

/** Reads the three chaos tables. */
export async function readLedger(client: pg.ClientBase | pg.Pool): Promise<Ledger> {
  const rows = await client.query<Record<string, string>>(
    `SELECT id::text, kind, name, token::text, seq::text, ${micros('started_at')} AS started, ${micros('ended_at')} AS ended, worker::text
       FROM chaos_ledger ORDER BY id`,
  );
  const counters = await client.query<Record<string, string>>('SELECT kind, name, n::text FROM chaos_counter ORDER BY kind, name');
  const faults = await client.query<Record<string, string | null>>(`SELECT fault, kind, name, worker::text, ${micros('at')} AS at FROM chaos_faults ORDER BY id`);
  return {
    rows: rows.rows.map((r) => ({
      id: BigInt(r['id']!),
      kind: r['kind']!,
      name: r['name']!,
      token: BigInt(r['token']!),
      seq: BigInt(r['seq']!),
      startedAt: BigInt(r['started']!),
      endedAt: BigInt(r['ended']!),
      worker: Number(r['worker']),
    })),
    counters: counters.rows.map((r) => ({ kind: r['kind']!, name: r['name']!, n: BigInt(r['n']!) })),
    faults: faults.rows.map((r) => ({
      fault: r['fault']!,
      kind: r['kind'] ?? null,
      name: r['name'] ?? null,
      worker: r['worker'] === null ? null : Number(r['worker']),
      at: BigInt(r['at']!),
    })),
  };
}

/** Every violation of the ledger's promises; empty when the run was correct. */
export function checkLedger(ledger: Ledger): Violation[] {
  const violations: Violation[] = [];
  const byLock = new Map<string, LedgerRow[]>();
  for (const counter of ledger.counters) byLock.set(lockId(counter.kind, counter.name), []);
  for (const row of ledger.rows) {
    const id = lockId(row.kind, row.name);
    const list = byLock.get(id);
    if (list) list.push(row);
    else violations.push({ kind: 'lost-or-doubled', lock: id, detail: `ledger row ${row.id} for a lock with no counter` });
  }
  for (const counter of ledger.counters) {
    const lock = lockId(counter.kind, counter.name);
    const rows = byLock.get(lock)!;
    violations.push(...checkExclusion(lock, rows), ...checkTokens(lock, rows), ...checkData(lock, counter, rows), ...checkLiveness(lock, counter, rows, ledger.faults));
  }
  return violations;
}

function lockId(kind: string, name: string): string {
  return `${kind}:${name}`;
}

function checkExclusion(lock: string, rows: readonly LedgerRow[]): Violation[] {
  const out: Violation[] = [];
  const byStart = [...rows].sort((a, b) => compare(a.startedAt, b.startedAt) || compare(a.endedAt, b.endedAt));
  // Sorted by start, a section overlaps an earlier one exactly when it starts before the latest
  // end seen so far.
  let latest: LedgerRow | undefined;
  for (const row of byStart) {
    if (latest && row.startedAt < latest.endedAt) {
      out.push({
        kind: 'overlap',
        lock,
        detail: `worker ${row.worker} (row ${row.id}) started ${latest.endedAt - row.startedAt} µs before worker ${latest.worker} (row ${latest.id}) ended`,
      });
    }
    if (!latest || row.endedAt > latest.endedAt) latest = row;
  }
  return out;
}

function checkTokens(lock: string, rows: readonly LedgerRow[]): Violation[] {
  const out: Violation[] = [];
  const bySeq = [...rows].sort((a, b) => compare(a.seq, b.seq) || compare(a.id, b.id));
  for (let i = 1; i < bySeq.length; i += 1) {
    const before = bySeq[i - 1]!;
    const row = bySeq[i]!;
    if (row.token <= before.token) {
      out.push({
        kind: 'token',
        lock,
        detail: `write ${row.seq} (row ${row.id}, worker ${row.worker}) carried token ${row.token}, not above ${before.token} of write ${before.seq} (row ${before.id}, worker ${before.worker})`,
      });
    }
  }
  return out;
}

function checkData(lock: string, counter: CounterRow, rows: readonly LedgerRow[]): Violation[] {
  const out: Violation[] = [];
  if (counter.n !== BigInt(rows.length)) out.push({ kind: 'lost-or-doubled', lock, detail: `counter is ${counter.n} but the ledger has ${rows.length} accepted sections` });
  const seen = new Map<bigint, number>();
  for (const row of rows) seen.set(row.seq, (seen.get(row.seq) ?? 0) + 1);
  let doubled = 0;
  let missing = 0;
  for (let seq = 1n; seq <= counter.n; seq += 1n) {
    const count = seen.get(seq) ?? 0;
    if (count === 0) missing += 1;
    if (count > 1) doubled += count - 1;
  }
  const beyond = rows.filter((row) => row.seq < 1n || row.seq > counter.n).length;
  if (doubled > 0) out.push({ kind: 'lost-or-doubled', lock, detail: `${doubled} sections wrote a sequence number another had written (lost updates)` });
  if (missing > 0) out.push({ kind: 'lost-or-doubled', lock, detail: `${missing} sequence numbers up to the counter have no ledger row` });
  if (beyond > 0) out.push({ kind: 'lost-or-doubled', lock, detail: `${beyond} ledger rows carry a sequence number outside 1..${counter.n}` });
  return out;
}

function checkLiveness(lock: string, counter: CounterRow, rows: readonly LedgerRow[], faults: readonly FaultRow[]): Violation[] {
  const out: Violation[] = [];
  if (!rows.some((row) => row.worker === PROBE_WORKER)) out.push({ kind: 'not-reacquired', lock, detail: 'the final probe did not get this lock' });
  const lastStart = rows.reduce<bigint | undefined>((max, row) => (max === undefined || row.startedAt > max ? row.startedAt : max), undefined);
  for (const fault of faults) {
    const aimed = fault.kind === null || (fault.kind === counter.kind && fault.name === counter.name);
    if (aimed && (lastStart === undefined || lastStart <= fault.at)) {
      out.push({ kind: 'not-reacquired', lock, detail: `never acquired after the ${fault.fault} fault${fault.worker === null ? '' : ` on worker ${fault.worker}`}` });
    }
  }
  return out;
}

function compare(a: bigint, b: bigint): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
