/**
 * `row(model, { of })` through Prisma, against real PostgreSQL sessions: the related rows `of`
 * names are really locked (a second connection's `FOR UPDATE NOWAIT` on them fails with 55P03),
 * relations only filtered in `where` are not, and `nowait` / `skipLocked` / `timeout` / `strength`
 * apply to the related rows too.
 */
import type pg from 'pg';
import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import { InvalidLockArgumentError, LockNotAvailableError } from '../src/index.js';
import { lockExtension } from '../src/prisma/index.js';
import { useTestDatabase } from './helpers/database.js';

const db = useTestDatabase({ migrations: 'prisma' });

const makeClient = () => db.prisma().$extends(lockExtension());
let prisma: ReturnType<typeof makeClient>;
let other: pg.Client;

beforeAll(async () => {
  prisma = makeClient();
  other = await db.client();
});
afterAll(async () => {
  await other.query('ROLLBACK').catch(() => {});
});

beforeEach(async () => {
  await db.query('TRUNCATE accounts, memberships RESTART IDENTITY CASCADE');
  await db.query(`INSERT INTO accounts (owner, balance) VALUES ('ann', 10), ('bob', 20), ('cy', 30)`);
  await db.query(`INSERT INTO memberships (org_id, user_id, role) VALUES (1, 1, 'owner'), (1, 2, 'member')`);
  // 1: ann → bob, approved by (1, 1), refunded; 2: bob → cy, no approver.
  await db.query(`INSERT INTO transfers (from_id, to_id, amount, approver_org_id, approver_user_id) VALUES (1, 2, 5, 1, 1), (2, 3, 7, NULL, NULL)`);
  await db.query(`INSERT INTO refunds (transfer_id, reason) VALUES (1, 'typo')`);
});

/** Whether another session could lock the rows `sql` selects right now: `FOR UPDATE NOWAIT`, 55P03 when a row is taken. */
async function freeToLock(sql: string): Promise<boolean> {
  try {
    await other.query(`${sql} FOR UPDATE NOWAIT`);
    return true;
  } catch (error) {
    if ((error as { code?: string }).code === '55P03') return false;
    throw error;
  }
}

const account = (id: number) => freeToLock(`SELECT id FROM accounts WHERE id = ${id}`);
const transfer = (id: number) => freeToLock(`SELECT id FROM transfers WHERE id = ${id}`);

/** Runs `lock` in a transaction and, while it is open, `check`; then ends the transaction. */
async function whileHeld<T>(lock: (tx: Parameters<Parameters<typeof prisma.$transaction>[0]>[0]) => Promise<T>, check: (result: T) => Promise<void>): Promise<void> {
  await prisma.$transaction(async (tx) => {
    await check(await lock(tx));
  });
}

