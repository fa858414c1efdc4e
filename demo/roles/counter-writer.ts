/**
 * Demo role: increments a shared counter with a read-modify-write that holds no lock. The write
 * is `updateVersioned` (compare-and-swap on the version column); a writer that lost the race gets
 * `StaleVersionError` and `withRetry` runs the read and the write again. No increment is lost.
 */
import { eq } from 'drizzle-orm';
import { drizzle } from 'drizzle-orm/node-postgres';
import pg from 'pg';
import { withRetry } from 'ormlock';
import { updateVersioned } from 'ormlock/drizzle';
import { counters } from '../../drizzle/schema.js';
import { SCENE } from '../scene.js';
import { databaseUrl, emit, randomInt, sleep } from '../protocol.js';

const pool = new pg.Pool({ connectionString: await databaseUrl(), max: 1 });
const db = drizzle({ client: pool });
emit({ type: 'ready' });

for (let i = 0; i < SCENE.incrementsPerWriter; i++) {
  let retries = 0;
  const updated = await withRetry(
    async () => {
      const [counter] = await db.select().from(counters).where(eq(counters.name, 'hits'));
      if (!counter) throw new Error('no counter "hits"');
      return updateVersioned(db, counters, { where: eq(counters.name, 'hits'), version: counter.version, set: { value: counter.value + 1 } });
    },
    { retries: 100, backoff: { initial: '2ms', max: '50ms' }, onRetry: () => void retries++ },
  );
  emit({ type: 'increment', value: updated.value, retries });
  await sleep(randomInt(10, 60));
}
await pool.end();
emit({ type: 'finished' });
