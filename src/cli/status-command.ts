import { parseArgs } from 'node:util';
import { inspectLocks, inspectionToJson } from '../core/inspect.js';
import { connect, databaseUrl, queryFailure } from './connection.js';
import { type CliIo, EXIT_OK, useColor } from './io.js';
import { palette, renderStatus } from './render.js';

export const STATUS_HELP = `Usage: ormlock status [--json] [--blocking-only] [--url <url>]

Shows who holds and who waits for which lock in the database: a blocking tree (each root holds
what others wait for), a table of locks, and the leases when the lease table exists.

Options:
  --json            print the inspection as JSON (what inspect() returns; bigints as strings)
  --blocking-only   only locks in a blocking relationship (waits, and what they wait for)
  --url <url>       database URL (default: DATABASE_URL)
  -h, --help        show this help
`;

/** `ormlock status`. */
export async function runStatus(args: string[], io: CliIo): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      json: { type: 'boolean', default: false },
      'blocking-only': { type: 'boolean', default: false },
      url: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) {
    io.stdout(STATUS_HELP);
    return EXIT_OK;
  }
  const connection = await connect(databaseUrl(values.url, io));
  try {
    const inspection = await inspectLocks(connection.executor, { blockedOnly: values['blocking-only'] }).catch((error: unknown) => {
      throw queryFailure(error, 'read pg_locks');
    });
    if (values.json) {
      io.stdout(`${JSON.stringify(inspectionToJson(inspection), null, 2)}\n`);
    } else {
      io.stdout(renderStatus(inspection, connection.database, palette(useColor(io))));
    }
    return EXIT_OK;
  } finally {
    await connection.close();
  }
}
