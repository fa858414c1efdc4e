import { defineConfig } from 'drizzle-kit';

// `drizzle-kit generate` works offline; the URL is only needed for push/introspect.
const url = process.env['DATABASE_URL'];

export default defineConfig({
  dialect: 'postgresql',
  schema: './drizzle/schema.ts',
  out: './drizzle/migrations',
  ...(url ? { dbCredentials: { url } } : {}),
});
