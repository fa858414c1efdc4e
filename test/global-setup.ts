/**
 * Vitest global setup: makes sure the Prisma clients are generated, finds or starts the PostgreSQL
 * server for the whole run (see `test/helpers/postgres-server.ts`), puts pgbouncer in front of it
 * when `ORMLOCK_TEST_POOLER` asks for it (see `test/helpers/pgbouncer.ts`), and hands the admin URL
 * and the run's variant to the test files through `provide` / `inject`.
 */
import type { TestProject } from 'vitest/node';
import { poolModeFromEnv, startPgbouncer } from './helpers/pgbouncer.js';
import { ensurePrismaClient } from './helpers/prisma-client-files.js';
import { redactUrl, startTestServer } from './helpers/postgres-server.js';
import type { TestServerContext } from './helpers/provided-context.js';
import { testVariant } from './helpers/test-variant.js';

/** Runs once per `vitest run`, before any worker starts; the returned function stops what it started. */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const variant = testVariant();
  ensurePrismaClient();
  const poolMode = poolModeFromEnv();
  const server = await startTestServer();
  let pooler: Awaited<ReturnType<typeof startPgbouncer>> | undefined;
  try {
    pooler = poolMode ? await startPgbouncer(server.adminUrl, poolMode) : undefined;
  } catch (error) {
    await server.stop();
    throw error;
  }
  const context: TestServerContext = {
    ormlockAdminUrl: pooler?.adminUrl ?? server.adminUrl,
    ormlockServerUrl: server.adminUrl,
    ormlockServerVersion: server.majorVersion,
    ormlockPooler: pooler?.mode ?? 'none',
    ormlockSchema: variant.schema,
  };
  project.provide('ormlockAdminUrl', context.ormlockAdminUrl);
  project.provide('ormlockServerUrl', context.ormlockServerUrl);
  project.provide('ormlockServerVersion', context.ormlockServerVersion);
  project.provide('ormlockPooler', context.ormlockPooler);
  project.provide('ormlockSchema', context.ormlockSchema);
  console.log(
    `[ormlock tests] PostgreSQL ${server.majorVersion} (${server.source}) at ${redactUrl(server.adminUrl)}` +
      (pooler ? `, through ${pooler.version} in ${pooler.mode} mode at ${redactUrl(pooler.adminUrl)}` : '') +
      `; schema ${JSON.stringify(variant.schema)}, Prisma generator ${variant.prisma}, Drizzle driver ${variant.drizzle}`,
  );
  return async () => {
    await pooler?.stop();
    await server.stop();
  };
}
