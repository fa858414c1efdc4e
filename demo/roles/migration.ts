/**
 * Demo role: a migration that needs ACCESS EXCLUSIVE on `memberships` while a reporting session
 * sits idle in a transaction on it. A plain bounded wait times out (and `inspect()` shows who is
 * in the way); the same step under `prioritize` terminates that session and wins within a second.
 */
import { PrismaPg } from '@prisma/adapter-pg';
import { LockTimeoutError, withRetry } from 'ormlock';
import { lockExtension } from 'ormlock/prisma';
import { PrismaClient } from '../../prisma/generated/client.js';
import { SCENE } from '../scene.js';
import { databaseUrl, emit, sleep } from '../protocol.js';

const prisma = new PrismaClient({ adapter: new PrismaPg({ connectionString: await databaseUrl() }) }).$extends(lockExtension());
const step = 'ALTER TABLE memberships ADD COLUMN note text';
emit({ type: 'ready' });

// Start once the reporting session sits in its transaction (it is started at the same time).
const deadline = Date.now() + 20_000;
while ((await prisma.$queryRaw<unknown[]>`SELECT 1 FROM pg_stat_activity WHERE application_name = ${SCENE.reportApplicationName} AND state = 'idle in transaction'`).length === 0) {
  if (Date.now() > deadline) throw new Error('the reporting session never sat idle in its transaction');
  await sleep(100);
}

emit({ type: 'migration', phase: 'waiting', detail: `${step}: waiting up to 1s for ACCESS EXCLUSIVE` });
try {
  await prisma.$transaction(async (tx) => {
    await tx.$lock.model('Membership', { timeout: '1s' });
    await tx.$executeRawUnsafe(step);
  });
  throw new Error('the migration was expected to be blocked by the reporting session');
} catch (error) {
  if (!(error instanceof LockTimeoutError)) throw error;
  const { locks } = await prisma.$lock.inspect({ relation: 'Membership' });
  const holders = locks.filter((lock) => lock.granted).map((lock) => `pid ${lock.pid} (${lock.application || '?'}, ${lock.state ?? '?'}, ${lock.mode})`);
  emit({ type: 'migration', phase: 'timed-out', detail: `timed out after 1s; in the way: ${holders.join(', ') || 'nobody any more'}` });
}

await withRetry(
  () =>
    prisma.$lock.prioritize(
      async (tx) => {
        await tx.$lock.model('Membership', { timeout: '5s' });
        await tx.$executeRawUnsafe(step);
      },
      {
        action: 'terminate',
        after: '300ms',
        every: '300ms',
        filter: { applicationName: SCENE.reportApplicationName },
        onSignal: (blockers, action) =>
          emit({ type: 'migration', phase: 'signalled', detail: `prioritize: ${action}d ${blockers.map((b) => `pid ${b.pid} (${b.applicationName}, ${b.state})`).join(', ')}` }),
        transaction: { timeout: 15_000 },
      },
    ),
  { retries: 3, lockTimeouts: true },
);
emit({ type: 'migration', phase: 'applied', detail: `${step}: applied` });
await prisma.$disconnect();
emit({ type: 'finished' });
