/**
 * Demo role: one instance of a service whose cron job must run on one instance at a time. Every
 * instance runs leader election on a lease (`$lock(pool).leader`); the leader runs the job in a
 * loop, and every write of the job is fenced with the lease's token, so a leader that was paused
 * past its lease (the main process SIGSTOPs it) cannot overwrite the work of its successor.
 * Runs until SIGTERM, which gives leadership up.
 */
import pg from 'pg';
import { fencingCondition, type Lease } from 'ormlock';
import { $lock } from 'ormlock/pg';
import { SCENE } from '../scene.js';
import { databaseUrl, emit, sleep } from '../protocol.js';

const instance = process.argv[2] ?? `cron-${process.pid}`;
const pool = new pg.Pool({ connectionString: await databaseUrl(), max: 3, application_name: instance });
pool.on('error', () => {});

async function runJob(lease: Lease): Promise<void> {
  const token = lease.fencingToken.toString();
  while (!lease.signal.aborted) {
    await sleep(150); // the job's work; a pause here (GC, SIGSTOP) can outlast the lease
    const { rowCount } = await pool.query(`UPDATE demo_cron SET fence = $1, runs = runs + 1 WHERE id = 1 AND ${fencingCondition('fence', '$1')}`, [token]);
    const accepted = rowCount === 1;
    await pool.query('INSERT INTO demo_cron_log (instance, token, accepted) VALUES ($1, $2, $3)', [instance, token, accepted]);
    emit({ type: 'tick', token, accepted });
  }
}

let job: Promise<void> | undefined;
const leadership = $lock(pool).leader(SCENE.leaseName, {
  ttl: '1s',
  onElected: (lease) => {
    emit({ type: 'elected', token: lease.fencingToken.toString() });
    job = runJob(lease).catch((error: unknown) => emit({ type: 'demoted', reason: `job failed: ${String(error)}` }));
  },
  onDemoted: (error) => emit({ type: 'demoted', reason: error ? error.message : 'stopped' }),
  // The election loop retries after errors by itself; show them rather than hide them.
  onError: (error) => process.stderr.write(`leader election: ${String(error)}\n`),
});
emit({ type: 'ready' });

process.once('SIGTERM', () => {
  void (async () => {
    await leadership.stop();
    await job; // its loop ends with the lease's signal
    await pool.end();
    emit({ type: 'finished' });
  })();
});
