/**
 * The chaos run: `node --import tsx test/chaos/chaos-driver.ts [--quick] [--break] [--seconds=N]
 * [--workers=N]` (or `npm run test:chaos -- …`; `ORMLOCK_CHAOS_QUICK=1` is `--quick`).
 *
 * Starts its own embedded PostgreSQL, runs worker processes that contend on advisory locks, row
 * locks and leases (`chaos-worker.ts`), and meanwhile injects faults aimed at lock holders:
 * SIGKILL (the worker is respawned), `pg_terminate_backend`, `pg_cancel_backend`, SIGSTOP past the
 * lease ttl then SIGCONT, and restarts of the server (fast and immediate). Then it takes every lock
 * once more (the final probe), checks that nothing leaked, and hands the ledger to
 * `ledger-checker.ts`. Prints the counts and a closing `N passed, N failed` line; exits non-zero on
 * any violation or if too few acquisitions or faults happened.
 *
 * `--break` runs the same sections with no lock at all and passes only if the checker reports
 * violations: the proof that the checker can fail.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import pg from 'pg';
import { ensureLeaseTable } from '../../src/pg/index.js';
import { startChaosServer } from './chaos-server.js';
import { CHAOS_SCHEMA_SQL, LEASE_TTL_MS, LOCK_KINDS, LOCK_NAMES, type LockKind, runSection, seedCounters } from './critical-sections.js';
import { checkLedger, PROBE_WORKER, readLedger, type Violation } from './ledger-checker.js';

type Fault = 'sigkill' | 'terminate' | 'cancel' | 'sigstop' | 'restart-fast' | 'restart-immediate';
const AIMED_FAULTS = ['sigkill', 'terminate', 'cancel', 'sigstop'] as const;
type AimedFault = (typeof AIMED_FAULTS)[number];

interface Config {
  readonly mode: 'full' | 'quick' | 'break';
  readonly seconds: number;
  readonly workers: number;
  /** Mean pause between two aimed faults. */
  readonly faultEveryMs: number;
  /** Pause between two server restarts (0: none). */
  readonly restartEveryMs: number;
  readonly minAcquisitions: number;
  readonly minFaults: number;
}

function configFrom(argv: readonly string[], env: NodeJS.ProcessEnv): Config {
  const flag = (name: string): string | undefined => argv.find((arg) => arg.startsWith(`--${name}=`))?.slice(name.length + 3);
  const broken = argv.includes('--break');
  const quick = argv.includes('--quick') || env['ORMLOCK_CHAOS_QUICK'] === '1';
  const base: Config = broken
    ? { mode: 'break', seconds: 10, workers: 8, faultEveryMs: 0, restartEveryMs: 0, minAcquisitions: 0, minFaults: 0 }
    : quick
      ? { mode: 'quick', seconds: 25, workers: 8, faultEveryMs: 250, restartEveryMs: 11_000, minAcquisitions: 300, minFaults: 25 }
      : { mode: 'full', seconds: 240, workers: 8, faultEveryMs: 700, restartEveryMs: 25_000, minAcquisitions: 10_000, minFaults: 100 };
  const seconds = flag('seconds');
  const workers = flag('workers');
  return { ...base, ...(seconds ? { seconds: Number(seconds) } : {}), ...(workers ? { workers: Number(workers) } : {}) };
}

interface Worker {
  readonly index: number;
  child: ChildProcess;
  holding: { kind: LockKind; name: string; pid: number } | undefined;
  stopped: boolean;
  /** Set on SIGCONT: the next `fenced` line of this section is a late write the guard refused. */
  resumed: boolean;
  killedByUs: boolean;
  stderr: string;
  ready: boolean;
  onReady?: () => void;
}

interface Armed {
  readonly fault: AimedFault;
  readonly kind: LockKind;
  readonly fired: (done: boolean) => void;
}

const config = configFrom(process.argv.slice(2), process.env);
const workerScript = fileURLToPath(new URL('./chaos-worker.ts', import.meta.url));
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const pick = <T>(items: readonly T[]): T => items[Math.floor(Math.random() * items.length)]!;
const bump = (map: Map<string, number>, key: string, by = 1): void => void map.set(key, (map.get(key) ?? 0) + by);

