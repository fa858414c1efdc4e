#!/usr/bin/env node
// Builds the package, packs it as npm would publish it, and checks the tarball's exports with
// publint and @arethetypeswrong/cli (ESM + CJS + types for every subpath).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const run = (command, args, options = {}) => execFileSync(command, args, { stdio: 'inherit', ...options });
const dir = mkdtempSync(join(tmpdir(), 'ormlock-pack-'));
try {
  run('npx', ['tsup', '--silent']);
  const tarball = execFileSync('npm', ['pack', '--silent', '--pack-destination', dir], { encoding: 'utf8' }).trim().split('\n').pop();
  const file = join(dir, tarball);
  run('npx', ['publint', '--strict', file]);
  // node10 resolution cannot see subpath exports; every modern resolver can.
  run('npx', ['attw', file, '--profile', 'node16']);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
