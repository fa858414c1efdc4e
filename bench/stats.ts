/** Latency figures of a set of samples in milliseconds. */
export function summarize(samplesMs: number[]): { medianMs: number; p99Ms: number } {
  const sorted = [...samplesMs].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;
  return { medianMs: at(0.5), p99Ms: at(0.99) };
}

/**
 * Times `op` `count` times in a row and returns each call's latency in milliseconds (warm-ups,
 * and each client's share of a round of {@link compareConcurrent}).
 */
export async function sample(op: (i: number) => Promise<unknown>, count: number): Promise<number[]> {
  const out: number[] = new Array(count);
  for (let i = 0; i < count; i += 1) {
    const start = performance.now();
    await op(i);
    out[i] = performance.now() - start;
  }
  return out;
}

/**
 * The cases in the order of round `round`: rotated by one place each round, so that every case
 * runs first, second, … equally often. Position matters: a case that runs right after others
 * inherits their garbage (dead index entries of claimed jobs, deleted lease rows) and their
 * checkpoints, and in a fixed order the later cases would always pay for it.
 */
function rotated<T>(entries: T[], round: number): T[] {
  const by = round % Math.max(1, entries.length);
  return [...entries.slice(by), ...entries.slice(0, by)];
}

/**
 * Runs named cases `rounds × perRound` calls each, one call of each case in turn, and summarizes
 * each. `scale` shrinks the calls of a slow case (e.g. `{ 'advisory-lock': 0.2 }`) so it does not
 * eat the time budget; its calls are spread evenly over the turns.
 */
export async function compare(
  cases: Record<string, (i: number) => Promise<unknown>>,
  { rounds, perRound, warmup }: { rounds: number; perRound: number; warmup: number },
  scale: Record<string, number> = {},
): Promise<Record<string, { medianMs: number; p99Ms: number; opsPerSec: number }>> {
  const samples: Record<string, number[]> = {};
  const n = (name: string, count: number) => Math.max(1, Math.round(count * (scale[name] ?? 1)));
  for (const [name, op] of Object.entries(cases)) {
    await sample(op, n(name, warmup));
    samples[name] = [];
  }
  // One call of each case in turn, the order rotated every turn: whatever drifts during the run
  // (other load on the machine, garbage the calls leave in shared tables, checkpoints) falls on
  // every case alike, instead of on whichever case's round it happened in.
  const entries = Object.entries(cases);
  const counts = Object.fromEntries(entries.map(([name]) => [name, n(name, rounds * perRound)]));
  const turns = Math.max(...Object.values(counts));
  for (let turn = 0; turn < turns; turn += 1) {
    for (const [name, op] of rotated(entries, turn)) {
      const list = samples[name]!;
      if (list.length >= Math.floor(((turn + 1) * counts[name]!) / turns)) continue;
      const start = performance.now();
      await op(list.length);
      list.push(performance.now() - start);
    }
  }
  return Object.fromEntries(
    Object.entries(samples).map(([name, list]) => {
      const figures = summarize(list);
      return [name, { ...figures, opsPerSec: 1000 / (list.reduce((a, b) => a + b, 0) / list.length) }];
    }),
  );
}

/** One client's operation in a concurrent case: `i` counts that client's calls. */
export type ClientOp = (i: number) => Promise<unknown>;

/**
 * Runs named cases with several clients at once (one op function per client, each on a connection
 * of its own), in `rounds` alternating rounds; in each round every client makes `perClient` calls
 * back to back while the others do the same. Latency percentiles are over every client's calls;
 * throughput is all calls over the rounds' wall time.
 */
export async function compareConcurrent(
  cases: Record<string, ClientOp[]>,
  { rounds, perClient, warmup }: { rounds: number; perClient: number; warmup: number },
  scale: Record<string, number> = {},
): Promise<Record<string, ConcurrentFigures>> {
  const n = (name: string, count: number) => Math.max(1, Math.round(count * (scale[name] ?? 1)));
  const samples: Record<string, number[]> = {};
  const wallMs: Record<string, number> = {};
  const roundOpsPerSec: Record<string, number[]> = {};
  const runRound = async (ops: ClientOp[], count: number, offset: number) => {
    const start = performance.now();
    const lists = await Promise.all(ops.map((op) => sample((i) => op(offset + i), count)));
    return { wall: performance.now() - start, lists };
  };
  for (const [name, ops] of Object.entries(cases)) {
    await runRound(ops, n(name, warmup), 0);
    samples[name] = [];
    wallMs[name] = 0;
    roundOpsPerSec[name] = [];
  }
  for (let round = 0; round < rounds; round += 1) {
    for (const [name, ops] of rotated(Object.entries(cases), round)) {
      const { wall, lists } = await runRound(ops, n(name, perClient), warmup + round * perClient);
      for (const list of lists) samples[name]!.push(...list);
      wallMs[name]! += wall;
      roundOpsPerSec[name]!.push((lists.reduce((count, list) => count + list.length, 0) * 1000) / wall);
    }
  }
  return Object.fromEntries(
    Object.entries(samples).map(([name, list]) => [name, { ...summarize(list), opsPerSec: (list.length * 1000) / wallMs[name]!, roundOpsPerSec: roundOpsPerSec[name]! }]),
  );
}

