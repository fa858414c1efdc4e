/**
 * Finds the SQLSTATE of a failed query whichever driver raised it: node-postgres and postgres.js
 * put it in `code`, Drizzle wraps the driver's error in `cause`, and Prisma's driver adapters keep
 * it as `originalCode` below `meta` / `cause`. Prisma's own `P…` codes are not SQLSTATEs.
 */
export function sqlStateOf(error: unknown): string | undefined {
  const seen = new Set<unknown>();
  const queue: unknown[] = [error];
  while (queue.length > 0) {
    const current = queue.shift();
    if (current === null || typeof current !== 'object' || seen.has(current)) continue;
    seen.add(current);
    const record = current as Record<string, unknown>;
    for (const field of ['originalCode', 'code', 'sqlState']) {
      const value = record[field];
      if (typeof value === 'string' && SQLSTATE.test(value) && !PRISMA_CODE.test(value)) return value;
    }
    queue.push(record['cause'], record['meta'], record['driverAdapterError'], record['error']);
  }
  return undefined;
}

const SQLSTATE = /^[0-9A-Z]{5}$/;
// Prisma's own codes (P1000…P6999) have the shape of a SQLSTATE; PostgreSQL's P0 class
// (PL/pgSQL: P0001 raise_exception …) does not collide with them.
const PRISMA_CODE = /^P[1-9]\d{3}$/;

/** The SQLSTATEs ormlock reacts to. */
export const SqlState = {
  lockNotAvailable: '55P03',
  deadlockDetected: '40P01',
  serializationFailure: '40001',
  queryCanceled: '57014',
  undefinedTable: '42P01',
  inFailedTransaction: '25P02',
  /** A named prepared statement the connection does not have (a pooler moved us, `DEALLOCATE`). */
  undefinedPreparedStatement: '26000',
  /** A named prepared statement the connection has already (a pooler moved us). */
  duplicatePreparedStatement: '42P05',
} as const;
