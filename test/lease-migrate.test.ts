import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type pg from 'pg';
import { afterAll, describe, expect, test } from 'vitest';
import { runMigrate } from '../src/cli/migrate-command.js';
import { leaseTableSql } from '../src/index.js';
import { leaseTable } from '../src/drizzle/index.js';
import { $lock } from '../src/pg/index.js';
import { useTestDatabase } from './helpers/database.js';

const root = fileURLToPath(new URL('../', import.meta.url));
const fromPrisma = useTestDatabase();
const fromDrizzle = useTestDatabase();

const dirs: string[] = [];
afterAll(() => dirs.forEach((dir) => rmSync(dir, { recursive: true, force: true })));

function project(): string {
  const dir = mkdtempSync(join(tmpdir(), 'ormlock-migrate-'));
  dirs.push(dir);
  mkdirSync(join(dir, 'prisma'));
  writeFileSync(
    join(dir, 'prisma', 'schema.prisma'),
    `generator client {\n  provider = "prisma-client"\n  output   = "./generated"\n}\n\ndatasource db {\n  provider = "postgresql"\n}\n\nmodel Thing {\n  id Int @id\n}\n`,
  );
  return dir;
}

function io(cwd: string) {
  const out: string[] = [];
  const err: string[] = [];
  return { io: { stdout: (s: string) => void out.push(s), stderr: (s: string) => void err.push(s), cwd }, out, err };
}

/** Every file under `dir` with its content, for before/after comparisons. */
function snapshot(dir: string): Record<string, string> {
  const files: Record<string, string> = {};
  const walk = (at: string): void => {
    for (const entry of readdirSync(at)) {
      const path = join(at, entry);
      if (statSync(path).isDirectory()) walk(path);
      else files[path.slice(dir.length)] = readFileSync(path, 'utf8');
    }
  };
  walk(dir);
  return files;
}

/** Columns, constraints, indexes and sequences of one table, as the catalog describes them. */
async function catalogOf(query: (text: string, params: unknown[]) => Promise<Record<string, unknown>[]>, schema: string, table: string) {
  const rel = `"${schema.replaceAll('"', '""')}"."${table.replaceAll('"', '""')}"`;
  const columns = await query(
    `SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull AS not_null,
            regexp_replace(pg_get_expr(d.adbin, d.adrelid), '''[^'']*''', 'SEQ') AS default_expr
       FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
      WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`,
    [rel],
  );
  // PostgreSQL 18 also lists NOT NULL as constraints (contype 'n'); the columns' not_null covers
  // them on every version, so they are left out here.
  const constraints = await query(
    `SELECT conname AS name, contype AS type, pg_get_constraintdef(oid) AS def FROM pg_constraint
      WHERE conrelid = to_regclass($1) AND contype <> 'n' ORDER BY conname`,
    [rel],
  );
  const indexes = await query(`SELECT indexname AS name, indexdef AS def FROM pg_indexes WHERE schemaname = $1 AND tablename = $2 ORDER BY indexname`, [schema, table]);
  const sequences = await query(
    `SELECT s.relname AS name, q.seqtypid::regtype::text AS type, a.attname AS owned_by
       FROM pg_class s JOIN pg_sequence q ON q.seqrelid = s.oid
       JOIN pg_depend dep ON dep.objid = s.oid AND dep.deptype = 'a'
       JOIN pg_attribute a ON a.attrelid = dep.refobjid AND a.attnum = dep.refobjsubid
      WHERE dep.refobjid = to_regclass($1) ORDER BY s.relname`,
    [rel],
  );
  return { columns, constraints, indexes, sequences };
}

async function drizzleKitSql(imports: Record<string, unknown>): Promise<string[]> {
  const api = (await import('drizzle-kit/api')) as unknown as {
    generateDrizzleJson: (imports: Record<string, unknown>) => unknown;
    generateMigration: (prev: unknown, cur: unknown) => Promise<string[]>;
  };
  return api.generateMigration(api.generateDrizzleJson({}), api.generateDrizzleJson(imports));
}

