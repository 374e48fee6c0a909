/**
 * Both servers in this process on loopback (fast tests); the kill tests use child processes. The
 * compute server's database is SQLite, or a fresh PostgreSQL database on the PostgreSQL run.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startKeyServer, type KeyServerHandle, type KeyServerOptions } from '../../src/services/key-server.js';
import { startComputeServer, type ComputeServerHandle, type ComputeServerOptions } from '../../src/services/compute-server.js';
import { readKeyFile } from '../../src/crypto/index.js';
import type { Store } from '../../src/services/store/index.js';
import { testDatabase } from './test-database.js';

export interface Services {
  ks: KeyServerHandle;
  cs: ComputeServerHandle;
  dir: string;
  /** The compute server's PostgreSQL URL, or undefined for SQLite in dir/cs. */
  database?: string;
  /** Starts the key server again on its data directory and port (after the test closed it). */
  restartKeyServer(): Promise<Services>;
  close(): Promise<void>;
}

export async function startServices(
  keyBits = 512,
  extra: Partial<ComputeServerOptions> = {},
  keyServerExtra: Partial<KeyServerOptions> = {},
): Promise<Services> {
  const dir = mkdtempSync(join(tmpdir(), 'cm-svc-'));
  const ks = await startKeyServer({ dataDir: join(dir, 'ks'), port: 0, keyBits, workers: 1, ...keyServerExtra });
  const database = await testDatabase();
  const cs = await startComputeServer({
    dataDir: join(dir, 'cs'),
    port: 0,
    keyServerUrl: ks.url,
    channelKey: readKeyFile(ks.channelKeyPath),
    workers: 1,
    database,
    // Every test party registers from 127.0.0.1, so the per-address limit would throttle a busy file
    // (the federated matrix registers dozens of hosts a minute); the limit has its own test.
    registrationsPerMinute: 10_000,
    ...extra,
  });
  const services: Services = {
    ks,
    cs,
    dir,
    database,
    restartKeyServer: async () => {
      const port = Number(new URL(services.ks.url).port);
      services.ks = await startKeyServer({ dataDir: join(dir, 'ks'), port, keyBits, workers: 1 });
      return services;
    },
    close: async () => {
      // services.cs: a test may have restarted the compute server in its place
      await services.cs.close();
      await services.ks.close();
    },
  };
  return services;
}

export function fixture(name: string): string {
  return readFileSync(new URL(`../../../test/fixtures/${name}`, import.meta.url), 'utf8');
}

export async function countRows(store: Store, table: 'chunks' | 'jobs' | 'job_blobs' | 'job_checkpoints' | 'datasets'): Promise<number> {
  const r = await store.db
    .selectFrom(table)
    .select((eb) => eb.fn.countAll().as('n'))
    .executeTakeFirstOrThrow();
  return Number(r.n);
}
