import { runMigrate } from './migrate-command.js';
import { CliError, type CliIo, EXIT_FAILED, EXIT_OK, EXIT_USAGE } from './io.js';
import { runSignal } from './signal-command.js';
import { runStatus } from './status-command.js';

export type { CliIo } from './io.js';

export const MAIN_HELP = `Usage: ormlock <command> [options]

Commands:
  status [--json] [--blocking-only]   who holds and who waits for which lock (and leases)
  cancel <pid>                        cancel a backend's running statement
  terminate <pid>                     end a backend's session, releasing its locks
  migrate <prisma | drizzle | sql>    create the lease table through your migration tool

Every command takes --url <url> (default: DATABASE_URL) and --help.
`;

/**
 * Runs the `ormlock` CLI with `args` (without `node` and the script) and resolves its exit code.
 * Never throws for a user's mistake: it prints `ormlock: <message>` and returns non-zero.
 */
export async function runCli(args: readonly string[], io: CliIo): Promise<number> {
  const [command, ...rest] = args;
  try {
    switch (command) {
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        io.stdout(MAIN_HELP);
        return command === undefined ? EXIT_USAGE : EXIT_OK;
      case 'status':
        return await runStatus(rest, io);
      case 'cancel':
      case 'terminate':
        return await runSignal(command, rest, io);
      case 'migrate':
        return await runMigrate(rest, io);
      default:
        throw new CliError(`unknown command ${JSON.stringify(command)}\n\n${MAIN_HELP}`, EXIT_USAGE);
    }
  } catch (error) {
    if (error instanceof CliError) {
      io.stderr(`ormlock: ${error.message}\n`);
      return error.exitCode;
    }
    // parseArgs reports unknown options and missing values with these codes.
    const code = (error as { code?: unknown }).code;
    if (typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS')) {
      io.stderr(`ormlock: ${(error as Error).message} (see ormlock ${command} --help)\n`);
      return EXIT_USAGE;
    }
    io.stderr(`ormlock: ${error instanceof Error ? error.message : String(error)}\n`);
    return EXIT_FAILED;
  }
}
