/**
 * `ormlock migrate prisma | drizzle | sql`: creates the lease table through the app's own
 * migration tool, so that the tool knows the table and never drops it as drift.
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { type LeaseTableOptions, leaseTableNames, leaseTableSql, prismaLeaseModel } from '../core/lease-schema.js';

/** Where the command writes (the CLI passes the process's streams; tests their own). */
export interface MigrateIo {
  stdout: (s: string) => void;
  stderr: (s: string) => void;
  cwd: string;
}

export const MIGRATE_HELP = `Usage: ormlock migrate <prisma | drizzle | sql> [options]

  prisma    add the lease model to schema.prisma and write a migration folder that
            \`prisma migrate deploy\` applies (running it again changes nothing)
  drizzle   print the Drizzle schema export of the lease table, or add it to a schema file (--out)
  sql       print the SQL that creates the lease table (idempotent)

Options:
  --table <name>        lease table name (default ormlock_leases)
  --db-schema <name>    PostgreSQL schema of the table (default: the search_path)
  --schema <file>       prisma: the schema file (default prisma/schema.prisma)
  --migrations <dir>    prisma: the migrations folder (default: migrations next to the schema file)
  --model <name>        prisma: the model name (default OrmlockLease)
  --out <file>          drizzle: the schema file to add the table to
`;

const MIGRATION_SUFFIX = 'ormlock_leases';

/**
 * Runs `ormlock migrate …` with `args` (after `migrate`) and resolves the exit code: 0 done,
 * 1 failed, 2 bad usage.
 */
export async function runMigrate(args: string[], io: MigrateIo): Promise<number> {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(args);
  } catch (error) {
    io.stderr(`ormlock migrate: ${(error as Error).message}\n\n${MIGRATE_HELP}`);
    return 2;
  }
  const { target, values } = parsed;
  if (values.help === true) {
    io.stdout(MIGRATE_HELP);
    return 0;
  }
  const table: LeaseTableOptions = { table: values.table, schema: values['db-schema'] };
  try {
    leaseTableNames(table);
    switch (target) {
      case 'sql':
        io.stdout(leaseTableSql(table));
        return 0;
      case 'prisma':
        return migratePrisma(io, table, values);
      case 'drizzle':
        return migrateDrizzle(io, table, values.out);
      default:
        io.stderr(`ormlock migrate: expected prisma, drizzle or sql${target === undefined ? '' : `, got ${JSON.stringify(target)}`}\n\n${MIGRATE_HELP}`);
        return 2;
    }
  } catch (error) {
    io.stderr(`ormlock migrate: ${(error as Error).message}\n`);
    return 1;
  }
}

function parse(args: string[]) {
  const { positionals, values } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      table: { type: 'string' },
      'db-schema': { type: 'string' },
      schema: { type: 'string' },
      migrations: { type: 'string' },
      model: { type: 'string' },
      out: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (positionals.length > 1) throw new Error(`unexpected arguments: ${positionals.slice(1).join(' ')}`);
  return { target: positionals[0], values };
}

function migratePrisma(io: MigrateIo, table: LeaseTableOptions, values: { schema?: string; migrations?: string; model?: string }): number {
  const schemaFile = resolve(io.cwd, values.schema ?? join('prisma', 'schema.prisma'));
  if (!existsSync(schemaFile)) {
    io.stderr(`ormlock migrate: ${relative(io.cwd, schemaFile) || schemaFile} not found; pass --schema <file>\n`);
    return 1;
  }
  const names = leaseTableNames(table);
  const schemaText = readFileSync(schemaFile, 'utf8');
  const model = values.model ?? 'OrmlockLease';
  if (hasLeaseModel(schemaText, model, names.table)) {
    io.stdout(`${relative(io.cwd, schemaFile)}: the lease model is already there\n`);
  } else {
    writeFileSync(schemaFile, `${schemaText.replace(/\s*$/, '')}\n\n${prismaLeaseModel({ ...table, model })}`);
    io.stdout(`${relative(io.cwd, schemaFile)}: added model ${model}\n`);
    if (names.schema !== undefined) {
      io.stderr(`note: list "${names.schema}" in the datasource's \`schemas = [...]\` (Prisma multi-schema) for @@schema to apply\n`);
    }
  }

  const migrationsDir = resolve(io.cwd, values.migrations ?? join(dirname(schemaFile), 'migrations'));
  const existing = existsSync(migrationsDir) ? readdirSync(migrationsDir, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name).sort() : [];
  const sql = leaseTableSql(table);
  const already = existing.find((name) => {
    const file = join(migrationsDir, name, 'migration.sql');
    return existsSync(file) && readFileSync(file, 'utf8').includes(`CREATE TABLE IF NOT EXISTS ${names.qualified} (`);
  });
  if (already !== undefined) {
    io.stdout(`${relative(io.cwd, join(migrationsDir, already))}: the lease table migration is already there\n`);
    return 0;
  }
  mkdirSync(migrationsDir, { recursive: true });
  const lockFile = join(migrationsDir, 'migration_lock.toml');
  if (!existsSync(lockFile)) {
    writeFileSync(lockFile, `# Please do not edit this file manually\n# It should be added in your version-control system (e.g., Git)\nprovider = "postgresql"\n`);
  }
  const folder = join(migrationsDir, `${nextTimestamp(existing)}_${MIGRATION_SUFFIX}`);
  mkdirSync(folder);
  writeFileSync(join(folder, 'migration.sql'), `-- ormlock: the lease table (npx ormlock migrate prisma)\n${sql}`);
  io.stdout(`${relative(io.cwd, join(folder, 'migration.sql'))}: written; apply it with \`npx prisma migrate deploy\`\n`);
  return 0;
}

