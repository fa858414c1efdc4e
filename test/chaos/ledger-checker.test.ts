/**
 * The chaos checker (`ledger-checker.ts`) must fail when mutual exclusion is broken. Ledgers are
 * written into the real chaos tables and read back the way the chaos run reads them: a correct
 * ledger passes, and each way of breaking exclusion (overlap, a smaller token accepted, a lost
 * update, a lost row, a lock never taken again after a fault) is reported, and only that.
 * A real contended run through the locks themselves passes too.
 */
import type pg from 'pg';
import { beforeEach, describe, expect, test } from 'vitest';
import { ensureLeaseTable } from '../../src/pg/index.js';
import { useTestDatabase } from '../helpers/database.js';
import { CHAOS_SCHEMA_SQL, LOCK_KINDS, LOCK_NAMES, type LockKind, runSection, seedCounters } from './critical-sections.js';
import { checkLedger, PROBE_WORKER, readLedger, type ViolationKind } from './ledger-checker.js';

const db = useTestDatabase({
  setup: async (client) => {
    await client.query(CHAOS_SCHEMA_SQL);
    await seedCounters(client);
    await ensureLeaseTable(client);
  },
});

beforeEach(async () => {
  await db.query('TRUNCATE chaos_ledger, chaos_faults');
  await db.query('UPDATE chaos_counter SET n = 0, fence = NULL');
});

interface Section {
  kind: LockKind;
  name: string;
  token: number;
  /** Microseconds after a fixed base time. */
  start: number;
  end: number;
  worker?: number;
  /** Default: the counter's next value, as a correct section would write. */
  seq?: number;
}

const BASE = '2026-01-01 00:00:00+00';
const at = (micros: number): string => `'${BASE}'::timestamptz + make_interval(secs => ${micros} / 1000000.0)`;

/** Writes sections as the chaos sections would: a ledger row and the counter they advanced. */
async function write(sections: readonly Section[], options: { counterBump?: boolean } = {}): Promise<void> {
  for (const s of sections) {
    const [counter] = await db.query<{ n: string }>('SELECT n::text FROM chaos_counter WHERE kind = $1 AND name = $2', [s.kind, s.name]);
    const seq = s.seq ?? Number(counter!.n) + 1;
    await db.query(
      `INSERT INTO chaos_ledger (kind, name, token, seq, started_at, ended_at, worker)
       VALUES ($1, $2, $3, $4, ${at(s.start)}, ${at(s.end)}, $5)`,
      [s.kind, s.name, s.token, seq, s.worker ?? 1],
    );
    if (options.counterBump !== false) await db.query('UPDATE chaos_counter SET n = greatest(n, $3) WHERE kind = $1 AND name = $2', [s.kind, s.name, seq]);
  }
}

/** A correct history for every lock: two serial sections and the final probe. */
async function writeCorrectHistory(): Promise<void> {
  let t = 0;
  let token = 100;
  for (const kind of LOCK_KINDS) {
    for (const name of LOCK_NAMES) {
      await write([
        { kind, name, token: (token += 1), start: (t += 10), end: (t += 100), worker: 1 },
        { kind, name, token: (token += 1), start: (t += 1), end: (t += 100), worker: 2 },
        { kind, name, token: (token += 1), start: (t += 1), end: (t += 5), worker: PROBE_WORKER },
      ]);
    }
  }
}

async function violations(): Promise<{ kind: ViolationKind; lock: string }[]> {
  return checkLedger(await readLedger(db.pool())).map(({ kind, lock }) => ({ kind, lock }));
}

