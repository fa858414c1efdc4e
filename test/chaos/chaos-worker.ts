/**
 * One chaos worker process: `chaos-worker.ts <url> <worker number> [--break]`. Loops until
 * SIGTERM: picks a kind and a name at random and runs one critical section under that lock
 * (`critical-sections.ts`); even workers take advisory locks through Drizzle, odd ones through `pg`. Tells the driver what it does on stdout, one line each:
 *
 * - `ready` once connected;
 * - `enter <kind> <name> <backend pid>` when it holds a lock (the driver aims its faults at these);
 * - `exit` when the section is over, whatever the outcome;
 * - `leased <name> <token>` when it acquired a lease;
 * - `fenced <name> <token> <claim|write>` when the fencing guard refused a lease holder's write;
 * - `error <code>` for a section that failed (terminated, cancelled, server restarting, timeout …).
 */
import { drizzle } from 'drizzle-orm/node-postgres';
import pg from 'pg';
import { sqlStateOf } from '../../src/index.js';
import { LOCK_KINDS, LOCK_NAMES, runSection } from './critical-sections.js';

const [url, workerArg, ...flags] = process.argv.slice(2);
if (!url || !workerArg) throw new Error('usage: chaos-worker.ts <url> <worker> [--break]');
const worker = Number(workerArg);
const broken = flags.includes('--break');

const say = (line: string): void => void process.stdout.write(`${line}\n`);
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const pick = <T>(items: readonly T[]): T => items[Math.floor(Math.random() * items.length)]!;

// A terminated backend or a restarting server surfaces as an 'error' event on idle clients;
// the section that was using the connection gets the error itself.
const pool = new pg.Pool({ connectionString: url, max: 4, application_name: `chaos-worker-${worker}`, connectionTimeoutMillis: 5_000 });
pool.on('error', () => {});
// Even workers take their advisory locks through Drizzle (`ormlock/drizzle`), odd ones through
// `ormlock/pg`. Drizzle's own db.transaction() holds a pooled client without an 'error' listener,
// so these workers give every client one, as a Drizzle app must for a terminated backend not to
// end the process; the `pg` workers do not, so that ormlock's own connections are tested bare.
const orm = worker % 2 === 0 ? drizzle({ client: pool }) : undefined;
if (orm) pool.on('connect', (client) => void client.on('error', () => {}));

let stopping = false;
process.on('SIGTERM', () => {
  stopping = true;
});
// An uncaught error (such as an 'error' event of a connection ormlock holds while the server
// ends it) is a bug the run must report: say so, and die as the process would have.
process.on('uncaughtException', (error) => {
  report(`uncaught:${codeOf(error)}`, error);
  process.exit(70);
});

// Each error code once with its message on stderr (the driver shows it if the worker dies).
const described = new Set<string>();
function report(code: string, error: unknown): void {
  say(`error ${code}`);
  if (!described.has(code)) {
    described.add(code);
    process.stderr.write(`worker ${worker}: ${code}: ${(error as Error).stack ?? String(error)}\n`);
  }
}

// Failures that carry no code, told apart by node-postgres's messages (its own and Drizzle's
// wrapping of them, as the error's cause).
const MESSAGE_CODES: readonly (readonly [RegExp, string])[] = [
  // Every pool slot checked out and none given back: a leaked client (the run fails on it).
  [/timeout exceeded when trying to connect/, 'POOL_EXHAUSTED'],
  [/Connection terminated/, 'CONNECTION_TERMINATED'],
];

function codeOf(error: unknown): string {
  const ormlock = (error as { code?: unknown }).code;
  const state = sqlStateOf(error);
  if (typeof ormlock === 'string' && !/^[0-9A-Z]{5}$/.test(ormlock)) return state ? `${ormlock}:${state}` : ormlock;
  if (state !== undefined) return state;
  if (typeof ormlock === 'string') return ormlock;
  const messages = `${(error as Error).message} ${((error as { cause?: Error }).cause ?? {}).message ?? ''}`;
  const known = MESSAGE_CODES.find(([pattern]) => pattern.test(messages));
  return known?.[1] ?? (error as Error).name ?? 'unknown';
}

// The event loop ran dry while a section was still awaiting something: nothing (no socket, no
// timer) would ever settle it. Node would exit with code 13; say what was pending first.
let current = '';
process.on('beforeExit', () => {
  if (stopping) return;
  const resources = process.getActiveResourcesInfo().join(',') || 'none';
  const counts = `pool total ${pool.totalCount} idle ${pool.idleCount} waiting ${pool.waitingCount}`;
  report('stalled', new Error(`section ${current} never settled; active resources: ${resources}; ${counts}`));
  process.exit(71);
});

say('ready');
while (!stopping) {
  const kind = pick(LOCK_KINDS);
  const name = pick(LOCK_NAMES);
  current = `${kind} ${name}`;
  try {
    await runSection(kind, name, {
      pool,
      worker,
      broken,
      drizzle: orm,
      // 1 to 6 ms of work: long enough for overlaps to show without the lock, and for a fault
      // aimed at a holder to land inside the section.
      workSeconds: (1 + Math.random() * 5) / 1_000,
      events: {
        enter: (k, n, pid) => say(`enter ${k} ${n} ${pid}`),
        fenced: (n, token, stage) => say(`fenced ${n} ${token} ${stage}`),
        leased: (n, token) => say(`leased ${n} ${token}`),
      },
    });
  } catch (error) {
    report(codeOf(error), error);
    // A restarting server refuses connections for a moment: do not spin on it.
    await sleep(20 + Math.random() * 80);
  }
  say('exit');
}
await pool.end().catch(() => {});
process.exit(0);
