/** Where a CLI command writes, and what it knows of its environment (tests pass their own). */
export interface CliIo {
  stdout(text: string): void;
  stderr(text: string): void;
  /** The directory the command runs in. */
  readonly cwd: string;
  /** Environment variables (`DATABASE_URL`, `NO_COLOR`, `FORCE_COLOR`). */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Whether stdout is a terminal: colours and a layout for people, else plain text. */
  readonly isTTY?: boolean;
}

/** A command failed in a way the user can fix: printed as `ormlock: <message>`, exit `exitCode`. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

/** Exit codes: 0 done, 1 failed (database, privilege, no such backend), 2 bad usage. */
export const EXIT_OK = 0;
export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;

/** Whether to colour output: a TTY, unless `NO_COLOR`; `FORCE_COLOR` forces it. */
export function useColor(io: CliIo): boolean {
  const env = io.env ?? {};
  if (env['FORCE_COLOR'] !== undefined && env['FORCE_COLOR'] !== '0') return true;
  if (env['NO_COLOR'] !== undefined && env['NO_COLOR'] !== '') return false;
  return io.isTTY === true;
}
