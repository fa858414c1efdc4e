import { defineConfig } from 'prisma/config';

// Prisma 7 reads the connection URL only from this file. `prisma generate` needs no database,
// so a missing DATABASE_URL must not throw here (prisma/config's `env()` would).
const url = process.env['DATABASE_URL'];

export default defineConfig({
  schema: 'prisma/schema.prisma',
  migrations: { path: 'prisma/migrations' },
  ...(url ? { datasource: { url } } : {}),
});
