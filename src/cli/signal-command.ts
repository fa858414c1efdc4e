import { parseArgs } from 'node:util';
import { connect, databaseUrl, queryFailure } from './connection.js';
import { CliError, type CliIo, EXIT_OK, EXIT_USAGE } from './io.js';

export const signalHelp = (action: 'cancel' | 'terminate'): string =>
  action === 'cancel'
    ? `Usage: ormlock cancel <pid> [--any-database] [--url <url>]

Cancels the statement backend <pid> is running (pg_cancel_backend). The session stays connected;
an explicit transaction it is in becomes aborted and keeps its locks until its client rolls back.
A session that is idle in a transaction is not affected: use terminate.

Options:
  --any-database   allow a backend connected to another database than --url's
  --url <url>      database URL (default: DATABASE_URL)
  -h, --help       show this help
`
    : `Usage: ormlock terminate <pid> [--any-database] [--url <url>]

Terminates backend <pid> (pg_terminate_backend): its session is closed, its transaction rolled
back, and every lock it held released. Its client sees a broken connection.

Options:
  --any-database   allow a backend connected to another database than --url's
  --url <url>      database URL (default: DATABASE_URL)
  -h, --help       show this help
`;

interface TargetRow extends Record<string, unknown> {
  pid: number;
  database: string | null;
  same: boolean;
}

/** `ormlock cancel <pid>` and `ormlock terminate <pid>`. */
export async function runSignal(action: 'cancel' | 'terminate', args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: {
      'any-database': { type: 'boolean', default: false },
      url: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
    allowPositionals: true,
  });
  if (values.help) {
    io.stdout(signalHelp(action));
    return EXIT_OK;
  }
  if (positionals.length !== 1 || !/^[1-9]\d{0,9}$/.test(positionals[0] ?? '') || Number(positionals[0]) > 2_147_483_647) {
    throw new CliError(`${action}: expected one backend pid, e.g. ormlock ${action} 12345 (see ormlock ${action} --help)`, EXIT_USAGE);
  }
  const pid = Number(positionals[0]);
  const connection = await connect(databaseUrl(values.url, io));
  try {
    const [target] = await connection.executor
      .query<TargetRow>(`SELECT pid, datname::text AS database, datname = current_database() AS same FROM pg_stat_activity WHERE pid = $1::int`, [pid])
      .catch((error: unknown) => {
        throw queryFailure(error, 'read pg_stat_activity');
      });
    if (target === undefined) throw new CliError(`no backend with pid ${pid}`);
    if (target.same !== true && !values['any-database']) {
      throw new CliError(`backend ${pid} is connected to ${target.database === null ? 'no database' : `database ${target.database}`}, not ${connection.database}; pass --any-database to ${action} it anyway`);
    }
    const fn = action === 'cancel' ? 'pg_cancel_backend' : 'pg_terminate_backend';
    const [result] = await connection.executor.query<{ ok: boolean }>(`SELECT ${fn}($1::int) AS ok`, [pid]).catch((error: unknown) => {
      throw queryFailure(error, `${action} backend ${pid}`);
    });
    if (result?.ok !== true) throw new CliError(`backend ${pid} could not be signalled (it may have just ended)`);
    io.stdout(action === 'cancel' ? `cancelled the statement of backend ${pid}\n` : `terminated backend ${pid}\n`);
    return EXIT_OK;
  } finally {
    await connection.close();
  }
}
