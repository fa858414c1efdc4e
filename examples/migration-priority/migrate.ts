/**
 * A migration script that gets its table locks even on a busy database. `ALTER TABLE` needs
 * ACCESS EXCLUSIVE: while it waits for a long report or a session left idle in a transaction,
 * every new query on the table queues behind it. So each step
 *
 * - waits at most `LOCK_TIMEOUT` for its locks (`lock_timeout` on the server), so the table is
 *   never held up for long,
 * - runs under `prioritize`: while it waits, sessions in its way whose transaction has been open
 *   for over `MIN_TRANSACTION_AGE` are terminated (short transactions are left to finish),
 * - is retried with backoff when the wait still timed out (`withRetry`, `lockTimeouts: true`),
 * - is recorded in `example_migrations` in the same transaction, so a rerun skips it.
 *
 * Run: DATABASE_URL=postgres://… npx tsx examples/migration-priority/migrate.ts
 *      LOCK_TIMEOUT (default '3s'), MIN_TRANSACTION_AGE (default '5s').
 */
import pg from 'pg';
import { parseDuration, withRetry } from 'ormlock';
import { $lock } from 'ormlock/pg';

interface Step {
  readonly name: string;
  /** The tables the step changes: locked first, all at once, in a fixed order. */
  readonly tables: readonly string[];
  readonly sql: string;
}

const steps: readonly Step[] = [
  { name: '001_accounts_note', tables: ['accounts'], sql: 'ALTER TABLE accounts ADD COLUMN note text' },
  { name: '002_jobs_priority', tables: ['jobs'], sql: 'ALTER TABLE jobs ADD COLUMN priority int NOT NULL DEFAULT 0' },
];

const lockTimeout = parseDuration(process.env['LOCK_TIMEOUT'] ?? '3s', 'LOCK_TIMEOUT');
const minTransactionAge = parseDuration(process.env['MIN_TRANSACTION_AGE'] ?? '5s', 'MIN_TRANSACTION_AGE');
// One connection for the step's transaction, one for prioritize to look for blockers from.
const pool = new pg.Pool({ connectionString: process.env['DATABASE_URL'], max: 2, application_name: 'migrate' });

try {
  await pool.query('CREATE TABLE IF NOT EXISTS example_migrations (name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())');
  for (const step of steps) {
    const { rowCount } = await pool.query('SELECT 1 FROM example_migrations WHERE name = $1', [step.name]);
    if (rowCount) {
      console.log(`${step.name}: already applied`);
      continue;
    }
    await withRetry(
      () =>
        $lock(pool).prioritize(
          async (client) => {
            await $lock(client).model(step.tables, { timeout: lockTimeout });
            await client.query(step.sql);
            await client.query('INSERT INTO example_migrations (name) VALUES ($1)', [step.name]);
          },
          {
            action: 'terminate', // a session idle in a transaction ignores 'cancel'
            after: '500ms',
            every: '500ms',
            filter: { minTransactionAge },
            onSignal: (blockers, action) => {
              for (const b of blockers) console.log(`${step.name}: ${action}d pid ${b.pid} (${b.applicationName || 'no name'}, ${b.state}, ${b.query})`);
            },
          },
        ),
      {
        retries: 5,
        lockTimeouts: true,
        backoff: { initial: '1s', max: '10s' },
        onRetry: (error, attempt) => console.log(`${step.name}: attempt ${attempt} failed (${(error as Error).message}), retrying`),
      },
    );
    console.log(`${step.name}: applied`);
  }
} finally {
  await pool.end();
}
