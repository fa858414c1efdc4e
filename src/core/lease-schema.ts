import { InvalidLockArgumentError } from './errors.js';
import type { Executor } from './executor.js';
import { quoteIdent, quoteQualified } from './sql.js';

/** Where the lease table lives. Both names are used as given (case-sensitive) and always quoted. */
export interface LeaseTableOptions {
  /** Schema of the table; default: the connection's `search_path` (usually `public`). */
  readonly schema?: string;
  /** Table name; default `ormlock_leases`. */
  readonly table?: string;
}

/** The default lease table name. */
export const DEFAULT_LEASE_TABLE = 'ormlock_leases';

/** The lease table's names, resolved and quoted once. */
export interface LeaseTableNames {
  readonly schema?: string;
  readonly table: string;
  /** `"schema"."table"` or `"table"`, ready for SQL text. */
  readonly qualified: string;
  /** The channel `pg_notify` uses when a lease is released (a constant: waiters filter by payload). */
  readonly channel: string;
}

/** The lease table's fillfactor (see {@link leaseTableStatements}). */
export const LEASE_TABLE_FILLFACTOR = 50;

/** The NOTIFY channel of lease releases. The payload is the lease name. */
export const LEASE_CHANNEL = 'ormlock_lease';

/** Validates and quotes the table options. */
export function leaseTableNames(options: LeaseTableOptions = {}): LeaseTableNames {
  const { schema, table = DEFAULT_LEASE_TABLE } = options;
  for (const [argument, value] of [
    ['options.schema', schema],
    ['options.table', table],
  ] as const) {
    if (value === undefined) continue;
    if (typeof value !== 'string' || value.length === 0 || value.length > 63 || value.includes('\0')) {
      throw new InvalidLockArgumentError(argument, 'expected a non-empty identifier of at most 63 characters');
    }
  }
  return {
    schema,
    table,
    qualified: schema === undefined ? quoteIdent(table) : quoteQualified([schema, table]),
    channel: LEASE_CHANNEL,
  };
}

/**
 * The statements that create the lease table, idempotent (`IF NOT EXISTS`), as one string.
 *
 * The fencing token is a `bigserial`: its sequence (`<table>_token_seq`, owned by the column) gives
 * every acquisition a new, larger value, and outlives the rows, so tokens keep increasing after
 * old rows are pruned. Prisma (`BigInt @default(autoincrement())`) and Drizzle (`bigserial`)
 * describe the same column natively, so neither tool sees drift.
 *
 * @example
 * ```ts
 * await pool.query(leaseTableSql({ schema: 'locks' }));
 * ```
 */
export function leaseTableSql(options: LeaseTableOptions = {}): string {
  return `${leaseTableStatements(options).join(';\n')};\n`;
}

/** The statements of {@link leaseTableSql}, one string each, without the final semicolon. */
export function leaseTableStatements(options: LeaseTableOptions = {}): string[] {
  const names = leaseTableNames(options);
  const statements: string[] = [];
  if (names.schema !== undefined) statements.push(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(names.schema)}`);
  const lines = [
    `CREATE TABLE IF NOT EXISTS ${names.qualified} (`,
    `    "name" TEXT NOT NULL,`,
    `    "owner" TEXT NOT NULL,`,
    `    "token" BIGSERIAL NOT NULL,`,
    `    "data" JSONB,`,
    `    "acquired_at" TIMESTAMPTZ(6) NOT NULL,`,
    `    "renewed_at" TIMESTAMPTZ(6) NOT NULL,`,
    `    "expires_at" TIMESTAMPTZ(6) NOT NULL,`,
    `    "ttl_ms" INTEGER NOT NULL,`,
    ``,
    `    CONSTRAINT ${quoteIdent(`${names.table}_pkey`)} PRIMARY KEY ("name")`,
    `)`,
  ];
  statements.push(lines.join('\n'));
  // Half-empty pages let a renewal write the row's new version next to the old one (a HOT
  // update: no index entry, no bloat), which makes the heartbeat of 10,000 leases about twice as
  // fast. Neither Prisma nor drizzle-kit models storage parameters, so neither sees drift.
  statements.push(`ALTER TABLE ${names.qualified} SET (fillfactor = ${LEASE_TABLE_FILLFACTOR})`);
  return statements;
}

/**
 * Creates the lease table if it does not exist, for scripts and tests. Applications should create
 * it with a migration (`npx ormlock migrate prisma | drizzle | sql`).
 *
 * @example
 * ```ts
 * import { ensureLeaseTable } from 'ormlock/pg';
 * await ensureLeaseTable(pool);
 * ```
 */
export async function ensureLeaseTable(executor: Pick<Executor, 'query'>, options: LeaseTableOptions = {}): Promise<void> {
  // One statement at a time: Prisma's $queryRawUnsafe and prepared statements take one each.
  for (const statement of leaseTableStatements(options)) await executor.query(statement);
}

/** Options of {@link prismaLeaseModel}. */
export interface PrismaLeaseModelOptions extends LeaseTableOptions {
  /** The model's name in `schema.prisma`; default `OrmlockLease`. */
  readonly model?: string;
}

/**
 * The Prisma model of the lease table, to paste into (or let `npx ormlock migrate prisma` add to)
 * `schema.prisma`, so that `prisma migrate dev` knows the table and never drops it. With a schema,
 * the datasource needs `schemas = [...]` listing it (Prisma's multi-schema support).
 */
export function prismaLeaseModel(options: PrismaLeaseModelOptions = {}): string {
  const names = leaseTableNames(options);
  const model = options.model ?? 'OrmlockLease';
  if (!/^[A-Za-z][A-Za-z0-9_]*$/.test(model)) throw new InvalidLockArgumentError('options.model', 'expected a Prisma model name');
  const lines = [
    `/// Leases of ormlock (cross-process locks). Managed by ormlock: do not write to it by hand.`,
    `model ${model} {`,
    `  name       String   @id`,
    `  owner      String`,
    `  token      BigInt   @default(autoincrement())`,
    `  data       Json?`,
    `  acquiredAt DateTime @map("acquired_at") @db.Timestamptz(6)`,
    `  renewedAt  DateTime @map("renewed_at") @db.Timestamptz(6)`,
    `  expiresAt  DateTime @map("expires_at") @db.Timestamptz(6)`,
    `  ttlMs      Int      @map("ttl_ms")`,
    ``,
    `  @@map(${JSON.stringify(names.table)})`,
  ];
  if (names.schema !== undefined) lines.push(`  @@schema(${JSON.stringify(names.schema)})`);
  lines.push(`}`);
  return `${lines.join('\n')}\n`;
}
