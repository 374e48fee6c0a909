/**
 * `ciphermine demo nn`: seed 002 end to end. A labelled CSV (default: the 1,797 8x8 digits) is split
 * 80/20, stratified by class; the training rows are divided among several owners, who upload them
 * secret-shared; a query client trains a network on the two servers (separate processes, with a
 * dealer process when the provider is `dealer`); the owners decrypt the model jointly; the demo
 * reports train and test accuracy next to the same fixed-point training in plaintext.
 * By default the servers standardise the features on shares (global mean and standard deviation,
 * never opened; analytics/standardise.ts); with `standardise: false` the demo scales each column by
 * its public range instead, before the upload.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DataOwner } from '../clients/data-owner.js';
import { QueryClient } from '../clients/query-client.js';
import { parseNumericCsv } from '../clients/csv.js';
import { argmax, epochLoss, plainOps, predictScores, train, MLP_FRACTION_BITS } from '../analytics/mlp.js';
import * as ring from '../mpc/ring.js';
import { ParameterError } from '../crypto/errors.js';
import { startServerPair, type ChildServer } from './child-server.js';

export const SHIPPED_DIGITS = fileURLToPath(new URL('../../../data/digits.csv', import.meta.url));

export interface NnDemoOptions {
  data: string;
  label: string;
  /** Hidden widths (the input and output widths come from the data). */
  hidden: number[];
  /** Standardise on the servers (default), or scale by the public range before the upload. */
  standardise?: boolean;
  epochs: number;
  batch: number;
  lr: number;
  owners: number;
  provider: 'dealer' | 'ot';
  keyBits: number;
  seed: string;
  json: boolean;
  verbose?: boolean;
}

/** Every fifth row of each class to the test set (an 80/20 split stratified by class). */
export function stratifiedSplit(labels: readonly number[]): { train: number[]; test: number[] } {
  const seen = new Map<number, number>();
  const train: number[] = [];
  const test: number[] = [];
  labels.forEach((c, i) => {
    const k = seen.get(c) ?? 0;
    seen.set(c, k + 1);
    (k % 5 === 4 ? test : train).push(i);
  });
  return { train, test };
}

const accuracy = (model: { weights: number[][][]; biases: number[][] }, rows: number[][], labels: number[], classes: number[]) =>
  predictScores(model, rows).filter((s, i) => classes[argmax(s)] === labels[i]).length / rows.length;

