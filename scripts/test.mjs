#!/usr/bin/env node
// `npm test`: runs `vitest run` (extra arguments pass through, e.g. file filters), then prints
// one summary line computed from vitest's JSON report, e.g. `12 passed, 0 failed, 1 skipped`.
// Exits non-zero when vitest failed or when no test ran at all.
// `--server=embedded` ignores DATABASE_URL and uses embedded PostgreSQL 18; `--server=container`
// uses testcontainers (see test/helpers/postgres-server.ts). Both are taken out of vitest's args.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import process from 'node:process';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const reportFile = join(root, '.vitest-report.json');
rmSync(reportFile, { force: true });

const env = { ...process.env };
const args = [];
for (const arg of process.argv.slice(2)) {
  const server = /^--server=(embedded|container)$/.exec(arg)?.[1];
  if (!server) {
    args.push(arg);
    continue;
  }
  delete env.DATABASE_URL;
  if (server === 'container') env.ORMLOCK_TEST_PG = 'container';
  else delete env.ORMLOCK_TEST_PG;
}

const vitest = join(root, 'node_modules', 'vitest', 'vitest.mjs');
const run = spawnSync(
  process.execPath,
  [vitest, 'run', '--reporter=default', '--reporter=json', `--outputFile.json=${reportFile}`, ...args],
  { cwd: root, env, stdio: 'inherit' },
);

let passed = 0;
let failed = 0;
let skipped = 0;
const notes = [];
if (existsSync(reportFile)) {
  const report = JSON.parse(readFileSync(reportFile, 'utf8'));
  passed = report.numPassedTests ?? 0;
  failed = report.numFailedTests ?? 0;
  skipped = (report.numPendingTests ?? 0) + (report.numTodoTests ?? 0);
  // A file can fail without a failing test (import error, failing beforeAll/afterAll): count it.
  for (const file of report.testResults ?? []) {
    const failedTests = (file.assertionResults ?? []).filter((t) => t.status === 'failed');
    // Named again here, next to the summary line, so a log cut to its tail still says what failed.
    for (const test of failedTests) {
      const reason = String(test.failureMessages?.[0] ?? '').split('\n')[0].slice(0, 300);
      notes.push(`FAILED ${relative(root, file.name)} > ${test.fullName}: ${reason}`);
    }
    if (file.status === 'failed' && failedTests.length === 0) {
      failed += 1;
      notes.push(`file failed outside its tests: ${file.name}`);
    }
  }
} else {
  notes.push('vitest wrote no JSON report');
}
if (run.status !== 0 && failed === 0 && passed > 0) {
  // Unhandled errors and errors outside test files fail the run without failing a test.
  failed += 1;
  notes.push(`vitest exited with ${run.status ?? run.signal} without a failing test: see "Unhandled Error" or "Type Errors" above`);
}
if (passed + failed === 0) notes.push('no test ran');

for (const note of notes) process.stdout.write(`${note}\n`);
process.stdout.write(`${passed} passed, ${failed} failed${skipped > 0 ? `, ${skipped} skipped` : ''}\n`);
process.exit(run.status === 0 && failed === 0 && passed > 0 ? 0 : (run.status || 1));
