/**
 * The demo's child processes: each runs one role script of `demo/roles/` through tsx and reports
 * {@link DemoEvent}s, one JSON line each, on stdout.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { DemoEvent } from './protocol.js';

const root = fileURLToPath(new URL('../', import.meta.url));

/** A running role process. */
export interface Child {
  readonly name: string;
  readonly role: string;
  readonly process: ChildProcess;
  /** Resolves with the exit code (or the signal's name) once the process has ended. */
  readonly exited: Promise<number | string>;
  /** Whether it has ended. */
  readonly done: () => boolean;
  /** Its stderr and any stdout that was not an event, for failure reports. */
  readonly output: () => string;
  /** Sends a signal if it still runs. */
  signal(signal: NodeJS.Signals): void;
  /** Tells it the database is ready, at `url`: it starts its work. */
  go(url: string): void;
}

/**
 * Starts `demo/roles/<role>.ts <name>`, calling `onEvent` for each event. It loads, then waits for
 * {@link Child.go} to send the database URL on its stdin.
 */
export function startChild(role: string, name: string, onEvent: (child: Child, event: DemoEvent) => void): Child {
  const env = { ...process.env };
  delete env['DATABASE_URL']; // the URL comes on stdin: the demo's own database, not the server's
  const proc = spawn(process.execPath, ['--import', 'tsx', `demo/roles/${role}.ts`, name], {
    cwd: root,
    env,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  proc.stdin?.on('error', () => {}); // a child that died before go() must not crash the demo
  let output = '';
  let ended = false;
  proc.stderr?.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  const exited = new Promise<number | string>((resolve) => {
    proc.once('close', (code, signal) => {
      ended = true;
      resolve(code ?? signal ?? 'unknown');
    });
    proc.once('error', (error) => {
      output += String(error);
      ended = true;
      resolve('spawn failed');
    });
  });
  const child: Child = {
    name,
    role,
    process: proc,
    exited,
    done: () => ended,
    output: () => output,
    signal(signal) {
      if (!ended) proc.kill(signal);
    },
    go(url) {
      proc.stdin?.end(`${url}\n`);
    },
  };
  createInterface({ input: proc.stdout! }).on('line', (line) => {
    let event: DemoEvent;
    try {
      event = JSON.parse(line) as DemoEvent;
    } catch {
      output += `${line}\n`;
      return;
    }
    onEvent(child, event);
  });
  return child;
}
