/**
 * What a demo child process tells the main process: one JSON object per stdout line. The main
 * process draws the display from these events and never trusts them for its checks: those read
 * the database.
 */
import { createInterface } from 'node:readline';

/** One event of a child process; `who` is filled in by the main process from the child's name. */
export type DemoEvent =
  | { readonly type: 'ready' }
  | { readonly type: 'job'; readonly id: string; readonly phase: 'claimed' | 'done' }
  | { readonly type: 'transfer'; readonly from: number; readonly to: number; readonly amount: string; readonly ok: boolean; readonly waitedMs: number }
  | { readonly type: 'elected'; readonly token: string }
  | { readonly type: 'tick'; readonly token: string; readonly accepted: boolean }
  | { readonly type: 'demoted'; readonly reason: string }
  | { readonly type: 'increment'; readonly value: number; readonly retries: number }
  | { readonly type: 'holding'; readonly pid: number }
  | { readonly type: 'terminated'; readonly message: string }
  | { readonly type: 'migration'; readonly phase: 'waiting' | 'timed-out' | 'signalled' | 'applied'; readonly detail: string }
  | { readonly type: 'finished' };

/** Writes `event` as one line on stdout, for the main process. */
export function emit(event: DemoEvent): void {
  process.stdout.write(`${JSON.stringify(event)}\n`);
}

/**
 * The URL of the demo database. The main process starts its children while PostgreSQL is still
 * starting (loading a child takes a while), and sends the URL on their stdin once the database is
 * ready. `DATABASE_URL` in the environment, if set, is used instead (to run a role by hand).
 */
export async function databaseUrl(): Promise<string> {
  const fromEnv = process.env['DATABASE_URL'];
  if (fromEnv) return fromEnv;
  const lines = createInterface({ input: process.stdin });
  try {
    for await (const line of lines) if (line.trim() !== '') return line.trim();
  } finally {
    lines.close();
  }
  throw new Error('stdin closed before the main process sent the database URL');
}

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A random integer in `[min, max]`. */
export function randomInt(min: number, max: number): number {
  return min + Math.floor(Math.random() * (max - min + 1));
}
