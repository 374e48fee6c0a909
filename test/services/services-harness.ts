/** Both servers in this process on loopback (fast tests); the kill test uses child processes. */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startKeyServer, type KeyServerHandle } from '../../src/services/key-server.js';
import { startComputeServer, type ComputeServerHandle, type ComputeServerOptions } from '../../src/services/compute-server.js';
import { readKeyFile } from '../../src/crypto/index.js';

export interface Services {
  ks: KeyServerHandle;
  cs: ComputeServerHandle;
  dir: string;
  close(): Promise<void>;
}

export async function startServices(keyBits = 512, extra: Partial<ComputeServerOptions> = {}): Promise<Services> {
  const dir = mkdtempSync(join(tmpdir(), 'cm-svc-'));
  const ks = await startKeyServer({ dataDir: join(dir, 'ks'), port: 0, keyBits, workers: 1 });
  const cs = await startComputeServer({
    dataDir: join(dir, 'cs'),
    port: 0,
    keyServerUrl: ks.url,
    channelKey: readKeyFile(ks.channelKeyPath),
    workers: 1,
    ...extra,
  });
  return {
    ks,
    cs,
    dir,
    close: async () => {
      await cs.close();
      await ks.close();
    },
  };
}

export function fixture(name: string): string {
  return readFileSync(new URL(`../../../test/fixtures/${name}`, import.meta.url), 'utf8');
}
