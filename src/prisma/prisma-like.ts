/**
 * The parts of a Prisma 7 client ormlock uses, as structural types, so that any generated client
 * (`prisma-client` or `prisma-client-js`) fits without ormlock importing it.
 */
export interface PrismaRawLike {
  /** Prisma's `$queryRawUnsafe(sql, ...values)`: ormlock sends only its own SQL, values bound. */
  $queryRawUnsafe<T = unknown>(query: string, ...values: unknown[]): PromiseLike<T>;
}

/** Options of an interactive transaction, as Prisma takes them. */
export interface PrismaTransactionOptions {
  /** How long to wait for a connection to start the transaction, in ms (Prisma's default 2000). */
  readonly maxWait?: number;
  /** How long the transaction may run before Prisma ends it, in ms (Prisma's default 5000); lock waits inside it end before. */
  readonly timeout?: number;
  /** The transaction's isolation level. */
  readonly isolationLevel?: 'ReadUncommitted' | 'ReadCommitted' | 'RepeatableRead' | 'Serializable';
}

export interface PrismaClientLike extends PrismaRawLike {
  $transaction(arg: unknown, options?: PrismaTransactionOptions): Promise<unknown>;
  $extends(extension: unknown): unknown;
}