export async function runNnDemo(o: NnDemoOptions) {
  const say = (s: string) => o.json || console.error(s);
  const table = parseNumericCsv(readFileSync(o.data, 'utf8'));
  const at = table.columns.indexOf(o.label);
  if (at < 0) throw new ParameterError(`${o.data} has no label column '${o.label}'`);
  const features = table.columns.filter((_, j) => j !== at);
  const labels = table.rows.map((r) => r[at]!);
  const classes = [...new Set(labels)].sort((a, b) => a - b);
  const range = features.map((_, j) => Math.max(1e-9, ...table.rows.map((r) => Math.abs(r.filter((_, k) => k !== at)[j]!))));
  const standardise = o.standardise ?? true;
  const x = table.rows.map((r) => r.filter((_, k) => k !== at).map((v, j) => (standardise ? v : v / range[j]!)));
  const { train: trainIdx, test: testIdx } = stratifiedSplit(labels);
  // Full widths (features first, classes last) or the hidden widths alone.
  const full = o.hidden.length >= 2 && o.hidden[0] === features.length && o.hidden.at(-1) === classes.length;
  const layers = full ? o.hidden : [features.length, ...o.hidden, classes.length];
  // The bounds the job will use: per feature, the largest over the owners of each one's power of two.
  const bounds = features.map((_, j) => 2 ** Math.max(0, Math.ceil(Math.log2(Math.max(1, ...trainIdx.map((i) => Math.abs(x[i]![j]!)))))));
  const config = {
    layers,
    epochs: o.epochs,
    batchSize: o.batch,
    learningRate: o.lr,
    seed: o.seed,
    loss: 'softmax' as const,
    standardise: standardise ? { bounds } : undefined,
  };

  // The same training in plaintext, fixed point, same seed and batches: the reference.
  const owned = Array.from({ length: o.owners }, (_, w) => trainIdx.filter((_, i) => i % o.owners === w)).flat();
  const enc = (idx: number[], f: (i: number) => number[]) => ({
    shape: [idx.length, f(idx[0]!).length],
    data: ring.encodeFixed(idx.flatMap(f), MLP_FRACTION_BITS),
  });
  const plaintextLossPerEpoch: number[] = [];
  const reference = await train(
    plainOps,
    enc(owned, (i) => x[i]!),
    enc(owned, (i) => classes.map((c) => (c === labels[i] ? 1 : 0))),
    config,
    undefined,
    undefined,
    async (e) => void plaintextLossPerEpoch.push(ring.decodeFixed((await epochLoss(plainOps, e.residual)).data, MLP_FRACTION_BITS)[0]!),
  );
  const decode = (t: { shape: readonly number[]; data: BigUint64Array }) => {
    const v = ring.decodeFixed(t.data, MLP_FRACTION_BITS);
    return Array.from({ length: t.shape[0]! }, (_, i) => v.slice(i * t.shape[1]!, (i + 1) * t.shape[1]!));
  };
  const pre = reference.preprocessing;
  const plain = {
    weights: reference.weights.map(decode),
    biases: reference.biases.map((b) => decode(b)[0]!),
    preprocessing: pre ? { mean: decode(pre.mean)[0]!, scale: decode(pre.scale)[0]! } : null,
  };

  const dir = mkdtempSync(join(tmpdir(), 'ciphermine-nn-'));
  const servers: ChildServer[] = [];
  try {
    say(`starting the key server, the compute server${o.provider === 'dealer' ? ' and the dealer' : ''} (${o.keyBits}-bit parameters)...`);
    const { ks, cs, dealer } = await startServerPair({ dir, keyBits: o.keyBits, dealer: o.provider === 'dealer', echoLog: o.verbose });
    servers.push(cs, ks, ...(dealer ? [dealer] : []));
    const client = await QueryClient.register(cs.url, 'analyst');
    const owners: DataOwner[] = [];
    const datasets: string[] = [];
    const tu = performance.now();
    for (let w = 0; w < o.owners; w++) {
      const owner = await DataOwner.register(cs.url, `owner ${w + 1}`);
      const mine = trainIdx.filter((_, i) => i % o.owners === w);
      const id = await owner.uploadForTraining(
        `part ${w + 1}`,
        { columns: [...features, o.label], rows: mine.map((i) => [...x[i]!, labels[i]!]) },
        { label: o.label, classes },
      );
      await owner.grant(id, client.id, ['train']);
      owners.push(owner);
      datasets.push(id);
    }
    say(`${o.owners} owners uploaded ${trainIdx.length} training rows, secret-shared, in ${((performance.now() - tu) / 1000).toFixed(1)} s`);
    let shown = '';
    const r = await client.train(
      { datasets, layers, epochs: o.epochs, batchSize: o.batch, learningRate: o.lr, seed: o.seed, loss: 'softmax', standardise },
      {
        onStatus: (s) => {
          // Each epoch's loss, which only this client can open, beside the plaintext training's.
          const e = s.progress ? Math.ceil(s.progress.done / (s.progress.total / o.epochs)) : 0;
          const loss = s.opened ? `, ${s.opened.label} ${s.opened.values[0]!.toFixed(4)}` : '';
          const ref = s.opened ? ` (plaintext ${plaintextLossPerEpoch[Number(/\d+/.exec(s.opened.label)?.[0] ?? 0) - 1]?.toFixed(4)})` : '';
          const line = s.progress ? `epoch ${e}/${o.epochs}${loss}${ref}` : s.phase;
          if (line !== shown) say((shown = line));
        },
      },
    );
    const td = performance.now();
    const models = await Promise.all(owners.map((w) => w.decryptModel(r.jobId, 120_000)));
    const decryptSeconds = (performance.now() - td) / 1000;
    const model = models[0]!;
    const same = models.every((m) => JSON.stringify(m.weights) === JSON.stringify(model.weights));
    const rowsOf = (idx: number[]) => idx.map((i) => x[i]!);
    const labelsOf = (idx: number[]) => idx.map((i) => labels[i]!);
    const maxWeightDifference = Math.max(
      ...model.weights.flatMap((w, l) => w.flatMap((row, i) => row.map((v, j) => Math.abs(v - plain.weights[l]![i]![j]!)))),
    );
    const out = {
      data: o.data,
      layers,
      provider: r.provider,
      epochs: o.epochs,
      standardised: standardise,
      trainRows: trainIdx.length,
      testRows: testIdx.length,
      trainAccuracy: accuracy(model, rowsOf(trainIdx), labelsOf(trainIdx), classes),
      testAccuracy: accuracy(model, rowsOf(testIdx), labelsOf(testIdx), classes),
      plaintextTestAccuracy: accuracy(plain, rowsOf(testIdx), labelsOf(testIdx), classes),
      maxWeightDifference,
      ownersAgree: same,
      secondsPerEpoch: r.secondsPerEpoch,
      offlineSecondsPerEpoch: r.offlineSecondsPerEpoch,
      lossPerEpoch: r.lossPerEpoch?.map((v) => Number(v.toFixed(5))),
      plaintextLossPerEpoch: plaintextLossPerEpoch.map((v) => Number(v.toFixed(5))),
      decryptSeconds: Number(decryptSeconds.toFixed(2)),
    };
    say(
      `test accuracy ${(100 * out.testAccuracy).toFixed(1)}% (plaintext fixed point: ${(100 * out.plaintextTestAccuracy).toFixed(1)}%), ` +
        `train ${(100 * out.trainAccuracy).toFixed(1)}%; ${out.secondsPerEpoch} s per epoch online + ${out.offlineSecondsPerEpoch} s offline (${r.provider}); ` +
        `largest weight difference to plaintext ${maxWeightDifference.toFixed(5)}`,
    );
    return out;
  } finally {
    for (const s of servers) await s.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
