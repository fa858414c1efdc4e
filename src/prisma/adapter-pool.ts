import type { Executor, SideChannel } from '../core/executor.js';
import { isPool } from '../pg/pg-like.js';
import type { PgPoolLike } from '../pg/pg-like.js';
import type { PrismaRawLike } from './prisma-like.js';

/** What `@prisma/adapter-pg` was given, where the client exposes it. */
export interface AdapterSource {
  /** The `pg.Pool` given to `new PrismaPg(pool)`. */
  readonly externalPool?: unknown;
  /** The connection string or pool config given to `new PrismaPg(config)`. */
  readonly config?: unknown;
}

export function adapterOf(base: PrismaRawLike): AdapterSource | undefined {
  return (base as { _engineConfig?: { adapter?: AdapterSource } })._engineConfig?.adapter;
}

/** The `pg.Pool` the adapter was given, if it was given one (a connection string makes a private pool). */
export function adapterPool(base: PrismaRawLike): PgPoolLike | undefined {
  const pool = adapterOf(base)?.externalPool;
  return isPool(pool) ? pool : undefined;
}

type TypeParser = (text: string) => unknown;
interface TypesConfig {
  getTypeParser(oid: number, format?: string): TypeParser;
}

// The text of these types as @prisma/adapter-pg hands it on, for `toModelRows` to finish as
// Prisma does (a Date, a Decimal). node-postgres's own parsers would read a `timestamp` in the
// process's time zone and a `date` as local midnight; Prisma reads both as UTC.
const OFFSET = /[+-]\d{2}(:\d{2})?$/;
const TEXT_OVERRIDES: Record<number, TypeParser> = {
  // timestamp: UTC.
  1114: (text) => `${text.replace(' ', 'T')}+00:00`,
  // timestamptz: the session's offset read as UTC, as the adapter does.
  1184: (text) => text.replace(' ', 'T').replace(OFFSET, '+00:00'),
  // date, time: as they are (a date is UTC midnight, a time a time of day on 1970-01-01).
  1082: (text) => text,
  1083: (text) => text,
  // timetz: the time of day, its offset dropped. (A `money` column is read as `numeric`: see castOf.)
  1266: (text) => text.replace(OFFSET, ''),
};

let typesConfig: Promise<TypesConfig> | undefined;
let loadedTypes: TypesConfig | undefined;

/**
 * node-postgres's parsers (loaded once, from the `pg` the adapter itself depends on) with
 * {@link TEXT_OVERRIDES}; once loaded, handed out without another await on the claim's path.
 */
function prismaTypes(): TypesConfig | Promise<TypesConfig> {
  return (loadedTypes ??
    (typesConfig ??= import('pg').then((module) => {
      const pg = module as unknown as { default?: { types?: TypesConfig }; types?: TypesConfig };
      const base = (pg.default?.types ?? pg.types) as TypesConfig;
      return (loadedTypes = {
        getTypeParser: (oid: number, format?: string) => (format !== 'binary' ? TEXT_OVERRIDES[oid] : undefined) ?? base.getTypeParser(oid, format),
      });
    })));
}

/**
 * Runs a statement on the adapter's `pg.Pool` itself, outside any Prisma transaction, and reads
 * its rows as Prisma would (finished by `toModelRows`). Prisma's own raw-query path costs about
 * 300 µs of JavaScript per statement (its engine, the adapter's conversions); a claim on the
 * pool costs what it costs on node-postgres.
 */
export function adapterPoolExecutor(pool: PgPoolLike, sideChannel: SideChannel): Executor {
  const query = pool.query as unknown as (config: { text: string; values: readonly unknown[]; types: TypesConfig }) => Promise<{ rows: unknown[] }>;
  return {
    query: async <T>(text: string, params: readonly unknown[] = []) => {
      const types = prismaTypes();
      return (await query.call(pool, { text, values: params, types: types instanceof Promise ? await types : types })).rows as T[];
    },
    inTransaction: false,
    sideChannel,
  };
}