describe('the chaos ledger checker', () => {
  test('a correct ledger has no violation', async () => {
    await writeCorrectHistory();
    expect(await violations()).toEqual([]);
  });

  test('sections that touch but do not overlap pass; one microsecond of overlap is reported', async () => {
    await writeCorrectHistory();
    // Ends at 1_000_000 µs; the next starts exactly then: no overlap.
    await write([
      { kind: 'advisory', name: 'a', token: 500, start: 900_000, end: 1_000_000 },
      { kind: 'advisory', name: 'a', token: 501, start: 1_000_000, end: 1_000_050 },
    ]);
    expect(await violations()).toEqual([]);
    await write([
      { kind: 'advisory', name: 'b', token: 600, start: 2_000_000, end: 2_100_000 },
      { kind: 'advisory', name: 'b', token: 601, start: 2_099_999, end: 2_200_000 },
    ]);
    expect(await violations()).toEqual([{ kind: 'overlap', lock: 'advisory:b' }]);
  });

  test('a section that started while another held the name is an overlap', async () => {
    await writeCorrectHistory();
    await write([
      { kind: 'row', name: 'c', token: 700, start: 5_000_000, end: 5_500_000, worker: 3 },
      { kind: 'row', name: 'c', token: 701, start: 5_200_000, end: 5_300_000, worker: 4 },
    ]);
    expect(await violations()).toEqual([{ kind: 'overlap', lock: 'row:c' }]);
  });

  test('an accepted write with a token below the previous one is reported', async () => {
    await writeCorrectHistory();
    // A paused lease holder (token 800) writing after the holder with token 900: what the
    // fencing guard exists to refuse.
    await write([
      { kind: 'lease', name: 'a', token: 900, start: 6_000_000, end: 6_100_000 },
      { kind: 'lease', name: 'a', token: 800, start: 6_200_000, end: 6_300_000 },
    ]);
    expect(await violations()).toEqual([{ kind: 'token', lock: 'lease:a' }]);
  });

  test('a lost update (two sections wrote the same sequence number) is reported', async () => {
    await writeCorrectHistory();
    const [counter] = await db.query<{ n: string }>(`SELECT n::text FROM chaos_counter WHERE kind = 'advisory' AND name = 'c'`);
    const seq = Number(counter!.n) + 1;
    await write([
      { kind: 'advisory', name: 'c', token: 1_000, start: 7_000_000, end: 7_100_000, seq },
      { kind: 'advisory', name: 'c', token: 1_001, start: 7_200_000, end: 7_300_000, seq },
    ]);
    const found = await violations();
    expect(found.length).toBeGreaterThan(0);
    expect(found.every((v) => v.kind === 'lost-or-doubled' && v.lock === 'advisory:c')).toBe(true);
  });

  test('a counter advanced without its ledger row (a lost row) is reported', async () => {
    await writeCorrectHistory();
    await db.query(`UPDATE chaos_counter SET n = n + 1 WHERE kind = 'row' AND name = 'a'`);
    const found = await violations();
    expect(found.length).toBeGreaterThan(0);
    expect(found.every((v) => v.kind === 'lost-or-doubled' && v.lock === 'row:a')).toBe(true);
  });

  test('a lock never taken after a fault aimed at it, or by the final probe, is reported', async () => {
    await writeCorrectHistory();
    await db.query(`INSERT INTO chaos_faults (fault, kind, name, worker, at) VALUES ('sigkill', 'lease', 'b', 3, ${at(99_000_000)})`);
    expect(await violations()).toEqual([{ kind: 'not-reacquired', lock: 'lease:b' }]);
    await db.query('TRUNCATE chaos_faults');
    await db.query(`DELETE FROM chaos_ledger WHERE kind = 'advisory' AND name = 'a' AND worker = $1`, [PROBE_WORKER]);
    await db.query(`UPDATE chaos_counter SET n = n - 1 WHERE kind = 'advisory' AND name = 'a'`);
    expect(await violations()).toEqual([{ kind: 'not-reacquired', lock: 'advisory:a' }]);
  });

  test('a server restart must be followed by an acquisition of every lock', async () => {
    await writeCorrectHistory();
    await db.query(`INSERT INTO chaos_faults (fault, at) VALUES ('restart-fast', ${at(99_000_000)})`);
    const found = await violations();
    expect(found).toHaveLength(LOCK_KINDS.length * LOCK_NAMES.length);
    expect(new Set(found.map((v) => v.kind))).toEqual(new Set(['not-reacquired']));
  });

  test('real contended sections through every lock kind pass the checker', async () => {
    const pools: pg.Pool[] = [db.pool({ max: 3 }), db.pool({ max: 3 }), db.pool({ max: 3 })];
    const events = { enter: () => {}, fenced: () => {} };
    // Three workers on one name of each kind at once, a few rounds: the locks serialize them.
    for (let round = 0; round < 4; round += 1) {
      await Promise.all(
        pools.flatMap((pool, i) =>
          LOCK_KINDS.map((kind) => runSection(kind, 'a', { pool, worker: i + 1, broken: false, workSeconds: 0.005, events, leaseWait: '10s' })),
        ),
      );
    }
    for (const kind of LOCK_KINDS) {
      for (const name of LOCK_NAMES) {
        expect(await runSection(kind, name, { pool: pools[0]!, worker: PROBE_WORKER, broken: false, workSeconds: 0, events })).toBe(true);
      }
    }
    const ledger = await readLedger(db.pool());
    expect(ledger.rows.filter((row) => row.worker !== PROBE_WORKER)).toHaveLength(4 * pools.length * LOCK_KINDS.length);
    expect(checkLedger(ledger)).toEqual([]);
  });
});
