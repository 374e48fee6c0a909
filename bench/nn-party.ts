/**
 * One server's side of a `bench:nn` training run, the same code in both processes: the engine
 * session over the servers' HMAC channel, the provider (`dealer` as a third process, or `ot`), the
 * offline stages and the online steps of the MLP on this party's shares. Party 1's share of the
 * data is a PRG stream from a seed (as a training upload's key-server share is), party 0's the
 * data minus that stream. `node dist/bench/nn-party.js` runs party 1 as a key-server process.
 */
import { readFileSync } from 'node:fs';
import { stagedTraining } from '../src/analytics/mlp-offline.js';
import { sharedOps } from '../src/analytics/mlp-shared.js';
import { train, type MlpConfig, type Tensor } from '../src/analytics/mlp.js';
import type { PartyChannel } from '../src/mpc/channel.js';
import { mpcParty } from '../src/mpc/party.js';
import { ringAt } from '../src/mpc/prg.js';
import { remoteDealerProvider } from '../src/mpc/provider/dealer-http.js';
import { OtProvider } from '../src/mpc/provider/ot.js';
import { MpcEndpoint } from '../src/mpc/server-channel.js';
import { serveHttp } from '../src/protocols/http-transport.js';

export interface TrainBenchArgs {
  session: string;
  /** The provider (not `provider`: that key asks the key server's own dealer). */
  randomness: 'dealer' | 'ot';
  rows: number;
  features: number;
  targets: number;
  /** Party 1's share of the row-major values is this PRG stream (hex seed). */
  seedR: string;
  config: MlpConfig;
  dealer?: { url: string; keyFile: string };
}

export interface TrainBenchStats {
  seconds: number;
  offlineSeconds: number;
  offlineBytes: number;
  rounds: number;
  bytesSent: number;
}

/** Party 1's share of the values: R. */
export const keyServerShare = (a: TrainBenchArgs): BigUint64Array => ringAt(Buffer.from(a.seedR, 'hex'), 0, a.rows * (a.features + a.targets));

function split(values: BigUint64Array, a: TrainBenchArgs): { x: Tensor; y: Tensor } {
  const [n, d, t] = [a.rows, a.features, a.targets];
  const x = new BigUint64Array(n * d);
  const y = new BigUint64Array(n * t);
  for (let i = 0; i < n; i++) {
    x.set(values.subarray(i * (d + t), i * (d + t) + d), i * d);
    y.set(values.subarray(i * (d + t) + d, (i + 1) * (d + t)), i * t);
  }
  return { x: { shape: [n, d], data: x }, y: { shape: [n, t], data: y } };
}

/** Trains on this party's share; returns its share of every parameter (W_1, b_1, ...) and its counters. */
export async function trainParty(party: 0 | 1, main: PartyChannel, ot: () => PartyChannel, a: TrainBenchArgs, values: BigUint64Array) {
  const provider =
    a.randomness === 'ot'
      ? new OtProvider(party, ot())
      : await remoteDealerProvider(party, a.dealer!.url, readFileSync(a.dealer!.keyFile), a.session);
  const p = mpcParty(party, main, provider);
  const { x, y } = split(values, a);
  await main.exchange(new Uint8Array(0)); // both ready: the clock starts together
  const [rounds, bytes] = [main.counters.rounds, main.counters.bytesSent];
  const { party: staged, staged: sp, before } = stagedTraining(p, a.config);
  const t = performance.now();
  const model = await train(sharedOps(staged), x, y, a.config, undefined, before);
  const stats: TrainBenchStats = {
    seconds: (performance.now() - t) / 1000,
    offlineSeconds: sp.counters.offlineSeconds,
    offlineBytes: sp.counters.offlineBytes,
    rounds: main.counters.rounds - rounds,
    bytesSent: main.counters.bytesSent - bytes,
  };
  const parts = model.weights.flatMap((w, l) => [w.data, model.biases[l]!.data]);
  const flat = new BigUint64Array(parts.reduce((s, q) => s + q.length, 0));
  parts.reduce((at, q) => (flat.set(q, at), at + q.length), 0);
  return { flat, stats };
}

/** Party 1's process: a key-server-like HMAC listener with the engine's session endpoint. */
async function keyServerSide(): Promise<void> {
  const endpoint = new MpcEndpoint({ log: (m) => console.error(m) });
  endpoint.register('bench.train', async (channel, raw) => {
    const a = raw as TrainBenchArgs;
    const main = channel();
    const { flat, stats } = await trainParty(1, main, () => channel('ot'), a, keyServerShare(a));
    // The bench reads party 1's counters and, to measure accuracy, its share of the model.
    await main.exchange(Buffer.from(JSON.stringify(stats)));
    await main.exchange(new Uint8Array(flat.buffer, flat.byteOffset, flat.byteLength));
  });
  const server = await serveHttp(
    async (method, body) => {
      const out = await endpoint.handle(method, body);
      if (!out) throw new Error(`no method ${method}`);
      return out;
    },
    { hmacKey: Buffer.from(process.env.CIPHERMINE_BENCH_KEY!, 'hex'), port: 0 },
  );
  console.log(JSON.stringify({ url: server.url }));
  // Exit cleanly when the bench ends, so a CPU profile (CIPHERMINE_BENCH_PROFILE) is written.
  process.on('SIGTERM', () => process.exit(0));
}

if (import.meta.url === `file://${process.argv[1]}`) await keyServerSide();
