/**
 * Demo role: a forgotten reporting session. It reads `memberships` in a transaction and then sits
 * idle in it, holding ACCESS SHARE on the table: any `ALTER TABLE memberships` waits for it, and
 * everything queued behind that ALTER waits too. The migration role ends it with `prioritize`.
 */
import pg from 'pg';
import { SCENE } from '../scene.js';
import { databaseUrl, emit } from '../protocol.js';

const client = new pg.Client({ connectionString: await databaseUrl(), application_name: SCENE.reportApplicationName });
let ended: ((message: string) => void) | undefined;
const terminated = new Promise<string>((resolve) => (ended = resolve));
client.on('error', (error) => ended?.(error.message));
client.on('end', () => ended?.('connection closed'));
await client.connect();
await client.query('BEGIN');
await client.query('SELECT count(*) FROM memberships');
const { rows } = await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
emit({ type: 'holding', pid: rows[0]!.pid });

// Idle in transaction until someone ends the session; give up (and roll back) after 20 s.
let giveUp: () => void = () => {};
const timedOut = new Promise<undefined>((resolve) => (giveUp = () => resolve(undefined)));
const timer = setTimeout(giveUp, 20_000);
const message = await Promise.race([terminated, timedOut]);
clearTimeout(timer);
if (message === undefined) {
  await client.query('ROLLBACK');
  await client.end();
  process.exitCode = 1;
} else {
  emit({ type: 'terminated', message });
}
emit({ type: 'finished' });
