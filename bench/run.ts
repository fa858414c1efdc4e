/**
 * `npm run bench [-- --quick] [-- --only=advisory,peers]`: finds PostgreSQL as the tests do
 * (DATABASE_URL, else an embedded server), gives each bench suite a database of its own with the
 * migrations applied, runs every suite in this one process, prints Markdown tables and writes
 * bench/results/latest.json and an SVG chart. Full mode also rewrites bench/RESULTS.md and
 * bench/chart.svg (committed); quick mode (CI) writes its chart under bench/results/ only.
 *
 * A suite that throws is reported and makes the run exit non-zero, after the other suites ran;
 * nothing here asserts a figure. A suite whose file is missing is skipped with a note.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { arch, cpus, loadavg, platform, release, totalmem } from 'node:os';
import pg from 'pg';
import { applyMigrations } from '../test/helpers/migrations.js';
import { startTestServer } from '../test/helpers/postgres-server.js';
import { renderChart } from './chart.js';
import { ormlockSource } from './ormlock.js';
import type { BenchContext, BenchRow } from './types.js';

type BenchFn = (ctx: BenchContext) => Promise<BenchRow[]>;

/**
 * The suites, in run order. Each file exports one `bench…(ctx)` function. The specifiers are
 * plain strings passed to a dynamic `import()`, so a suite that is not written yet (or was
 * removed) is skipped with a note instead of breaking the typecheck or the run.
 */
const SUITES: Array<{ name: string; file: string }> = [
  { name: 'advisory', file: './advisory.js' },
  { name: 'row-table', file: './row-table.js' },
  { name: 'claim', file: './claim.js' },
  { name: 'optimistic', file: './optimistic.js' },
  { name: 'lease', file: './lease.js' },
  { name: 'peers', file: './peers.js' },
];

const quick = process.argv.includes('--quick');
// Dropping a suite's database WITH (FORCE) terminates connections a failed suite or a peer library
// left open (advisory-lock's clients have no 'error' listener): that must not crash the run.
process.on('uncaughtException', (error) => {
  if ((error as { code?: string }).code === '57P01') return;
  console.error(error);
  process.exit(1);
});
// A suite that hangs (a lock never released) must fail CI, not hold it until its own time limit.
const WATCHDOG_MS = quick ? 5 * 60_000 : 20 * 60_000;
setTimeout(() => {
  console.error(`bench: still running after ${WATCHDOG_MS / 60_000} min; giving up`);
  process.exit(1);
}, WATCHDOG_MS).unref();
const only = process.argv.find((a) => a.startsWith('--only='))?.slice('--only='.length).split(',');
const startedAt = new Date();
const loadBefore = loadavg()[0]!;
const server = await startTestServer();
const admin = new pg.Client({ connectionString: server.adminUrl });
await admin.connect();
const serverVersion = (await admin.query<{ v: string }>(`SELECT current_setting('server_version') AS v`)).rows[0]!.v;

