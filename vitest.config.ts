import { availableParallelism } from 'node:os';
import { defineConfig } from 'vitest/config';

// Test files run in parallel, each in its own forked process and its own database
// (test/helpers/database.ts). At least two workers even on a 2-core machine: the files mostly
// wait on PostgreSQL, and concurrency bugs need real parallel sessions to show.
const workers = Number(process.env['ORMLOCK_TEST_WORKERS'] ?? Math.min(4, Math.max(2, availableParallelism())));

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    pool: 'forks',
    fileParallelism: true,
    maxWorkers: workers,
    testTimeout: 30_000,
    hookTimeout: 60_000,
    teardownTimeout: 30_000,
    typecheck: {
      enabled: true,
      include: ['test/**/*.test-d.ts'],
      // Only the type tests and what they import: the whole project is typechecked by `tsc` in
      // `npm run check`, and a type error elsewhere should not fail the test run.
      tsconfig: './test/tsconfig.typecheck.json',
    },
  },
});
