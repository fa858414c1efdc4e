/**
 * Demo role: a transfer handler on Prisma 7. Each transfer locks both accounts with
 * `tx.$lock.row` in one statement, ordered by id, so transfers in opposite directions queue up
 * instead of deadlocking; the balance check and both updates happen under those locks.
 */
import { PrismaPg } from '@prisma/adapter-pg';
import { LockTimeoutError } from 'ormlock';
import { lockExtension } from 'ormlock/prisma';
import { PrismaClient } from '../../prisma/generated/client.js';
import { SCENE } from '../scene.js';
import { databaseUrl, emit, randomInt, sleep } from '../protocol.js';

const prisma = new PrismaClient({ adapter: new PrismaPg({ connectionString: await databaseUrl() }) }).$extends(lockExtension());
emit({ type: 'ready' });

for (let i = 0; i < SCENE.transfersPerHandler; i++) {
  const from = randomInt(1, SCENE.accounts);
  const to = ((from + randomInt(0, SCENE.accounts - 2)) % SCENE.accounts) + 1;
  const amount = `${randomInt(1, 40)}.${String(randomInt(0, 99)).padStart(2, '0')}`;
  let waitedMs = 0;
  const transfer = prisma.$transaction(
    async (tx) => {
      const started = performance.now();
      const locked = await tx.$lock.row('Account', { where: { id: { in: [from, to] } }, orderBy: { id: 'asc' }, timeout: '5s' });
      waitedMs = Math.round(performance.now() - started);
      const source = locked.find((account) => account.id === from);
      if (!source || !locked.some((account) => account.id === to)) throw new Error(`no account ${from} or ${to}`);
      if (source.balance.lessThan(amount)) return false; // refused: would overdraw
      await sleep(randomInt(5, 25)); // the handler's own work, with both rows held
      await tx.account.update({ where: { id: from }, data: { balance: { decrement: amount } } });
      await tx.account.update({ where: { id: to }, data: { balance: { increment: amount } } });
      await tx.$executeRaw`INSERT INTO demo_transfers (from_id, to_id, amount) VALUES (${from}, ${to}, ${amount}::numeric)`;
      return true;
    },
    // Generous on purpose: the demo runs a dozen processes at once, often on a busy machine.
    { maxWait: 10_000, timeout: 20_000 },
  );
  // A request that could not get its rows in time gives up, as an HTTP handler would (503).
  const ok = await transfer.catch((error: unknown) => {
    if (error instanceof LockTimeoutError) return false;
    throw error;
  });
  emit({ type: 'transfer', from, to, amount, ok, waitedMs });
}
await prisma.$disconnect();
emit({ type: 'finished' });