const faults = new Map<string, number>();
const entered = new Map<string, number>();
const workerErrors = new Map<string, number>();
const fencedRefusals = new Map<string, number>();
let lateWritesRefused = 0;
const leaseTokens = new Map<string, number>();
const tokenReuses: string[] = [];
let respawns = 0;
const crashes: string[] = [];
let armed: Armed | undefined;
let stopping = false;
let restarting = false;
let stoppedWorker: Worker | undefined;

const started = Date.now();
const elapsed = (): string => `${((Date.now() - started) / 1000).toFixed(1)} s`;
console.log(
  `chaos: ${config.mode} mode, ${config.seconds} s of contention, ${config.workers} workers (advisory locks through Drizzle on even ones, ormlock/pg on odd ones), ` +
    `kinds ${LOCK_KINDS.join('/')}, names ${LOCK_NAMES.join('/')}, lease ttl ${LEASE_TTL_MS} ms`,
);

const server = await startChaosServer();
console.log(`chaos: embedded PostgreSQL on port ${server.port} (${elapsed()})`);
const admin = new pg.Pool({ connectionString: server.url, max: 3, application_name: 'chaos-driver' });
admin.on('error', () => {});
const workers: Worker[] = [];
let exitCode = 1;
// Interrupted (Ctrl-C, a CI timeout): leave nothing running, neither workers nor the server.
// `on`, not `once`: tsx ends the process itself on a signal nobody listens to any more.
let interrupted = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (interrupted) return;
    interrupted = true;
    stopping = true;
    console.log(`chaos: ${signal}, stopping`);
    for (const worker of workers) worker.child.kill('SIGKILL');
    void server.stop().finally(() => process.exit(130));
  });
}
try {
  await admin.query(CHAOS_SCHEMA_SQL);
  await seedCounters(admin);
  await ensureLeaseTable(admin);

  for (let i = 1; i <= config.workers; i += 1) workers.push(spawnWorker(i));
  await Promise.all(workers.map((worker) => waitReady(worker)));
  console.log(`chaos: ${config.workers} workers ready (${elapsed()})`);

  const until = Date.now() + config.seconds * 1000;
  await Promise.all([injectFaults(until), restartServer(until), progress(until), sleep(config.seconds * 1000)]);
  stopping = true;
  armed?.fired(false);
  await stopWorkers();
  console.log(`chaos: workers stopped (${elapsed()}); final probe of every lock`);

  const probeFailures = await finalProbe();
  const leaks = await leakCheck();
  const ledger = await readLedger(admin);
  const violations = checkLedger(ledger);
  exitCode = report(ledger.rows, violations, leaks, probeFailures);
} catch (error) {
  console.error('chaos: the run itself failed:', error);
  console.log('0 passed, 1 failed');
} finally {
  stopping = true;
  for (const worker of workers) if (worker.child.exitCode === null && worker.child.signalCode === null) worker.child.kill('SIGKILL');
  await admin.end().catch(() => {});
  await server.stop();
}
process.exit(exitCode);

function spawnWorker(index: number): Worker {
  const child = spawn(process.execPath, ['--import', 'tsx', workerScript, server.url, String(index), ...(config.mode === 'break' ? ['--break'] : [])], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const worker: Worker = { index, child, holding: undefined, stopped: false, resumed: false, killedByUs: false, stderr: '', ready: false };
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
    worker.stderr = (worker.stderr + chunk).slice(-4000);
    if (process.env['ORMLOCK_CHAOS_VERBOSE']) process.stderr.write(chunk);
  });
  createInterface({ input: child.stdout! }).on('line', (line) => onLine(worker, line));
  child.once('exit', (code, signal) => {
    if (worker.child !== child) return;
    worker.holding = undefined;
    if (!worker.killedByUs && !(stopping && (code === 0 || signal === 'SIGTERM'))) crashes.push(`worker ${index} exited (${code ?? signal}): ${worker.stderr.slice(-500)}`);
    if (stopping) return;
    respawns += 1;
    const next = spawnWorker(index);
    workers[workers.indexOf(worker)] = next;
  });
  return worker;
}