/** Whether the schema already has the model, or any model mapped to the table. */
function hasLeaseModel(schemaText: string, model: string, table: string): boolean {
  const withoutComments = schemaText.replace(/\/\/.*$/gm, '');
  if (new RegExp(`^\\s*model\\s+${model}\\s*\\{`, 'm').test(withoutComments)) return true;
  return withoutComments.includes(`@@map(${JSON.stringify(table)})`);
}

/** Prisma's folder prefix (`YYYYMMDDHHMMSS`, UTC), later than every existing migration. */
function nextTimestamp(existing: readonly string[]): string {
  const now = new Date().toISOString().replace(/\D/g, '').slice(0, 14);
  const latest = existing.map((name) => /^(\d{14})/.exec(name)?.[1]).filter((v): v is string => v !== undefined).sort().at(-1);
  if (latest === undefined || now > latest) return now;
  return (BigInt(latest) + 1n).toString().padStart(14, '0');
}

function drizzleSnippet(table: LeaseTableOptions): { importLine: string; exportLine: string } {
  const args: string[] = [];
  if (table.schema !== undefined) args.push(`schema: ${JSON.stringify(table.schema)}`);
  if (table.table !== undefined) args.push(`table: ${JSON.stringify(table.table)}`);
  return {
    importLine: `import { leaseTable } from 'ormlock/drizzle';`,
    exportLine:
      `/** ormlock's lease table (cross-process locks); drizzle-kit generates its migration. */\n` +
      `export const ormlockLeases = leaseTable(${args.length > 0 ? `{ ${args.join(', ')} }` : ''});`,
  };
}

function migrateDrizzle(io: MigrateIo, table: LeaseTableOptions, out: string | undefined): number {
  const { importLine, exportLine } = drizzleSnippet(table);
  const schemaNote =
    table.schema === undefined
      ? ''
      : `\n// drizzle-kit creates the schema when it is exported too:\n// export const ormlockSchema = pgSchema(${JSON.stringify(table.schema)});\n`;
  if (out === undefined) {
    io.stdout(`${importLine}\n\n${exportLine}\n${schemaNote}`);
    return 0;
  }
  const file = resolve(io.cwd, out);
  const text = existsSync(file) ? readFileSync(file, 'utf8') : '';
  if (/\bleaseTable\s*\(/.test(text)) {
    io.stdout(`${relative(io.cwd, file)}: the lease table is already exported\n`);
    return 0;
  }
  const lines = text.split('\n');
  // Put the import after the last import of the file, the export at the end.
  let lastImport = -1;
  lines.forEach((line, index) => {
    // A one-line import, or the closing line of a multi-line one.
    if (/^import\s.*\bfrom\s+['"][^'"]+['"];?\s*$/.test(line) || /^import\s+['"]/.test(line) || /^\}\s*from\s+['"][^'"]+['"];?\s*$/.test(line)) {
      lastImport = index;
    }
  });
  const withImport = lastImport >= 0 ? [...lines.slice(0, lastImport + 1), importLine, ...lines.slice(lastImport + 1)] : [importLine, '', ...lines];
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, `${withImport.join('\n').replace(/\s*$/, '')}\n\n${exportLine}\n${schemaNote}`);
  io.stdout(`${relative(io.cwd, file)}: added ormlockLeases; run \`npx drizzle-kit generate\`\n`);
  return 0;
}
