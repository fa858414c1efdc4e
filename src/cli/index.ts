#!/usr/bin/env node
/**
 * The `ormlock` command: `ormlock status`, `ormlock cancel <pid>`, `ormlock terminate <pid>`,
 * `ormlock migrate …`. See `ormlock --help`.
 */
import { runCli } from './run-cli.js';

void runCli(process.argv.slice(2), {
  stdout: (text) => void process.stdout.write(text),
  stderr: (text) => void process.stderr.write(text),
  cwd: process.cwd(),
  env: process.env,
  isTTY: process.stdout.isTTY === true,
}).then((code) => {
  process.exitCode = code;
});
