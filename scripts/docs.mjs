#!/usr/bin/env node
// `npm run docs`: writes the API reference (Markdown, from the TSDoc comments of the public entry
// points; settings in typedoc.json) to docs/api.
// `npm run docs:check` (`--check`): fails on any TypeDoc warning — a broken {@link}, a public
// symbol without documentation, a public type that refers to an unexported one — and when
// docs/api differs from what the source generates now (run `npm run docs` and commit the result).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import process from 'node:process';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const committed = join(root, 'docs', 'api');
const check = process.argv.includes('--check');
const out = check ? mkdtempSync(join(tmpdir(), 'ormlock-api-')) : committed;

const typedoc = join(root, 'node_modules', 'typedoc', 'bin', 'typedoc');
const run = spawnSync(process.execPath, [typedoc, '--out', out, ...(check ? ['--treatWarningsAsErrors'] : [])], { cwd: root, stdio: 'inherit' });
if (run.status !== 0) {
  if (check) rmSync(out, { recursive: true, force: true });
  process.stdout.write(`typedoc failed (exit ${run.status ?? run.signal})${check ? ': fix the warnings above' : ''}\n`);
  process.exit(run.status || 1);
}
if (!check) process.exit(0);

/** Every file under `dir`, as paths relative to it, sorted. */
function files(dir) {
  let entries;
  try {
    entries = readdirSync(dir, { recursive: true, withFileTypes: true });
  } catch {
    return [];
  }
  return entries
    .filter((entry) => entry.isFile())
    .map((entry) => relative(dir, join(entry.parentPath ?? entry.path, entry.name)))
    .sort();
}

const fresh = files(out);
const old = files(committed);
const stale = [...new Set([...fresh, ...old])].filter((file) => {
  if (!fresh.includes(file) || !old.includes(file)) return true;
  return !readFileSync(join(out, file)).equals(readFileSync(join(committed, file)));
});
rmSync(out, { recursive: true, force: true });
if (stale.length > 0) {
  process.stdout.write(`docs/api is out of date (${stale.length} file(s), e.g. ${stale.slice(0, 5).join(', ')}): run \`npm run docs\` and commit docs/api\n`);
  process.exit(1);
}
process.stdout.write(`docs/api is up to date (${fresh.length} files), no TypeDoc warnings\n`);
