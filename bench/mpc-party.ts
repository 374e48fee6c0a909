/**
 * One party's side of a `bench:mpc` row, the same code in both processes: obtain the planned
 * correlated randomness from the provider (offline), wait for the other party, run the op (online),
 * and report. `node dist/bench/mpc-party.js` runs party 1 as a key-server process: an HMAC-
 * authenticated listener (the servers' own channel) with the engine's session endpoint.
 */
import { readFileSync } from 'node:fs';
import type { PartyChannel } from '../src/mpc/channel.js';
import { mpcParty } from '../src/mpc/party.js';
import { OtProvider } from '../src/mpc/provider/ot.js';
import { remoteDealerProvider } from '../src/mpc/provider/dealer-http.js';
import { PreprocessedProvider } from '../src/mpc/provider/preprocessed.js';
import type { DealerRequest } from '../src/mpc/provider/dealer.js';
import { MpcEndpoint } from '../src/mpc/server-channel.js';
import { serveHttp } from '../src/protocols/http-transport.js';
import { inputs, runOp, type OpArgs } from './mpc-ops.js';

export interface SessionArgs extends OpArgs {
  session: string;
  plan: DealerRequest[];
  /** This party's dealer endpoint and key file (dealer rows). */
  dealer?: { url: string; keyFile: string };
}

export interface PartyStats {
  offlineSeconds: number;
  offlineBytes: number;
  onlineSeconds: number;
  rounds: number;
  bytesSent: number;
}

export async function runParty(party: 0 | 1, main: PartyChannel, ot: () => PartyChannel, a: SessionArgs): Promise<PartyStats> {
  const provider =
    a.provider === 'ot' ? new OtProvider(party, ot()) : await remoteDealerProvider(party, a.dealer!.url, readFileSync(a.dealer!.keyFile), a.session);
  const [x, y] = inputs(party, a);
  let t = performance.now();
  const pre = await PreprocessedProvider.prepare(provider, a.plan);
  const offlineSeconds = (performance.now() - t) / 1000;
  await main.exchange(new Uint8Array(0)); // both parties ready: the online phase starts together
  const [rounds, bytes] = [main.counters.rounds, main.counters.bytesSent];
  t = performance.now();
  await runOp(a.op, mpcParty(party, main, pre), x, y);
  return {
    offlineSeconds,
    offlineBytes: provider.counters.offlineBytes,
    onlineSeconds: (performance.now() - t) / 1000,
    rounds: main.counters.rounds - rounds,
    bytesSent: main.counters.bytesSent - bytes,
  };
}

/** Party 1's process. */
async function keyServerSide(): Promise<void> {
  const endpoint = new MpcEndpoint({ log: (m) => console.error(m) });
  endpoint.register('bench.op', async (channel, args) => {
    const main = channel();
    // On the wire the provider is `randomness`: a start's `provider: 'dealer'` asks the key server's own dealer.
    const { randomness, ...rest } = args as SessionArgs & { randomness: SessionArgs['provider'] };
    const stats = await runParty(1, main, () => channel('ot'), { ...rest, provider: randomness });
    await main.exchange(Buffer.from(JSON.stringify(stats)));
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
}

if (import.meta.url === `file://${process.argv[1]}`) await keyServerSide();