function waitReady(worker: Worker): Promise<void> {
  return new Promise((resolve, reject) => {
    if (worker.ready) return resolve();
    worker.onReady = resolve;
    worker.child.once('exit', () => reject(new Error(`worker ${worker.index} exited before it was ready: ${worker.stderr}`)));
  });
}

function onLine(worker: Worker, line: string): void {
  const [event, ...rest] = line.split(' ');
  if (event === 'ready') {
    worker.ready = true;
    worker.onReady?.();
  } else if (event === 'enter') {
    const [kind, name, pid] = rest as [LockKind, string, string];
    worker.holding = { kind, name, pid: Number(pid) };
    bump(entered, kind);
    if (armed && !stopping && !restarting && armed.kind === kind && !worker.stopped) {
      const shot = armed;
      armed = undefined;
      void fire(shot, worker).then(shot.fired, () => shot.fired(false));
    }
  } else if (event === 'exit') {
    worker.holding = undefined;
    worker.resumed = false;
  } else if (event === 'fenced') {
    bump(fencedRefusals, rest[2] ?? '?');
    if (worker.resumed) lateWritesRefused += 1;
  } else if (event === 'leased') {
    // Every acquisition must get a token of its own: one handed out twice is reported.
    const [name, token] = rest as [string, string];
    const key = `${name}:${token}`;
    const first = leaseTokens.get(key);
    if (first !== undefined) tokenReuses.push(`lease ${name} token ${token}: acquired by worker ${first} and again by worker ${worker.index}`);
    else leaseTokens.set(key, worker.index);
  } else if (event === 'error') {
    bump(workerErrors, rest[0] ?? '?');
  }
}

async function fire(shot: Armed, worker: Worker): Promise<boolean> {
  const target = worker.holding;
  if (!target) return false;
  switch (shot.fault) {
    case 'sigkill':
      worker.killedByUs = true;
      worker.child.kill('SIGKILL');
      break;
    case 'terminate':
    case 'cancel': {
      const fn = shot.fault === 'terminate' ? 'pg_terminate_backend' : 'pg_cancel_backend';
      const { rows } = await admin.query<{ ok: boolean }>(`SELECT ${fn}($1) AS ok`, [target.pid]);
      if (!rows[0]?.ok) return false;
      break;
    }
    case 'sigstop': {
      worker.stopped = true;
      stoppedWorker = worker;
      worker.child.kill('SIGSTOP');
      // Past the ttl and the time another worker needs to take the lease over, then let it go on
      // with its write as if nothing happened.
      setTimeout(() => {
        worker.resumed = true;
        worker.stopped = false;
        stoppedWorker = undefined;
        worker.child.kill('SIGCONT');
      }, LEASE_TTL_MS + 700);
      break;
    }
  }
  await recordFault(shot.fault, target.kind, target.name, worker.index);
  return true;
}

async function recordFault(fault: Fault, kind: string | null, name: string | null, worker: number | null): Promise<void> {
  bump(faults, fault);
  // After a restart the server may take a moment to accept connections again.
  for (let attempt = 0; ; attempt += 1) {
    try {
      await admin.query('INSERT INTO chaos_faults (fault, kind, name, worker) VALUES ($1, $2, $3, $4)', [fault, kind, name, worker]);
      return;
    } catch (error) {
      if (attempt >= 50) throw error;
      await sleep(100);
    }
  }
}

async function injectFaults(until: number): Promise<void> {
  if (config.faultEveryMs <= 0) return;
  while (Date.now() < until) {
    await sleep(config.faultEveryMs * (0.5 + Math.random()));
    if (Date.now() >= until || restarting) continue;
    // One frozen worker at a time: two would leave too few to take its leases over.
    const choices = stoppedWorker ? AIMED_FAULTS.filter((f) => f !== 'sigstop') : AIMED_FAULTS;
    const fault = pick(choices);
    const kind = fault === 'sigstop' ? 'lease' : pick(LOCK_KINDS);
    await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => {
        if (armed?.fired === done) armed = undefined;
        resolve(false);
      }, 3_000);
      const done = (fired: boolean): void => {
        clearTimeout(timer);
        resolve(fired);
      };
      armed = { fault, kind, fired: done };
    });
  }
}

