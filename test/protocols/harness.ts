/** Two servers for protocol tests: a key server core behind an in-memory or HTTP transport. */
import { keyServerEngine } from '../../src/mpc/key-server-engine.js';
import { randomBytes } from 'node:crypto';
import { keyGen, WorkerPool, type BcpSecretKey } from '../../src/crypto/index.js';
import { createProtocolPool } from '../../src/protocols/index.js';
import {
  KeyServerCore,
  InMemoryTransport,
  HttpTransport,
  serveHttp,
  type ComputeSideContext,
  type DealerEndpoint,
  type RunningServer,
} from '../../src/protocols/index.js';
import { testSystem } from '../helpers.js';

export interface Harness {
  alice: ComputeSideContext;
  core: KeyServerCore;
  /** Alice's own key pair pk_y (receives SCT output in tests) and a data owner's key. */
  owner: BcpSecretKey;
  target: BcpSecretKey;
  server?: RunningServer;
  hmacKey: Buffer;
  close(): Promise<void>;
}

/** `pools`: give both servers worker pools, as in production. */
/** `dealer`: both servers' endpoints of a running dealer, for the engine's dealer provider. */
export async function harness(
  kind: 'memory' | 'http',
  bits: 512 | 2048 = 512,
  pools = false,
  dealer?: { computeServer: DealerEndpoint; keyServer: DealerEndpoint },
): Promise<Harness> {
  const { msk, params } = testSystem(bits);
  const bobPool = pools ? new WorkerPool(2) : undefined;
  const alicePool = pools ? createProtocolPool(2) : undefined;
  const closePools = async () => {
    await bobPool?.close();
    await alicePool?.close();
  };
  const core = new KeyServerCore(msk, bobPool);
  const owner = keyGen(params);
  const target = keyGen(params);
  core.register(owner.publicKey);
  core.register(target.publicKey);
  const hmacKey = randomBytes(32);
  // The key server's engine (hidden comparisons) in front of its homomorphic protocols, as in production.
  const { handle } = keyServerEngine(core, core.handle, undefined, dealer?.keyServer);
  if (kind === 'memory') {
    return {
      alice: { transport: new InMemoryTransport(handle), pool: alicePool, dealer: dealer?.computeServer },
      core,
      owner,
      target,
      hmacKey,
      close: closePools,
    };
  }
  const server = await serveHttp(handle, { hmacKey });
  return {
    alice: { transport: new HttpTransport(server.url, hmacKey), pool: alicePool, dealer: dealer?.computeServer },
    core,
    owner,
    target,
    server,
    hmacKey,
    close: async () => {
      await server.close();
      await closePools();
    },
  };
}

/**
 * Two-sample Kolmogorov-Smirnov: true when the samples are NOT distinguishable at alpha = 0.001.
 * The leakage suite runs eight such tests; at 0.01 one of them would reject by chance in about 8% of
 * CI runs even for perfectly independent views.
 */
export function ksSameDistribution(a: readonly number[], b: readonly number[]): { d: number; critical: number; same: boolean } {
  const x = [...a].sort((p, q) => p - q);
  const y = [...b].sort((p, q) => p - q);
  let i = 0;
  let j = 0;
  let d = 0;
  while (i < x.length && j < y.length) {
    const v = Math.min(x[i]!, y[j]!);
    while (i < x.length && x[i]! <= v) i++;
    while (j < y.length && y[j]! <= v) j++;
    d = Math.max(d, Math.abs(i / x.length - j / y.length));
  }
  const critical = 1.949 * Math.sqrt((x.length + y.length) / (x.length * y.length));
  return { d, critical, same: d <= critical };
}

/** A memory harness whose key server records every value it decrypts, by protocol (for leakage and attack tests). */
export async function recordingHarness(): Promise<{ h: Harness; seen: Map<string, bigint[]> }> {
  const h = await harness('memory');
  const seen = new Map<string, bigint[]>();
  h.core.observer = (protocol, values) => seen.set(protocol, [...(seen.get(protocol) ?? []), ...values]);
  return { h, seen };
}