const sender = (client: pg.Client) => async (text: string, params: unknown[]) => (await client.query(text, params)).rows as Record<string, unknown>[];

describe('ormlock migrate prisma', () => {
  test('adds the model and one migration folder; a second run changes nothing; prisma validate accepts the schema', async () => {
    const dir = project();
    const first = io(dir);
    expect(await runMigrate(['prisma'], first.io)).toBe(0);
    const after = snapshot(dir);
    const schema = after['/prisma/schema.prisma']!;
    expect(schema).toContain('model OrmlockLease {');
    expect(schema).toContain('model Thing {');
    const folders = readdirSync(join(dir, 'prisma', 'migrations')).filter((name) => name !== 'migration_lock.toml');
    expect(folders).toHaveLength(1);
    expect(folders[0]).toMatch(/^\d{14}_ormlock_leases$/);
    expect(after['/prisma/migrations/migration_lock.toml']).toContain('provider = "postgresql"');

    const second = io(dir);
    expect(await runMigrate(['prisma', '--schema', 'prisma/schema.prisma'], second.io)).toBe(0);
    expect(snapshot(dir)).toEqual(after);
    expect(second.out.join('')).toContain('already there');

    const validate = spawnSync(process.execPath, [join(root, 'node_modules/prisma/build/index.js'), 'validate', '--schema', join(dir, 'prisma', 'schema.prisma')], {
      env: { ...process.env, PRISMA_SCHEMA_ENGINE_BINARY: join(root, 'package.json'), PRISMA_HIDE_UPDATE_MESSAGE: '1' },
      encoding: 'utf8',
    });
    expect(validate.status, validate.stderr + validate.stdout).toBe(0);
  });

  test('the migration sorts after existing ones', async () => {
    const dir = project();
    mkdirSync(join(dir, 'prisma', 'migrations', '29990101000000_future'), { recursive: true });
    writeFileSync(join(dir, 'prisma', 'migrations', '29990101000000_future', 'migration.sql'), 'SELECT 1;');
    expect(await runMigrate(['prisma'], io(dir).io)).toBe(0);
    const folders = readdirSync(join(dir, 'prisma', 'migrations')).filter((name) => /^\d{14}_/.test(name)).sort();
    expect(folders).toEqual(['29990101000000_future', '29990101000001_ormlock_leases']);
  });

  test('its SQL, applied with pg, creates exactly what the Drizzle objects describe (drizzle-kit SQL, compared in the catalogs)', async () => {
    const variants: { schema?: string; table?: string }[] = [{}, { schema: 'Lease Schema', table: 'my_leases' }];
    for (const variant of variants) {
      const dir = project();
      const args = variant.schema !== undefined && variant.table !== undefined ? ['--db-schema', variant.schema, '--table', variant.table] : [];
      expect(await runMigrate(['prisma', ...args], io(dir).io)).toBe(0);
      const folder = readdirSync(join(dir, 'prisma', 'migrations')).find((name) => name.endsWith('_ormlock_leases'))!;
      const migrationSql = readFileSync(join(dir, 'prisma', 'migrations', folder, 'migration.sql'), 'utf8');

      const a = await fromPrisma.client();
      // `prisma migrate deploy` sends a migration file as one script.
      await a.query(migrationSql);

      const b = await fromDrizzle.client();
      const table = leaseTable(variant);
      const { pgSchema } = await import('drizzle-orm/pg-core');
      const imports = variant.schema !== undefined ? { table, schema: pgSchema(variant.schema) } : { table };
      const statements = await drizzleKitSql(imports);
      expect(statements.join('\n')).toContain('bigserial');
      for (const statement of statements) await b.query(statement);

      // Without a schema the table lands on the search_path: the test schema (ORMLOCK_TEST_SCHEMA).
      const schemaName = variant.schema ?? fromPrisma.schema;
      const tableName = variant.table ?? 'ormlock_leases';
      const qualified = `"${schemaName}"."${tableName}"`;
      const fromA = await catalogOf(sender(a), schemaName, tableName);
      const fromB = await catalogOf(sender(b), schemaName, tableName);
      expect(fromA.columns.map((c) => c['name'])).toEqual(['name', 'owner', 'token', 'data', 'acquired_at', 'renewed_at', 'expires_at', 'ttl_ms']);
      expect(fromA.sequences).toEqual([{ name: `${tableName}_token_seq`, type: 'bigint', owned_by: 'token' }]);
      expect(fromA.constraints).toEqual([{ name: `${tableName}_pkey`, type: 'p', def: 'PRIMARY KEY (name)' }]);
      expect(fromA.columns.find((c) => c['name'] === 'expires_at')).toMatchObject({ type: 'timestamp(6) with time zone', not_null: true });
      expect(fromA).toEqual(fromB);
      // Both qualified the same way the catalog query did.
      expect((await a.query('SELECT to_regclass($1) IS NOT NULL AS ok', [qualified])).rows).toEqual([{ ok: true }]);
    }
  });

  test('the lease API works on the table the Prisma migration created', async () => {
    const locks = $lock(fromPrisma.pool());
    const lease = await locks.lease('migrated', { ttl: '5s' });
    expect(lease.fencingToken).toBeGreaterThan(0n);
    await lease.release();
  });
});

