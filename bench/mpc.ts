/**
 * `npm run bench:mpc -- --json [--scale 0.1] [--providers dealer,ot] [--ops mul,lt130]`: the
 * secret-sharing engine with both servers as separate processes on loopback, talking over the
 * servers' HMAC-authenticated channel (its persistent stream), and the dealer as a third process
 * (`ciphermine dealer start`). Per provider and op: the offline phase (all planned correlated
 * randomness obtained, both parties at once) and the online phase apart, with rounds and bytes.
 * Workloads: 1,000,000 elementwise products, a 128x784 by 784x128 matrix product, 1,000,000
 * comparisons of 64-bit values, 1,000,000 ReLUs, 100,000 comparisons of 130-bit values (Z_2^132);
 * `--scale` shrinks the counts. Dealer rows report the median of three runs (`--repeat`), ot rows
 * one run. Baseline from the same run: the op on plaintext (one process).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { channelPair } from '../src/mpc/channel.js';
import { mpcParty } from '../src/mpc/party.js';
import { PlanningProvider } from '../src/mpc/provider/preprocessed.js';
import { startRemote, TransportChannel } from '../src/mpc/server-channel.js';
import { HttpTransport } from '../src/protocols/http-transport.js';
import * as ring from '../src/mpc/ring.js';
import { nativeRingKernels } from '../src/mpc/ring.js';
import { nativeBitTranspose } from '../src/mpc/bit-matrix.js';
import { inputs, runOp, shapes, type OpName } from './mpc-ops.js';
import { runParty, type PartyStats, type SessionArgs } from './mpc-party.js';
import { parseFlags, round } from './measure.js';
import { spawnDealer, spawnJson } from './children.js';

const flags = parseFlags(process.argv.slice(2));
const scale = Number(flags.get('scale') ?? 1);
const json = flags.has('json');
const log = (s: string) => json || console.error(s);
const list = (name: string, all: string[]) => (typeof flags.get(name) === 'string' ? String(flags.get(name)).split(',') : all);
const providers = list('providers', ['dealer', 'ot']) as Array<'dealer' | 'ot'>;
const ops = list('ops', ['mul', 'matmul', 'lt64', 'relu', 'lt130']) as OpName[];

const hmacKey = randomBytes(32);
const party1 = await spawnJson([join(import.meta.dirname, 'mpc-party.js')], { CIPHERMINE_BENCH_KEY: hmacKey.toString('hex') });
const transport = new HttpTransport(party1.url!, hmacKey);
const dealerDir = mkdtempSync(join(tmpdir(), 'cm-dealer-'));
const dealer = providers.includes('dealer') ? await spawnDealer(dealerDir) : undefined;

/** What the op consumes, learned by running both halves once in memory on planning providers. */
async function plan(op: OpName, provider: 'dealer' | 'ot', base: Omit<SessionArgs, 'plan' | 'session'>) {
  const [c0, c1] = channelPair();
  const [p0, p1] = [new PlanningProvider(0, provider), new PlanningProvider(1, provider)];
  const [x0, y0] = inputs(0, base);
  const [x1, y1] = inputs(1, base);
  await Promise.all([runOp(op, mpcParty(0, c0, p0), x0, y0), runOp(op, mpcParty(1, c1, p1), x1, y1)]);
  return p0.plan;
}

function plaintextSeconds(op: OpName, provider: 'dealer' | 'ot'): number {
  const s = shapes(op, scale, provider);
  const [x, y] = [ring.random(s.x.reduce((a, b) => a * b)), ring.random(s.y.reduce((a, b) => a * b))];
  const t = performance.now();
  if (op === 'mul') ring.mul(x, y);
  else if (op === 'matmul') ring.matmul(x, y, s.x[0]!, 784, 128);
  else if (op === 'relu') x.map((v) => (ring.toSigned(v) > 0n ? v : 0n));
  else x.map((v, i) => (ring.toSigned(v) < ring.toSigned(y[i]!) ? 1n : 0n));
  return (performance.now() - t) / 1000;
}

/** One measured run of an op: both parties' stats. */
async function runOnce(provider: 'dealer' | 'ot', op: OpName): Promise<[PartyStats, PartyStats]> {
  const base = { op, provider, scale, seedX: randomBytes(32).toString('hex'), seedR: randomBytes(32).toString('hex') };
  const session = `bench-${op}-${provider}-${randomBytes(6).toString('hex')}`;
  const args: SessionArgs = { ...base, session, plan: await plan(op, provider, base) };
  const mine = dealer && provider === 'dealer' ? { ...args, dealer: { url: dealer.url!, keyFile: dealer.computeServer! } } : args;
  const theirs = dealer && provider === 'dealer' ? { ...args, dealer: { url: dealer.keyServerUrl!, keyFile: dealer.keyServer! } } : args;
  const { provider: randomness, ...wire } = theirs;
  await startRemote(transport, 'bench.op', session, { ...wire, randomness });
  const main = new TransportChannel(transport, session);
  const stats0 = await runParty(0, main, () => new TransportChannel(transport, `${session}:ot`), mine);
  const stats1 = JSON.parse(Buffer.from(await main.exchange(new Uint8Array(0))).toString('utf8')) as PartyStats;
  return [stats0, stats1];
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
/** Dealer rows take seconds, so each is run three times (fresh session and inputs) and the median reported; ot rows take minutes and run once. */
const repeats = (provider: 'dealer' | 'ot') => Number(flags.get('repeat') ?? (provider === 'dealer' ? 3 : 1));

const results = [];
for (const provider of providers) {
  for (const op of ops) {
    const runs: Array<[PartyStats, PartyStats]> = [];
    for (let r = 0; r < repeats(provider); r++) runs.push(await runOnce(provider, op));
    const [stats0, stats1] = runs[0]!;
    const row = {
      provider,
      op,
      elements: shapes(op, scale, provider).elements,
      onlineSeconds: round(median(runs.map(([a, b]) => Math.max(a.onlineSeconds, b.onlineSeconds)))),
      offlineSeconds: round(median(runs.map(([a, b]) => Math.max(a.offlineSeconds, b.offlineSeconds)))),
      rounds: stats0.rounds,
      bytes: stats0.bytesSent + stats1.bytesSent,
      offlineBytes: stats0.offlineBytes + stats1.offlineBytes,
      plaintextSeconds: round(op === 'lt130' ? NaN : plaintextSeconds(op, provider)),
      runs: runs.length,
    };
    log(JSON.stringify(row));
    results.push(row);
  }
}
rmSync(dealerDir, { recursive: true, force: true });
console.log(
  JSON.stringify({
    results,
    scale,
    date: new Date().toISOString(),
    native: { ringMatmul: nativeRingKernels, bitTranspose: nativeBitTranspose },
    note: 'party 0 (this process) and party 1 (a child process) over the HMAC-authenticated server channel on loopback (its persistent stream for the rounds); the dealer a third process',
  }),
);
process.exit(0);
