#!/usr/bin/env node
// `npm run test:chaos [-- --quick | --break | --seconds=N | --workers=N]`: the fault-injection run
// (test/chaos/chaos-driver.ts) on an embedded PostgreSQL of its own. Exits with the driver's code.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const driver = fileURLToPath(new URL('../test/chaos/chaos-driver.ts', import.meta.url));
const child = spawn(process.execPath, ['--import', 'tsx', driver, ...process.argv.slice(2)], { stdio: 'inherit' });
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => child.kill(signal));
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