async function restartServer(until: number): Promise<void> {
  if (config.restartEveryMs <= 0) return;
  let count = 0;
  while (Date.now() + config.restartEveryMs / 2 < until) {
    await sleep(config.restartEveryMs * (0.7 + Math.random() * 0.6));
    if (Date.now() >= until - 3_000) return;
    restarting = true;
    armed?.fired(false);
    armed = undefined;
    const mode = count % 2 === 0 ? 'fast' : 'immediate';
    count += 1;
    try {
      await server.restart(mode);
      console.log(`chaos: server restarted (${mode}) at ${elapsed()}`);
      await recordFault(`restart-${mode}`, null, null, null);
    } finally {
      restarting = false;
    }
  }
}

async function progress(until: number): Promise<void> {
  while (Date.now() + 10_000 < until) {
    await sleep(10_000);
    const total = [...entered.values()].reduce((a, b) => a + b, 0);
    const faultTotal = [...faults.values()].reduce((a, b) => a + b, 0);
    console.log(`chaos: ${elapsed()}: ${total} sections entered, ${faultTotal} faults`);
  }
}

async function stopWorkers(): Promise<void> {
  for (const worker of workers) {
    if (worker.stopped) worker.child.kill('SIGCONT');
    worker.child.kill('SIGTERM');
  }
  const deadline = sleep(20_000).then(() => 'timeout' as const);
  for (const worker of workers) {
    if (worker.child.exitCode !== null || worker.child.signalCode !== null) continue;
    const exited = new Promise<'exited'>((resolve) => worker.child.once('exit', () => resolve('exited')));
    if ((await Promise.race([exited, deadline])) === 'timeout') {
      crashes.push(`worker ${worker.index} did not stop within 20 s of SIGTERM`);
      worker.killedByUs = true;
      worker.child.kill('SIGKILL');
    }
  }
}

/** Takes every lock once, with waits long enough for any leftover lease to expire. */
async function finalProbe(): Promise<string[]> {
  const failures: string[] = [];
  const pool = new pg.Pool({ connectionString: server.url, max: 4, application_name: 'chaos-probe' });
  pool.on('error', () => {});
  try {
    for (const kind of LOCK_KINDS) {
      for (const name of LOCK_NAMES) {
        let last: unknown;
        let ok = false;
        for (let attempt = 0; attempt < 3 && !ok; attempt += 1) {
          try {
            ok = await runSection(kind, name, {
              pool,
              worker: PROBE_WORKER,
              broken: config.mode === 'break',
              workSeconds: 0,
              leaseWait: LEASE_TTL_MS * 5,
              events: { enter: () => {}, fenced: () => {} },
            });
          } catch (error) {
            last = error;
          }
        }
        if (!ok) failures.push(`${kind}:${name}: ${last instanceof Error ? last.message : 'fenced out'}`);
      }
    }
  } finally {
    await pool.end();
  }
  return failures;
}

/** What a run must not leave behind once every worker is gone. */
async function leakCheck(): Promise<string[]> {
  const { rows } = await admin.query<{ advisory: number; leases: number; idle: number }>(
    `SELECT (SELECT count(*)::int FROM pg_locks WHERE locktype = 'advisory') AS advisory,
            (SELECT count(*)::int FROM ormlock_leases WHERE expires_at > clock_timestamp()) AS leases,
            (SELECT count(*)::int FROM pg_stat_activity WHERE state LIKE 'idle in transaction%') AS idle`,
  );
  const row = rows[0]!;
  const leaks: string[] = [];
  if (row.advisory > 0) leaks.push(`${row.advisory} advisory locks still held or awaited`);
  if (row.leases > 0) leaks.push(`${row.leases} leases still live`);
  if (row.idle > 0) leaks.push(`${row.idle} sessions idle in transaction`);
  return leaks;
}

