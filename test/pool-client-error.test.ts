/**
 * `$lock(pool).advisory(key, fn)` holds a pooled client while `fn` runs. node-postgres gives a
 * checked-out client no 'error' listener, so a backend terminated while `fn` awaits between two
 * statements (pg_terminate_backend, `prioritize` from another process, a server restart) used to
 * be an unhandled 'error' event that ended the whole process. It must reject the call instead.
 * (Found by the chaos run, `npm run test:chaos`.)
 */
import { fileURLToPath } from 'node:url';
import { expect, test } from 'vitest';
import { useTestDatabase } from './helpers/database.js';
import { spawnNode } from './helpers/spawn-node.js';

const db = useTestDatabase();

test('a terminated backend under the function form rejects the call and the process lives on', async () => {
  await using child = spawnNode(fileURLToPath(new URL('./helpers/fixtures/terminated-holder.ts', import.meta.url)), [db.url]);
  const pid = Number((await child.waitForLine(/^holding \d+$/)).split(' ')[1]);
  expect(await db.query('SELECT pg_terminate_backend($1) AS ok', [pid])).toEqual([{ ok: true }]);
  await child.waitForLine('alive');
  // The next statement fails (the client is no longer queryable), and so does the call.
  expect(child.lines.filter((line) => line.startsWith('rejected '))).toHaveLength(1);
  expect(child.lines).not.toContain('rejected none');
  expect(await child.exited).toEqual({ code: 0, signal: null });
});
