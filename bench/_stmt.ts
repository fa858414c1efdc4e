import { eq } from 'drizzle-orm';
import { drizzle } from 'drizzle-orm/node-postgres';
import pg from 'pg';
import { jobs } from '../drizzle/schema.js';
import { drizzleRowLocks } from '../src/drizzle/row-locks.js';

const url = 'postgres://postgres@127.0.0.1:5432/probe2';
let captured: { text: string; params: unknown[] } | undefined;
const exec = { query: async (text: string, params: unknown[]) => { captured = { text, params }; return []; }, inTransaction: false } as never;
await drizzleRowLocks(() => exec, drizzle({ client: new pg.Pool() })).claim(jobs, { where: eq(jobs.status, 'pending'), orderBy: jobs.id, set: { status: 'running', lockedBy: 'bench' } });
console.log(captured);
const pool = new pg.Pool({ connectionString: url, max: 1 });
const RAW = `UPDATE jobs SET status = 'running', locked_by = $1 WHERE id = (SELECT id FROM jobs WHERE status = 'pending' ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING *`;
const cols = captured!.text.slice(captured!.text.indexOf('RETURNING'));
const variants: Record<string, [string, unknown[]]> = {
  raw: [RAW, ['bench']],
  orm: [captured!.text, captured!.params],
  ormIdEq: [captured!.text.replace(/WHERE \("jobs"\.tableoid, "jobs"\.ctid\) = \(SELECT tableoid, ctid/, 'WHERE "jobs"."id" = (SELECT "id"'), captured!.params],
  rawCols: [RAW.replace('RETURNING *', cols), ['bench']],
  rawColsNoAlias: [RAW.replace('RETURNING *', cols.replace(/ AS "\w+"/g, '')), ['bench']],
  rawColsBare: [RAW.replace('RETURNING *', cols.replace(/ AS "\w+"/g, '').replace(/"jobs"\./g, '')), ['bench']],
  ormStar: [captured!.text.replace(/RETURNING .*/, 'RETURNING *'), captured!.params],
  ormLimit1: [captured!.text.replace('LIMIT $2', 'LIMIT 1').replace('$3', '$2').replace('$4', '$3'), ['pending', 'running', 'bench']],
};
for (const [k, v] of Object.entries(variants)) console.log(k, v[0]);
await pool.query('UPDATE jobs SET status = \'pending\'');
const times: Record<string, number[]> = {};
for (let round = 0; round < 60; round++) {
  for (const [k, [text, params]] of Object.entries(variants)) {
    for (let i = 0; i < 100; i++) {
      const t = performance.now();
      await pool.query(text, params);
      if (round >= 4) (times[k] ??= []).push(performance.now() - t);
    }
  }
}
for (const [name, list] of Object.entries(times)) {
  list.sort((a, b) => a - b);
  console.log(name.padEnd(8), 'median', list[list.length >> 1]!.toFixed(4), 'p25', list[list.length >> 2]!.toFixed(4));
}
await pool.end();
process.exit(0);