function report(rows: readonly { kind: string; worker: number }[], violations: readonly Violation[], leaks: readonly string[], probeFailures: readonly string[]): number {
  const acquisitions = new Map<string, number>();
  for (const row of rows) if (row.worker !== PROBE_WORKER) bump(acquisitions, row.kind);
  const total = (map: Map<string, number>): number => [...map.values()].reduce((a, b) => a + b, 0);
  const list = (map: Map<string, number>): string =>
    [...map.entries()]
      .sort((a, b) => b[1] - a[1])
      .map(([key, value]) => `${key} ${value}`)
      .join(', ') || 'none';
  const byViolation = new Map<string, number>();
  for (const violation of violations) bump(byViolation, violation.kind);

  console.log('');
  console.log(`chaos: ${config.mode} run finished in ${elapsed()}`);
  console.log(`acquisitions (accepted critical sections): ${list(acquisitions)}; total ${total(acquisitions)}`);
  console.log(`sections entered (lock held, incl. those a fault then ended): ${list(entered)}; total ${total(entered)}`);
  console.log(`faults injected: ${list(faults)}; total ${total(faults)}`);
  console.log(`lease writes refused by the fencing guard: ${list(fencedRefusals)}; of them late writes after SIGSTOP/SIGCONT: ${lateWritesRefused}`);
  console.log(`worker section errors: ${list(workerErrors)}`);
  console.log(`worker respawns: ${respawns}; unexpected worker exits: ${crashes.length}`);
  for (const crash of crashes.slice(0, 5)) console.log(`  ${crash}`);
  console.log(`lease tokens handed out twice: ${tokenReuses.length}`);
  for (const reuse of tokenReuses.slice(0, 5)) console.log(`  ${reuse}`);
  console.log(`violations: ${violations.length}${violations.length ? ` (${list(byViolation)})` : ''}`);
  for (const violation of violations.slice(0, 15)) console.log(`  ${violation.kind} on ${violation.lock}: ${violation.detail}`);

  const checks: [string, boolean][] = [];
  if (config.mode === 'break') {
    checks.push(['the checker reports violations when no lock is taken', violations.length > 0]);
  } else {
    for (const kind of ['overlap', 'token', 'lost-or-doubled', 'not-reacquired'] as const) {
      checks.push([`no ${kind} violation`, !byViolation.has(kind)]);
    }
    checks.push(['no lease token handed out twice', tokenReuses.length === 0]);
    checks.push([`final probe took every lock${probeFailures.length ? ` (failed: ${probeFailures.join('; ')})` : ''}`, probeFailures.length === 0]);
    checks.push([`nothing left behind${leaks.length ? ` (${leaks.join('; ')})` : ''}`, leaks.length === 0]);
    checks.push([`at least ${config.minAcquisitions} acquisitions`, total(acquisitions) >= config.minAcquisitions]);
    checks.push([`at least ${config.minFaults} faults`, total(faults) >= config.minFaults]);
    for (const fault of [...AIMED_FAULTS, 'restart-fast']) checks.push([`at least one ${fault} fault`, (faults.get(fault) ?? 0) > 0]);
    checks.push(['every acquisition kind happened', LOCK_KINDS.every((kind) => (acquisitions.get(kind) ?? 0) > 0)]);
    checks.push([`no unexpected worker exit`, crashes.length === 0]);
    // A pool whose every slot was checked out and never given back (a leaked client) makes each
    // later section wait out its connection timeout: the lock code must give clients back on every path.
    checks.push([`no worker's pool ran out of connections`, !workerErrors.has('POOL_EXHAUSTED')]);
  }
  const failed = checks.filter(([, ok]) => !ok);
  for (const [name, ok] of checks) console.log(`${ok ? 'ok  ' : 'FAIL'} ${name}`);
  console.log(`${checks.length - failed.length} passed, ${failed.length} failed`);
  return failed.length === 0 ? 0 : 1;
}
