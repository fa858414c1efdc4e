/**
 * Keeps the generated clients (`prisma/generated` from the `prisma-client` generator,
 * `prisma/generated-js` from `prisma-client-js`) in step with `prisma/schema.prisma`, so that
 * `npx vitest` works without `npm run generate` first (a fresh clone has no generated client).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../', import.meta.url));
const schemaFile = `${root}prisma/schema.prisma`;
const clientFiles = [`${root}prisma/generated/client.ts`, `${root}prisma/generated-js/index.js`];

/** Runs `scripts/prisma-generate.mjs` when a generated client is missing or older than the schema. */
export function ensurePrismaClient(): void {
  const schemaTime = statSync(schemaFile).mtimeMs;
  if (clientFiles.every((file) => existsSync(file) && statSync(file).mtimeMs >= schemaTime)) return;
  const result = spawnSync(process.execPath, [`${root}scripts/prisma-generate.mjs`], { cwd: root, stdio: 'inherit' });
  if (result.status !== 0) throw new Error(`prisma generate failed (exit ${result.status ?? result.signal})`);
}
