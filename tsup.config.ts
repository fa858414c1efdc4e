import { defineConfig } from 'tsup';

export default defineConfig({
  entry: {
    index: 'src/index.ts',
    'prisma/index': 'src/prisma/index.ts',
    'drizzle/index': 'src/drizzle/index.ts',
    'pg/index': 'src/pg/index.ts',
    'cli/index': 'src/cli/index.ts',
    // Loaded by the CLI with a dynamic import of './migrate-command.js', so it must be a file of its own.
    'cli/migrate-command': 'src/cli/migrate-command.ts',
  },
  format: ['esm', 'cjs'],
  dts: true,
  clean: true,
  sourcemap: true,
  splitting: true,
  treeshake: true,
  target: 'node20',
  external: ['@prisma/client', 'drizzle-orm', 'pg'],
});
