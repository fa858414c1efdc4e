/**
 * The parts of node-postgres ormlock uses, as structural types: ormlock never imports `pg` at
 * runtime, so any compatible pool or client works.
 */
export interface PgQueryResultLike {
  readonly rows: Record<string, unknown>[];
}

/** A `pg.Client` or a `pg.PoolClient`. */
export interface PgClientLike {
  query(text: string, values?: readonly unknown[]): Promise<PgQueryResultLike>;
  /** node-postgres ≥ 8.16: 'I' idle, 'T' in a transaction, 'E' in a failed transaction. */
  getTransactionStatus?(): string | null;
  readonly processID?: number | null;
}

/** A `pg.Pool`. */
export interface PgPoolLike {
  query(text: string, values?: readonly unknown[]): Promise<PgQueryResultLike>;
  connect(): Promise<PgClientLike & { release(error?: Error | boolean): void }>;
  readonly totalCount: number;
}

/** Options of the transactions ormlock opens on a pool or client. */
export interface PgTransactionOptions {
  readonly isolationLevel?: 'read committed' | 'repeatable read' | 'serializable';
  readonly readOnly?: boolean;
}

export function isPool(target: unknown): target is PgPoolLike {
  return typeof target === 'object' && target !== null && typeof (target as PgPoolLike).connect === 'function' && 'totalCount' in target;
}

export function isClient(target: unknown): target is PgClientLike {
  return typeof target === 'object' && target !== null && typeof (target as PgClientLike).query === 'function' && !isPool(target);
}
