/** One figure of the benchmark table. */
export interface BenchRow {
  /** What was measured, e.g. `advisory xact (fn form)`. */
  case: string;
  /** `raw pg`, `ormlock pg`, `ormlock drizzle`, `redlock 4.2.0 (ioredis)`, … */
  driver: string;
  clients: number;
  /** With 1 client, 1000 / mean latency; with more, all clients' operations over the wall time. */
  opsPerSec?: number;
  /** Per-operation latency; with several clients, over every client's operations. */
  medianMs?: number;
  p99Ms?: number;
  /** ormlock's median over the raw floor of the same driver, measured in the same run. */
  ratio?: number;
  /**
   * Throughput over the floor's, as a target reads it: with 1 client, of the totals (the calls
   * alternate one by one); with several, the median over rounds of the two throughputs of the
   * same round (see `pairedShare` in stats.ts).
   */
  share?: number;
  /**
   * Who wrote the row: `floor` (hand-written SQL), `ormlock`, or `peer` (another library or a
   * hand-written helper as apps write it today). Drives the chart's colours; rows without it are
   * told apart by their `driver` (`raw …` is a floor, `ormlock …` is ormlock, anything else a peer).
   */
  kind?: 'floor' | 'ormlock' | 'peer';
  /** A short remark printed beside the row, e.g. how many retries an operation took. */
  note?: string;
  /** Set on rows of a contended handoff case: see {@link HandoffFigures}. */
  handoff?: HandoffFigures;
}

/**
 * A contended handoff: N clients loop on one resource, each releasing right after it acquires.
 * The gap runs from the moment a holder starts its release to the moment the next holder's
 * acquire resolves.
 */
export interface HandoffFigures {
  /** Acquisitions measured (after warmup). */
  acquisitions: number;
  /** Every gap between a release and the next acquisition, whoever got it. */
  gapP50Ms: number;
  gapP99Ms: number;
  /** Gaps where the lock went to a client other than the releaser: the real handoffs. */
  handoffP50Ms?: number;
  handoffP99Ms?: number;
  /** Share (0–1) of acquisitions that went back to the client that had just released. 1/N is fair. */
  backToReleaser: number;
  /** Acquire calls that gave up (retries exhausted) during the measurement. */
  failedAcquires: number;
  /**
   * How long a successful acquire call took, from the call to the lock: with fair handoff about
   * (clients − 1) × gap; a starved waiter shows up in the p99 and the maximum.
   */
  waitP50Ms?: number;
  waitP99Ms?: number;
  waitMaxMs?: number;
  /** Clients that got the lock not once during the measurement. */
  idleClients?: number;
}

/** What every bench case gets: a database of its own with the Prisma migrations applied. */
export interface BenchContext {
  url: string;
  quick: boolean;
}