/** What {@link compareConcurrent} measures of one case. */
export interface ConcurrentFigures {
  medianMs: number;
  p99Ms: number;
  /** All rounds' operations over all rounds' wall time. */
  opsPerSec: number;
  /** Each round's own throughput, in round order (every case ran once in each round). */
  roundOpsPerSec: number[];
}

/**
 * A case's throughput against a floor's as the median, over rounds, of the two throughputs of
 * the same round (each {@link ConcurrentFigures.roundOpsPerSec}). A stall of the server (a
 * checkpoint, autovacuum on the queue, another process on the two cores) falls on the one case
 * whose round it hit, and moves the ratio of the totals by a few per cent; the median of the
 * rounds' ratios is not moved by a few such rounds.
 */
export function pairedShare(rounds: readonly number[], floorRounds: readonly number[]): number {
  const ratios = rounds.map((opsPerSec, round) => opsPerSec / floorRounds[round]!).sort((a, b) => a - b);
  const middle = ratios.length >> 1;
  return ratios.length % 2 === 1 ? ratios[middle]! : (ratios[middle - 1]! + ratios[middle]!) / 2;
}

/** A lock as the handoff measurement drives it: acquire resolves a function that releases. */
export type HandoffClient = () => Promise<() => Promise<unknown>>;

/**
 * Contended handoff: every client loops acquire → release at once → acquire on one resource for
 * `durationMs` (after `warmupMs`). All clients live in this process, so one clock orders every
 * event. Returns the gaps from each release's start to the next acquisition and who got it.
 */
export async function measureHandoff(
  clients: HandoffClient[],
  {
    durationMs,
    warmupMs,
    gaveUp = () => false,
  }: { durationMs: number; warmupMs: number; /** Errors that mean "retries exhausted": counted, not thrown. */ gaveUp?: (error: unknown) => boolean },
): Promise<{ acquisitions: number; opsPerSec: number; gapP50Ms: number; gapP99Ms: number; handoffP50Ms?: number; handoffP99Ms?: number; backToReleaser: number; failedAcquires: number; waitP50Ms: number; waitP99Ms: number; waitMaxMs: number; idleClients: number }> {
  type Event = { at: number; client: number; kind: 'acquired' | 'releasing'; waitMs?: number };
  const events: Event[] = [];
  const t0 = performance.now();
  const measureFrom = t0 + warmupMs;
  const stopAt = measureFrom + durationMs;
  let failedAcquires = 0;
  await Promise.all(
    clients.map(async (acquire, client) => {
      while (performance.now() < stopAt) {
        let release: () => Promise<unknown>;
        const asked = performance.now();
        try {
          release = await acquire();
        } catch (error) {
          if (!gaveUp(error)) throw error;
          if (performance.now() >= measureFrom) failedAcquires += 1;
          continue;
        }
        const at = performance.now();
        events.push({ at, client, kind: 'acquired', waitMs: at - asked });
        events.push({ at: performance.now(), client, kind: 'releasing' });
        await release();
      }
    }),
  );
  const gaps: number[] = [];
  const waits: number[] = [];
  const handoffs: number[] = [];
  let same = 0;
  let acquisitions = 0;
  let lastRelease: Event | undefined;
  for (const event of events) {
    if (event.kind === 'releasing') {
      lastRelease = event;
      continue;
    }
    if (lastRelease === undefined || lastRelease.at < measureFrom || event.at > stopAt) continue;
    acquisitions += 1;
    waits.push(event.waitMs!);
    const gap = event.at - lastRelease.at;
    gaps.push(gap);
    if (event.client === lastRelease.client) same += 1;
    else handoffs.push(gap);
  }
  const all = summarize(gaps);
  const moved = handoffs.length > 0 ? summarize(handoffs) : undefined;
  return {
    acquisitions,
    opsPerSec: (acquisitions * 1000) / durationMs,
    gapP50Ms: all.medianMs,
    gapP99Ms: all.p99Ms,
    handoffP50Ms: moved?.medianMs,
    handoffP99Ms: moved?.p99Ms,
    backToReleaser: acquisitions > 0 ? same / acquisitions : Number.NaN,
    failedAcquires,
    waitP50Ms: summarize(waits).medianMs,
    waitP99Ms: summarize(waits).p99Ms,
    waitMaxMs: waits.reduce((a, b) => Math.max(a, b), 0),
    idleClients: clients.length - new Set(events.filter((e) => e.kind === 'acquired' && e.at >= measureFrom && e.at <= stopAt).map((e) => e.client)).size,
  };
}
