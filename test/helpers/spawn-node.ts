/**
 * Runs a Node script in a child process, for claims that must hold across processes (two
 * workers, a lease holder that dies). `.ts` scripts run through tsx.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';

/** A running child process; see {@link spawnNode}. */
export interface NodeProcess {
  readonly child: ChildProcess;
  /** Every stdout line so far, in order. */
  readonly lines: readonly string[];
  /** All of stderr so far (for failure messages). */
  readonly stderr: () => string;
  /** Resolves with the first stdout line (seen or future) that matches; rejects if the process exits first. */
  waitForLine(match: string | RegExp): Promise<string>;
  /** Resolves when the process has exited (never rejects). */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Sends `signal` (default SIGTERM) if still running and waits for the exit. */
  stop(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  [Symbol.asyncDispose](): Promise<void>;
}

/**
 * Starts `node <scriptPath> ...args` (with `--import tsx` for `.ts`) with `env` added to this
 * process's environment. Stop it with `stop()` or `await using`; a test that leaves it running
 * is likely to fail the leak check.
 *
 * @example
 * await using worker = spawnNode(fileURLToPath(new URL('./fixtures/claim.ts', import.meta.url)), [db.url]);
 * await worker.waitForLine('claimed');
 */
export function spawnNode(scriptPath: string, args: readonly string[] = [], env: Record<string, string> = {}): NodeProcess {
  const loader = scriptPath.endsWith('.ts') || scriptPath.endsWith('.mts') ? ['--import', 'tsx'] : [];
  const child = spawn(process.execPath, [...loader, scriptPath, ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  const waiters = new Set<{ test: (line: string) => boolean; resolve: (line: string) => void; reject: (error: Error) => void }>();
  let stderr = '';
  let done = false;
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  createInterface({ input: child.stdout! }).on('line', (line) => {
    lines.push(line);
    for (const waiter of waiters) {
      if (waiter.test(line)) {
        waiters.delete(waiter);
        waiter.resolve(line);
      }
    }
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    const finish = (code: number | null, signal: NodeJS.Signals | null): void => {
      if (done) return;
      done = true;
      for (const waiter of waiters) waiter.reject(new Error(`${scriptPath} exited (${code ?? signal}) first; stderr:\n${stderr}`));
      waiters.clear();
      resolve({ code, signal });
    };
    child.once('close', finish);
    child.once('error', (error) => {
      stderr += String(error);
      finish(null, null);
    });
  });

  const handle: NodeProcess = {
    child,
    lines,
    stderr: () => stderr,
    exited,
    waitForLine(match) {
      const test = (line: string): boolean => (typeof match === 'string' ? line.includes(match) : match.test(line));
      const seen = lines.find(test);
      if (seen !== undefined) return Promise.resolve(seen);
      if (done) return Promise.reject(new Error(`${scriptPath} exited before printing ${String(match)}; stderr:\n${stderr}`));
      return new Promise((resolve, reject) => void waiters.add({ test, resolve, reject }));
    },
    async stop(signal = 'SIGTERM') {
      if (!done) child.kill(signal);
      return exited;
    },
    async [Symbol.asyncDispose]() {
      await handle.stop();
    },
  };
  return handle;
}
