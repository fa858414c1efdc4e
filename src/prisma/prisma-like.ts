/**
 * The parts of a Prisma 7 client ormlock uses, as structural types, so that any generated client
 * (`prisma-client` or `prisma-client-js`) fits without ormlock importing it.
 */
export interface PrismaRawLike {
  $queryRawUnsafe<T = unknown>(query: string, ...values: unknown[]): PromiseLike<T>;
}

/** Options of an interactive transaction, as Prisma takes them. */
export interface PrismaTransactionOptions {
  readonly maxWait?: number;
  readonly timeout?: number;
  readonly isolationLevel?: 'ReadUncommitted' | 'ReadCommitted' | 'RepeatableRead' | 'Serializable';
}

export interface PrismaClientLike extends PrismaRawLike {
  $transaction(arg: unknown, options?: PrismaTransactionOptions): Promise<unknown>;
  $extends(extension: unknown): unknown;
}
