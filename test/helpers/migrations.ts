/**
 * Reads the committed Prisma and Drizzle migrations and applies them with plain `pg`, the way
 * `prisma migrate deploy` and drizzle's migrator would (neither can run on the test machines).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type pg from 'pg';

/** Which migration set creates the test tables; `'none'` leaves the database empty. */
export type MigrationSet = 'prisma' | 'drizzle' | 'none';

/** One migration: its name and the statements to send, in order. */
export interface Migration {
  readonly name: string;
  readonly statements: readonly string[];
}

const root = fileURLToPath(new URL('../../', import.meta.url));

/**
 * The migrations of `set`, in the order their tool applies them.
 *
 * Prisma: folders of `prisma/migrations` sorted by name; each `migration.sql` is one statement
 * batch, because `prisma migrate deploy` sends the whole script at once (so `$$` bodies and
 * semicolons in strings are safe). Drizzle: `drizzle/migrations/meta/_journal.json` order, each
 * file split on `--> statement-breakpoint` like drizzle's migrator.
 */
export function readMigrations(set: MigrationSet): Migration[] {
  if (set === 'none') return [];
  if (set === 'prisma') {
    const dir = join(root, 'prisma', 'migrations');
    return readdirSync(dir, { withFileTypes: true })
      .filter((entry) => entry.isDirectory())
      .map((entry) => entry.name)
      .sort()
      .map((name) => ({ name, statements: [readFileSync(join(dir, name, 'migration.sql'), 'utf8')] }));
  }
  const dir = join(root, 'drizzle', 'migrations');
  const journal = JSON.parse(readFileSync(join(dir, 'meta', '_journal.json'), 'utf8')) as { entries: { idx: number; tag: string }[] };
  return [...journal.entries]
    .sort((a, b) => a.idx - b.idx)
    .map(({ tag }) => ({
      name: tag,
      statements: readFileSync(join(dir, `${tag}.sql`), 'utf8')
        .split('--> statement-breakpoint')
        .map((statement) => statement.trim())
        .filter((statement) => statement.length > 0),
    }));
}

/** Applies the migrations of `set` on `client`, each migration in its own transaction. */
export async function applyMigrations(client: pg.ClientBase, set: MigrationSet): Promise<void> {
  for (const migration of readMigrations(set)) {
    await client.query('BEGIN');
    try {
      for (const statement of migration.statements) await client.query(statement);
      await client.query('COMMIT');
    } catch (error) {
      await client.query('ROLLBACK').catch(() => {});
      throw new Error(`${set} migration ${migration.name} failed: ${(error as Error).message}`, { cause: error });
    }
  }
}
