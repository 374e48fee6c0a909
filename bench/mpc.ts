/**
 * `npm run bench:mpc -- --json [--scale 0.1]`: the secret-sharing engine with the dealer provider,
 * offline (correlated randomness obtained in advance, from a plan) and online apart, for the
 * issue's workloads: 1,000,000 elementwise products, a 128x784 by 784x128 matrix product,
 * 1,000,000 comparisons of 64-bit values and 1,000,000 ReLUs (`--scale` shrinks the counts).
 * Both parties and the dealer run in this process over in-memory channels, so the times are
 * computation, with rounds and bytes counted for a network. Baseline from the same run: the same
 * operation on plaintext ring arrays.
 */
import { randomBytes } from 'node:crypto';
import { channelPair } from '../src/mpc/channel.js';
import { DealerProvider, TrustedDealer } from '../src/mpc/provider/dealer.js';
import { PlanningProvider, PreprocessedProvider } from '../src/mpc/provider/preprocessed.js';
import { mpcParty, type MpcParty } from '../src/mpc/party.js';
import * as ring from '../src/mpc/ring.js';
import { mul, matmul, splitSecret, type ArithmeticShare } from '../src/mpc/primitives/arithmetic.js';
import { lessThan, relu } from '../src/mpc/primitives/binary.js';
import { parseFlags, round } from './measure.js';

const flags = parseFlags(process.argv.slice(2));
const scale = Number(flags.get('scale') ?? 1);
const json = flags.has('json');
const log = (s: string) => json || console.error(s);

type Op = (p: MpcParty, x: ArithmeticShare, y: ArithmeticShare) => Promise<unknown>;
const random = (n: number) => new BigUint64Array(new Uint8Array(randomBytes(8 * n)).buffer);

async function measureOp(op: string, f: Op, xShape: number[], yShape: number[], plain: (x: BigUint64Array, y: BigUint64Array) => unknown) {
  const [x, y] = [random(xShape.reduce((a, b) => a * b)), random(yShape.reduce((a, b) => a * b))];
  if (op === 'lt64') for (let i = 0; i < x.length; i++) [x[i], y[i]] = [x[i]! >> 2n, y[i]! >> 2n]; // |x - y| < 2^63
  const [x0, x1] = splitSecret(xShape, x);
  const [y0, y1] = splitSecret(yShape, y);
  // Plan: run once on zero material to learn what the computation consumes.
  const [pc0, pc1] = channelPair();
  const [plan0, plan1] = [new PlanningProvider(0), new PlanningProvider(1)];
  await Promise.all([f(mpcParty(0, pc0, plan0), x0, y0), f(mpcParty(1, pc1, plan1), x1, y1)]);
  // Offline: both parties obtain the planned material (party 1 from the dealer).
  const dealer = new TrustedDealer();
  let t = performance.now();
  const [pre0, pre1] = await Promise.all([
    PreprocessedProvider.prepare(new DealerProvider(0, dealer.seed0), plan0.plan),
    PreprocessedProvider.prepare(new DealerProvider(1, dealer.seed1, dealer), plan1.plan),
  ]);
  const offlineSeconds = (performance.now() - t) / 1000;
  // Online.
  const [c0, c1] = channelPair();
  t = performance.now();
  await Promise.all([f(mpcParty(0, c0, pre0), x0, y0), f(mpcParty(1, c1, pre1), x1, y1)]);
  const onlineSeconds = (performance.now() - t) / 1000;
  t = performance.now();
  plain(x, y);
  const plaintextSeconds = (performance.now() - t) / 1000;
  const row = {
    provider: 'dealer',
    op,
    elements: op === 'matmul' ? xShape[0]! * yShape[1]! : x.length,
    onlineSeconds: round(onlineSeconds),
    offlineSeconds: round(offlineSeconds),
    rounds: c0.counters.rounds,
    bytes: c0.counters.bytesSent + c1.counters.bytesSent,
    offlineBytes: pre1.counters.offlineBytes,
    plaintextSeconds: round(plaintextSeconds),
  };
  log(JSON.stringify(row));
  return row;
}

const n = Math.max(64, Math.round(1_000_000 * scale));
const results = [
  await measureOp('mul', mul, [n], [n], ring.mul),
  await measureOp('matmul', matmul, [128, 784], [784, 128], (a, b) => ring.matmul(a, b, 128, 784, 128)),
  await measureOp('lt64', lessThan, [n], [n], (a, b) => a.map((v, i) => (ring.toSigned(v) < ring.toSigned(b[i]!) ? 1n : 0n))),
  await measureOp(
    'relu',
    (p, x) => relu(p, x),
    [n],
    [n],
    (a) => a.map((v) => (ring.toSigned(v) > 0n ? v : 0n)),
  ),
];
console.log(
  JSON.stringify({ results, scale, date: new Date().toISOString(), note: 'both parties and the dealer in one process, in-memory channels' }),
);
