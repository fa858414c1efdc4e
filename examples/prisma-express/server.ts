/**
 * An HTTP API that moves money between accounts, on Prisma 7 with `@prisma/adapter-pg`.
 *
 * Each transfer runs in an interactive transaction that first locks both account rows
 * (`SELECT … FOR UPDATE`, in id order, so transfers in opposite directions queue instead of
 * deadlocking), then checks the balance and writes. Two requests can never both spend the same
 * money. Written on `node:http` so it runs with no web framework; with Express the handler body
 * is the same (see README.md).
 *
 *   POST /transfers {"from": 1, "to": 2, "amount": "12.50"}  → 200 {"from": "87.50", "to": "112.50"}
 *                                                              → 409 insufficient funds, 404 no such account,
 *                                                                503 accounts busy (lock wait timed out)
 *   GET  /accounts/1                                          → 200 {"id": 1, "owner": "…", "balance": "87.50"}
 *
 * Run: DATABASE_URL=postgres://… PORT=3000 npx tsx examples/prisma-express/server.ts (DATABASE_SCHEMA if not `public`)
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { PrismaPg } from '@prisma/adapter-pg';
import { LockTimeoutError } from 'ormlock';
import { lockExtension } from 'ormlock/prisma';
// Your app's generated client; this one is generated from the repository's prisma/schema.prisma.
import { PrismaClient } from '../../prisma/generated/client.js';

// DATABASE_SCHEMA: the PostgreSQL schema of the tables when it is not `public` (the adapter's option).
const schema = process.env['DATABASE_SCHEMA'];
const adapter = new PrismaPg({ connectionString: process.env['DATABASE_URL'] }, schema ? { schema } : undefined);
const prisma = new PrismaClient({ adapter }).$extends(lockExtension());

/** An error with the HTTP status to answer. */
class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** Moves `amount` from one account to another; resolves both new balances. */
export async function transfer(fromId: number, toId: number, amount: string): Promise<{ from: string; to: string }> {
  return prisma.$transaction(async (tx) => {
    // SELECT … FROM "accounts" WHERE "id" IN ($1, $2) ORDER BY "id" ASC FOR UPDATE
    const locked = await tx.$lock.row('Account', { where: { id: { in: [fromId, toId] } }, orderBy: { id: 'asc' }, timeout: '2s' });
    const from = locked.find((account) => account.id === fromId);
    const to = locked.find((account) => account.id === toId);
    if (!from || !to) throw new HttpError(404, 'no such account');
    // Checked under the lock: no other transfer can change this balance until we commit.
    if (from.balance.lessThan(amount)) throw new HttpError(409, 'insufficient funds');
    const debited = await tx.account.update({ where: { id: fromId }, data: { balance: { decrement: amount } } });
    const credited = await tx.account.update({ where: { id: toId }, data: { balance: { increment: amount } } });
    return { from: debited.balance.toFixed(2), to: credited.balance.toFixed(2) };
  });
}

async function readJson(request: IncomingMessage): Promise<unknown> {
  let body = '';
  for await (const chunk of request) body += String(chunk);
  try {
    return JSON.parse(body);
  } catch {
    throw new HttpError(400, 'body must be JSON');
  }
}

function parseTransfer(body: unknown): { from: number; to: number; amount: string } {
  const { from, to, amount } = (body ?? {}) as Record<string, unknown>;
  if (!Number.isSafeInteger(from) || !Number.isSafeInteger(to) || from === to) throw new HttpError(400, '"from" and "to" must be two different account ids');
  if (typeof amount !== 'string' || !/^\d{1,15}(\.\d{1,2})?$/.test(amount) || Number(amount) === 0) {
    throw new HttpError(400, '"amount" must be a positive decimal string such as "12.50"');
  }
  return { from: from as number, to: to as number, amount };
}

async function route(request: IncomingMessage): Promise<unknown> {
  const url = new URL(request.url ?? '/', 'http://localhost');
  if (request.method === 'POST' && url.pathname === '/transfers') {
    const { from, to, amount } = parseTransfer(await readJson(request));
    return transfer(from, to, amount);
  }
  const account = /^\/accounts\/(\d+)$/.exec(url.pathname);
  if (request.method === 'GET' && account) {
    const found = await prisma.account.findUnique({ where: { id: Number(account[1]) } });
    if (!found) throw new HttpError(404, 'no such account');
    return { id: found.id, owner: found.owner, balance: found.balance.toFixed(2) };
  }
  throw new HttpError(404, 'not found');
}

async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
  let status = 200;
  let body: unknown;
  try {
    body = await route(request);
  } catch (error) {
    if (error instanceof HttpError) [status, body] = [error.status, { error: error.message }];
    else if (error instanceof LockTimeoutError) {
      // Someone held the rows for over 2 s: tell the client to retry rather than queue forever.
      [status, body] = [503, { error: 'accounts busy, retry' }];
      response.setHeader('retry-after', '1');
    } else {
      console.error(error);
      [status, body] = [500, { error: 'internal error' }];
    }
  }
  response.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}

const server = createServer((request, response) => void handle(request, response));
server.listen(Number(process.env['PORT'] ?? 3000), '127.0.0.1', () => {
  const address = server.address();
  console.log(`listening on http://127.0.0.1:${typeof address === 'object' && address ? address.port : '?'}`);
});
process.once('SIGTERM', () => {
  server.close(() => void prisma.$disconnect());
});
