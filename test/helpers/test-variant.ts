/**
 * Which variant of the environment the suite runs in, from environment variables that CI sets
 * one at a time (see `.ci/run` and `docs/compatibility.md`). Read by the global setup and by
 * `useTestDatabase`; each forked test worker inherits the same environment.
 *
 * - `ORMLOCK_TEST_SCHEMA`: schema of the test tables (default `public`); any name, quoted as needed.
 * - `ORMLOCK_TEST_PRISMA`: `client` (default, the `prisma-client` generator in `prisma/generated`)
 *   or `js` (the `prisma-client-js` generator in `prisma/generated-js`).
 * - `ORMLOCK_TEST_DRIZZLE`: `node-postgres` (default) or `postgres-js` (drizzle-orm/postgres-js).
 * - `ORMLOCK_TEST_POOLER` (read by `test/helpers/pgbouncer.ts`): `session` or `transaction`.
 * - `ORMLOCK_TEST_PG_MAJOR` (read by `test/helpers/postgres-server.ts`): embedded PostgreSQL major.
 */

/** The variant of one test run. */
export interface TestVariant {
  readonly schema: string;
  readonly prisma: 'client' | 'js';
  readonly drizzle: 'node-postgres' | 'postgres-js';
}

/** Reads and validates the variant variables; throws on a value it does not know. */
export function testVariant(env: NodeJS.ProcessEnv = process.env): TestVariant {
  const schema = env['ORMLOCK_TEST_SCHEMA'] || 'public';
  if (schema.length > 63 || schema.includes('\0')) throw new Error(`ORMLOCK_TEST_SCHEMA=${schema}: not a PostgreSQL identifier`);
  const prisma = env['ORMLOCK_TEST_PRISMA'] || 'client';
  if (prisma !== 'client' && prisma !== 'js') throw new Error(`ORMLOCK_TEST_PRISMA=${prisma}: expected client or js`);
  const drizzle = env['ORMLOCK_TEST_DRIZZLE'] || 'node-postgres';
  if (drizzle !== 'node-postgres' && drizzle !== 'postgres-js') throw new Error(`ORMLOCK_TEST_DRIZZLE=${drizzle}: expected node-postgres or postgres-js`);
  return { schema, prisma, drizzle };
}