describe('ormlock migrate drizzle and sql', () => {
  test('drizzle --out adds the export to a schema file once', async () => {
    const dir = project();
    const file = join(dir, 'db', 'schema.ts');
    mkdirSync(join(dir, 'db'));
    writeFileSync(file, `import { pgTable, text } from 'drizzle-orm/pg-core';\nimport {\n  sql,\n} from 'drizzle-orm';\n\nexport const things = pgTable('things', { id: text('id') });\n`);
    expect(await runMigrate(['drizzle', '--out', 'db/schema.ts'], io(dir).io)).toBe(0);
    const once = readFileSync(file, 'utf8');
    expect(once.split('\n').slice(0, 6)).toEqual([
      `import { pgTable, text } from 'drizzle-orm/pg-core';`,
      'import {',
      '  sql,',
      `} from 'drizzle-orm';`,
      `import { leaseTable } from 'ormlock/drizzle';`,
      '',
    ]);
    expect(once).toContain('export const ormlockLeases = leaseTable();');
    expect(await runMigrate(['drizzle', '--out', 'db/schema.ts'], io(dir).io)).toBe(0);
    expect(readFileSync(file, 'utf8')).toBe(once);
  });

  test('drizzle without --out prints the export; sql prints idempotent SQL', async () => {
    const printed = io(process.cwd());
    expect(await runMigrate(['drizzle', '--table', 'jobs_leases'], printed.io)).toBe(0);
    expect(printed.out.join('')).toContain(`leaseTable({ table: "jobs_leases" })`);
    const sql = io(process.cwd());
    expect(await runMigrate(['sql'], sql.io)).toBe(0);
    expect(sql.out.join('')).toBe(leaseTableSql());
    const client = await fromDrizzle.client();
    await client.query(sql.out.join(''));
    await client.query(sql.out.join(''));
  });

  test('bad usage exits 2 with the help text', async () => {
    const bad = io(process.cwd());
    expect(await runMigrate(['mysql'], bad.io)).toBe(2);
    expect(bad.err.join('')).toContain('Usage: ormlock migrate');
    expect(await runMigrate(['sql', '--nope'], io(process.cwd()).io)).toBe(2);
    const missing = io(mkdtempSync(join(tmpdir(), 'ormlock-empty-')));
    dirs.push(missing.io.cwd);
    expect(await runMigrate(['prisma'], missing.io)).toBe(1);
    expect(missing.err.join('')).toContain('not found');
  });
});