describe('row(model, { of })', () => {
  test("of: ['fromAccount'] locks the transfer's source account too; the destination stays free", async () => {
    await whileHeld(
      (tx) => tx.$lock.row('Transfer', { where: { id: 1 }, of: ['fromAccount'] }),
      async (rows) => {
        expect(rows.map((row) => row.id)).toEqual([1]);
        expect(await transfer(1)).toBe(false);
        expect(await account(1)).toBe(false);
        expect(await account(2)).toBe(true);
        expect(await transfer(2)).toBe(true);
      },
    );
    expect(await account(1)).toBe(true);
  });

  test('without of, a relation filter reads the related rows and locks only the model’s own', async () => {
    await whileHeld(
      (tx) => tx.$lock.row('Transfer', { where: { fromAccount: { owner: 'ann' }, toAccount: { is: { owner: 'bob' } } } }),
      async (rows) => {
        expect(rows.map((row) => row.id)).toEqual([1]);
        expect(await transfer(1)).toBe(false);
        expect(await account(1)).toBe(true);
        expect(await account(2)).toBe(true);
      },
    );
  });

  test('both accounts, in one statement; rows are the model’s own, typed and valued as findMany returns them', async () => {
    await whileHeld(
      (tx) => tx.$lock.row('Transfer', { where: { amount: { gt: 1 } }, orderBy: { id: 'asc' }, of: ['fromAccount', 'toAccount', 'Transfer'] }),
      async (rows) => {
        expect(rows).toEqual(await prisma.transfer.findMany({ orderBy: { id: 'asc' } }));
        for (const id of [1, 2, 3]) expect(await account(id)).toBe(false);
      },
    );
  });

  test('an optional relation in of is an inner join: a row without the related row is not selected', async () => {
    await whileHeld(
      (tx) => tx.$lock.row('Transfer', { orderBy: { id: 'asc' }, of: ['approver'] }),
      async (rows) => {
        expect(rows.map((row) => row.id)).toEqual([1]);
        // The composite foreign key (org_id, user_id) found the membership and locked it.
        expect(await freeToLock('SELECT role FROM memberships WHERE org_id = 1 AND user_id = 1')).toBe(false);
        expect(await freeToLock('SELECT role FROM memberships WHERE org_id = 1 AND user_id = 2')).toBe(true);
        expect(await transfer(2)).toBe(true);
      },
    );
  });

  test('a one-to-one back relation (the foreign key is on the other side) is locked through its unique key', async () => {
    await whileHeld(
      (tx) => tx.$lock.row('Transfer', { of: ['refund'] }),
      async (rows) => {
        expect(rows.map((row) => row.id)).toEqual([1]);
        expect(await freeToLock('SELECT id FROM refunds WHERE transfer_id = 1')).toBe(false);
      },
    );
    // And from the other side: the refund's transfer and, through a filter, nothing else.
    await whileHeld(
      (tx) => tx.$lock.row('Refund', { where: { transfer: { fromAccount: { owner: 'ann' } } }, of: ['transfer'] }),
      async (rows) => {
        expect(rows).toEqual([{ id: 1, transferId: 1, reason: 'typo' }]);
        expect(await transfer(1)).toBe(false);
        expect(await account(1)).toBe(true);
      },
    );
  });

  test('nowait fails on a busy related row, and only on one of — with of left out it succeeds', async () => {
    await other.query('BEGIN');
    try {
      await other.query('SELECT id FROM accounts WHERE id = 1 FOR UPDATE');
      const error = await prisma.$transaction((tx) => tx.$lock.row('Transfer', { where: { id: 1 }, of: ['fromAccount'], nowait: true })).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(LockNotAvailableError);
      expect(await prisma.$transaction((tx) => tx.$lock.row('Transfer', { where: { id: 1 }, of: ['toAccount'], nowait: true }))).toHaveLength(1);
      expect(await prisma.$transaction((tx) => tx.$lock.row('Transfer', { where: { id: 1 }, nowait: true }))).toHaveLength(1);
    } finally {
      await other.query('ROLLBACK');
    }
  });

  test('skipLocked leaves out the rows whose related row is busy', async () => {
    await other.query('BEGIN');
    try {
      await other.query('SELECT id FROM accounts WHERE id = 1 FOR UPDATE');
      const ids = async (of?: ('fromAccount' | 'toAccount')[]) =>
        (await prisma.$transaction((tx) => tx.$lock.row('Transfer', { orderBy: { id: 'asc' }, skipLocked: true, ...(of ? { of } : {}) }))).map((row) => row.id);
      expect(await ids(['fromAccount'])).toEqual([2]);
      expect(await ids(['toAccount'])).toEqual([1, 2]);
      expect(await ids()).toEqual([1, 2]);
    } finally {
      await other.query('ROLLBACK');
    }
  });

  test('strength and timeout apply to the related rows too', async () => {
    await whileHeld(
      (tx) => tx.$lock.row('Transfer', { where: { id: 1 }, of: ['fromAccount'], strength: 'share', timeout: '2s' }),
      async (rows) => {
        expect(rows.map((row) => row.id)).toEqual([1]);
        // FOR SHARE admits another FOR SHARE and refuses FOR UPDATE.
        await expect(other.query('SELECT id FROM accounts WHERE id = 1 FOR SHARE NOWAIT')).resolves.toBeDefined();
        expect(await account(1)).toBe(false);
      },
    );
  });

  test('of is checked before any SQL: unknown names, to-many relations, not an array, and claim()', async () => {
    const refused = async (call: () => Promise<unknown>): Promise<string> => {
      const error = await call().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(InvalidLockArgumentError);
      return (error as Error).message;
    };
    await prisma.$transaction(async (tx) => {
      expect(await refused(() => tx.$lock.row('Transfer', { of: ['fromAcount' as never] }))).toMatch(/not a relation of Transfer.*'fromAccount'/);
      expect(await refused(() => tx.$lock.row('Account', { of: ['outgoing' as never] }))).toMatch(/to-many/);
      expect(await refused(() => tx.$lock.row('Transfer', { of: 'fromAccount' as never }))).toMatch(/array/);
      expect(await refused(() => tx.$lock.row('Transfer', { of: ['fromId' as never] }))).toMatch(/not a relation/);
      expect(await refused(() => tx.$lock.claim('Transfer', { of: ['fromAccount'] } as never))).toMatch(/claim\(\) takes no of/);
      // The transaction is still usable: nothing was sent.
      expect(await tx.transfer.count()).toBe(2);
    });
  });
});
