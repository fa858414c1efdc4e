/**
 * The parts of node-postgres ormlock uses, as structural types: ormlock never imports `pg` at
 * runtime, so any compatible pool or client works.
 */
export interface PgQueryResultLike {
  readonly rows: Record<string, unknown>[];
}

/** A `pg.Client` or a `pg.PoolClient`. */
export interface PgClientLike {
  /** `client.query(text, values)`. */
  query(text: string, values?: readonly unknown[]): Promise<PgQueryResultLike>;
  /** node-postgres ≥ 8.16: 'I' idle, 'T' in a transaction, 'E' in a failed transaction. */
  getTransactionStatus?(): string | null;
  /** The backend's pid, as node-postgres records it at connect time. */
  readonly processID?: number | null;
}

/** A `pg.Pool`. */
export interface PgPoolLike {
  /** `pool.query(text, values)`: one statement on any pooled connection. */
  query(text: string, values?: readonly unknown[]): Promise<PgQueryResultLike>;
  /** `pool.connect()`: a pooled client to hold, and give back with `release()`. */
  connect(): Promise<
    PgClientLike & {
      /** Gives the client back to the pool; an error (or `true`) discards its connection instead. */
      release(error?: Error | boolean): void;
    }
  >;
  /** How many clients the pool holds (tells a pool from a client). */
  readonly totalCount: number;
}

/** Options of the transactions ormlock opens on a pool or client. */
export interface PgTransactionOptions {
  /** `BEGIN ISOLATION LEVEL …`; default the server's (`read committed`). */
  readonly isolationLevel?: 'read committed' | 'repeatable read' | 'serializable';
  /** `BEGIN READ ONLY`. */
  readonly readOnly?: boolean;
}

export function isPool(target: unknown): target is PgPoolLike {
  return typeof target === 'object' && target !== null && typeof (target as PgPoolLike).connect === 'function' && 'totalCount' in target;
}

export function isClient(target: unknown): target is PgClientLike {
  return typeof target === 'object' && target !== null && typeof (target as PgClientLike).query === 'function' && !isPool(target);
}