const rows: Array<BenchRow & { suite: string }> = [];
const notes: string[] = [`ormlock measured as the ${ormlockSource} (the lease suite on the sources)`];
const failures: string[] = [];
const timings: string[] = [];
try {
  for (const suite of SUITES) {
    if (only && !only.includes(suite.name)) continue;
    const mod = await loadSuite(suite.file);
    if (typeof mod === 'string') {
      notes.push(`${suite.name}: skipped (${mod}).`);
      continue;
    }
    const dbName = `ormlock_bench_${suite.name.replace(/\W/g, '_')}_${randomBytes(3).toString('hex')}`;
    const started = performance.now();
    try {
      await admin.query(`CREATE DATABASE ${dbName}`);
      const url = new URL(server.adminUrl);
      url.pathname = `/${dbName}`;
      const ctx: BenchContext = { url: url.toString(), quick };
      const migrator = new pg.Client({ connectionString: ctx.url });
      await migrator.connect();
      try {
        await applyMigrations(migrator, 'prisma');
      } finally {
        await migrator.end();
      }
      for (const row of await mod.fn(ctx)) rows.push({ ...row, suite: suite.name });
      for (const note of mod.notes) notes.push(`${suite.name}: ${note}`);
    } catch (error) {
      failures.push(`${suite.name}: ${(error as Error).stack ?? String(error)}`);
      console.error(`bench suite ${suite.name} failed:`, error);
    } finally {
      await admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`).catch(() => {});
      timings.push(`${suite.name} ${((performance.now() - started) / 1000).toFixed(1)} s`);
    }
  }
} finally {
  await admin.end();
  await server.stop();
}
if (failures.length > 0) process.exitCode = 1;

const redis = await redisInfo();
const versions = [
  `Node ${process.version}`,
  `PostgreSQL ${serverVersion} (${server.source})`,
  ...(redis ? [`Redis ${redis}`] : []),
  ...['pg', 'drizzle-orm', '@prisma/client', '@prisma/adapter-pg', 'ioredis', 'redlock', '@sesamecare-oss/redlock', 'advisory-lock'].map(
    (pkg) => `${pkg} ${packageVersion(pkg)}`,
  ),
];
const cpu = cpus();
const machine = `${platform()} ${release()} ${arch()}, ${cpu.length} × ${cpu[0]?.model.trim() ?? 'cpu'}, ${(totalmem() / 2 ** 30).toFixed(1)} GiB; load average ${loadBefore.toFixed(2)} at start, ${loadavg()[0]!.toFixed(2)} at end`;
const date = startedAt.toISOString().replace('T', ' ').slice(0, 16) + ' UTC';

const fmt = (n: number | undefined, digits = 3) => (n === undefined || !Number.isFinite(n) ? '' : n.toFixed(digits));
const pct = (n: number) => (Number.isFinite(n) ? `${(n * 100).toFixed(0)} %` : '');
const latencyRows = rows.filter((r) => !r.handoff);
const handoffRows = rows.filter((r) => r.handoff);
const table = [
  '| case | driver | clients | median ms | p99 ms | ops/s | × floor | note |',
  '|---|---|---:|---:|---:|---:|---:|---|',
  ...latencyRows.map(
    (r) => `| ${r.case} | ${r.driver} | ${r.clients} | ${fmt(r.medianMs)} | ${fmt(r.p99Ms)} | ${fmt(r.opsPerSec, 0)} | ${fmt(r.ratio, 2)} | ${r.note ?? ''} |`,
  ),
];
const handoffTable = [
  '| case | driver | clients | acquisitions/s | gap p50 ms | gap p99 ms | handoff p50 ms | handoff p99 ms | back to releaser | wait p50 ms | wait p99 ms | wait max ms | gave up | never got it | note |',
  '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|',
  ...handoffRows.map((r) => {
    const h = r.handoff!;
    return `| ${r.case} | ${r.driver} | ${r.clients} | ${fmt(r.opsPerSec, 0)} | ${fmt(h.gapP50Ms)} | ${fmt(h.gapP99Ms)} | ${fmt(h.handoffP50Ms)} | ${fmt(h.handoffP99Ms)} | ${pct(h.backToReleaser)} | ${fmt(h.waitP50Ms, 2)} | ${fmt(h.waitP99Ms, 1)} | ${fmt(h.waitMaxMs, 0)} | ${h.failedAcquires} | ${h.idleClients ?? ''} | ${r.note ?? ''} |`;
  }),
];
const targets = targetLines(rows);
const body = [
  `- **Date:** ${date}${quick ? ' (quick mode: few samples, figures are rough)' : ''}`,
  `- **Machine:** ${machine}`,
  `- **Versions:** ${versions.join(', ')}`,
  `- **Suites:** ${timings.join(', ')}`,
  '',
  '## Latency and throughput',
  '',
  'Median and p99 of each operation in milliseconds. Cases of one group run in the same process: with',
  'one client they take turns call by call, with 16 in alternating rounds, so a drift of the machine',
  'hits them alike. With 16 clients, each client has a connection of its own; latencies are per',
  'operation over all clients, ops/s is the aggregate.',
  '`× floor` is the median over the hand-written raw-SQL floor of the same driver in the same group',
  '(for peers, over the `raw pg` floor).',
  '',
  ...table,
  '',
  ...(handoffRows.length > 0
    ? [
        '## Contended handoff',
        '',
        '16 clients loop on one resource, each releasing right after it acquires. The gap runs from the',
        'start of a release to the next acquisition; "handoff" counts only gaps where another client got',
        'the lock. "Back to releaser" is the share of acquisitions that went to the client that had just',
        'released: 1/16 ≈ 6 % is fair. "Wait" is how long a successful acquire call took; a starved waiter',
        'shows in its p99 and maximum. "Gave up" counts acquire calls that ran out of retries; "never got',
        'it" counts clients that did not hold the lock once during the measurement.',
        '',
        ...handoffTable,
        '',
      ]
    : []),
  ...(targets.length > 0 ? ['## Targets (issue 7)', '', ...targets, ''] : []),
  ...(notes.length > 0 ? ['## Notes', '', ...notes.map((n) => `- ${n}`), ''] : []),
  ...(failures.length > 0 ? ['## Failed suites', '', ...failures.map((f) => `- ${f.split('\n')[0]}`), ''] : []),
];
console.log(body.join('\n'));

const results = new URL('./results/', import.meta.url);
mkdirSync(results, { recursive: true });
const chart = renderChart(rows, `${date} · ${versions.slice(0, 2).join(', ')} · ${cpu.length} × ${cpu[0]?.model.trim() ?? 'cpu'}${quick ? ' · quick mode' : ''}`);
writeFileSync(new URL('./chart.svg', results), chart);
if (!quick && !only) {
  const header = [
    '# Benchmark results',
    '',
    'Written by `npm run bench` (see [docs/performance.md](../docs/performance.md) for how to read and',
    'reproduce them). The chart is [chart.svg](chart.svg).',
    '',
  ];
  writeFileSync(new URL('./RESULTS.md', import.meta.url), [...header, ...body].join('\n'));
  writeFileSync(new URL('./chart.svg', import.meta.url), chart);
}
writeFileSync(
  new URL('./latest.json', results),
  JSON.stringify({ date: startedAt.toISOString(), quick, machine, versions, postgres: server.majorVersion, timings, notes, failures, rows }, null, 2),
);
// The closing line CI reads (.ci/run): suites that ran to the end, suites that threw.
console.log(`${timings.length - failures.length} passed, ${failures.length} failed`);
// ioredis and pools are closed by the suites; a forgotten timer must not keep CI waiting.
setTimeout(() => process.exit(), 2000).unref();

async function loadSuite(file: string): Promise<{ fn: BenchFn; notes: string[] } | string> {
  let mod: Record<string, unknown>;
  try {
    mod = (await import(file)) as Record<string, unknown>;
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code === 'ERR_MODULE_NOT_FOUND' && String((error as Error).message).includes(file.slice(2, -3))) return `${file.replace(/\.js$/, '.ts')} not found`;
    throw error;
  }
  const entry = Object.entries(mod).find(([key, value]) => /^bench[A-Z]/.test(key) && typeof value === 'function');
  if (!entry) return `${file} exports no bench…() function`;
  const notesExport = Object.entries(mod).find(([key, value]) => /Notes$/.test(key) && Array.isArray(value))?.[1] as string[] | undefined;
  return { fn: entry[1] as BenchFn, notes: notesExport ?? [] };
}

function packageVersion(pkg: string): string {
  try {
    const json = JSON.parse(readFileSync(new URL(`../node_modules/${pkg}/package.json`, import.meta.url), 'utf8')) as { version?: string };
    return json.version ?? '?';
  } catch {
    return 'not installed';
  }
}

async function redisInfo(): Promise<string | undefined> {
  try {
    const { Redis } = await import('ioredis');
    const client = new Redis(process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379', {
      lazyConnect: true,
      connectTimeout: 1000,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
    });
    client.on('error', () => {});
    try {
      await client.connect();
      return /redis_version:(\S+)/.exec(await client.info('server'))?.[1];
    } finally {
      client.disconnect();
    }
  } catch {
    return undefined;
  }
}

/** Each issue-7 target beside the figure reached; informative only, nothing fails on it. */
function targetLines(all: BenchRow[]): string[] {
  const out: string[] = [];
  for (const r of all) {
    if ((r.kind ?? (r.driver.startsWith('ormlock') ? 'ormlock' : undefined)) !== 'ormlock') continue;
    if (/claim/i.test(r.case)) {
      // Issue 3: claim throughput against the raw single-statement claim on pg, of the same run
      // and client count: ≥ 0.9× for pg and Drizzle, ≥ 0.7× for Prisma (whose own driver is slower).
      const floor = all.find((f) => f.case === r.case && f.clients === r.clients && f.driver === 'raw pg');
      if (floor?.opsPerSec === undefined || r.opsPerSec === undefined) continue;
      const share = r.share ?? r.opsPerSec / floor.opsPerSec;
      const target = r.driver.includes('prisma') ? 0.7 : 0.9;
      out.push(
        `- ${r.case}, ${r.driver}, ${r.clients} client${r.clients === 1 ? '' : 's'}: ≥ ${target}× raw pg throughput → ${share.toFixed(2)}× ${share >= target ? '(met)' : '(not met)'}`,
      );
      continue;
    }
    if (r.ratio !== undefined && /advisory|row lock|for update|skip locked/i.test(r.case)) {
      out.push(`- ${r.case}, ${r.driver}, ${r.clients} client${r.clients === 1 ? '' : 's'}: ≤ 1.15× floor → ${r.ratio.toFixed(2)}× ${r.ratio <= 1.15 ? '(met)' : '(not met)'}`);
    }
    if (r.handoff && /lease/i.test(`${r.case} ${r.driver}`)) {
      const p50 = r.handoff.handoffP50Ms ?? r.handoff.gapP50Ms;
      out.push(`- lease handoff, ${r.driver}: p50 ≤ 2 ms → ${p50.toFixed(2)} ms ${p50 <= 2 ? '(met)' : '(not met)'}`);
    }
  }
  return out;
}
