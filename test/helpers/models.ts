/**
 * The ORM models the tests run against, from one place: the generated Prisma client
 * (`prisma/generated`, made by `npm run generate` or the global setup) and the Drizzle schema
 * (`drizzle/schema.ts`). Both describe the same tables: `accounts`, `jobs`, `"Counter"`,
 * `memberships`, and `transfers` / `refunds` (foreign keys to the others, for relation filters).
 */
export { Prisma, PrismaClient } from '../../prisma/generated/client.js';
export * as schema from '../../drizzle/schema.js';
export { accounts, counters, jobs, memberships, refunds, transfers } from '../../drizzle/schema.js';
