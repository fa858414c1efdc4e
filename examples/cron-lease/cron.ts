/**
 * A cron job that must run on one instance only, though every instance of the service runs this
 * code: the instances elect a leader on a lease (a row in `ormlock_leases`, expiring on the
 * database's clock), and only the leader runs the schedule. If the leader dies, its lease expires
 * after `LEASE_TTL` and another instance takes over; if it shuts down cleanly (SIGTERM), it gives
 * the lease up at once and another takes over at once.
 *
 * The job prunes finished jobs older than `RETENTION` from the `jobs` table every `TICK_MS`.
 *
 * Run: DATABASE_URL=postgres://… npx tsx examples/cron-lease/cron.ts
 *      INSTANCE (default host:pid), TICK_MS (default 60000), LEASE_TTL (default '30s'), RETENTION (default '7 days').
 */
import { hostname } from 'node:os';
import pg from 'pg';
import { type Lease, parseDuration } from 'ormlock';
import { $lock, ensureLeaseTable } from 'ormlock/pg';

const instance = process.env['INSTANCE'] ?? `${hostname()}:${process.pid}`;
const tickMs = Number(process.env['TICK_MS'] ?? 60_000);
const ttl = parseDuration(process.env['LEASE_TTL'] ?? '30s', 'LEASE_TTL');
const retention = process.env['RETENTION'] ?? '7 days';

const pool = new pg.Pool({ connectionString: process.env['DATABASE_URL'], max: 3, application_name: `cron ${instance}` });
// In an app, create the table with a migration (`npx ormlock migrate prisma | drizzle | sql`).
await ensureLeaseTable(pool);

/** One run of the job. Idempotent, so a run cut short by a lost lease does no harm. */
async function pruneFinishedJobs(lease: Lease): Promise<void> {
  const { rowCount } = await pool.query(`DELETE FROM jobs WHERE status = 'done' AND run_at < now() - $1::interval`, [retention]);
  console.log(`${instance} pruned ${rowCount ?? 0} done jobs (fencing token ${lease.fencingToken})`);
}

/** Runs the job now and every `tickMs` while `lease` is held. */
function schedule(lease: Lease): void {
  const run = () => pruneFinishedJobs(lease).catch((error: unknown) => console.error(`${instance} job failed:`, error));
  void run();
  const timer = setInterval(() => void run(), tickMs);
  // The lease's signal aborts when it is lost (or given up): stop the schedule there.
  lease.signal.addEventListener('abort', () => clearInterval(timer), { once: true });
}

const leadership = $lock(pool).leader('cron:prune-jobs', {
  ttl,
  onElected: (lease) => {
    console.log(`${instance} elected leader (fencing token ${lease.fencingToken})`);
    schedule(lease);
  },
  onDemoted: (error) => console.log(`${instance} no longer leader${error ? `: ${error.message}` : ''}`),
  onError: (error) => console.error(`${instance} leader election:`, error),
});
console.log(`${instance} competing for leadership of cron:prune-jobs`);

process.once('SIGTERM', () => {
  void (async () => {
    await leadership.stop(); // releases the lease: another instance takes over at once
    await pool.end();
    console.log(`${instance} stopped`);
  })();
});
