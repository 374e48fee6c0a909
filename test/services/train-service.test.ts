/**
 * Seed 002 through the services: owners upload secret-shared training data, a query client trains,
 * the owners decrypt the model jointly (each gets the same model, equal to the plaintext reference
 * within the bound); what the key server decrypts is data-independent and never under the model's
 * key; bad input is refused with clear errors.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { DataOwner } from '../../src/clients/data-owner.js';
import { QueryClient } from '../../src/clients/query-client.js';
import { ApiError } from '../../src/clients/api.js';
import type { ModelFile } from '../../src/clients/model-decryption.js';
import { generateIdKey } from '../../src/crypto/id-hash.js';
import { argmax, epochLoss, plainOps, predictScores, train, type Tensor } from '../../src/analytics/mlp.js';
import * as ring from '../../src/mpc/ring.js';
import { startServices, type Services } from './services-harness.js';
import { ksSameDistribution } from '../protocols/harness.js';

const rows = readFileSync(new URL('../../../data/iris.csv', import.meta.url), 'utf8')
  .trim()
  .split('\n')
  .slice(1)
  .map((l) => l.trim().split(',').map(Number));
const scaled = rows.map((r) => [...r.slice(0, 4).map((v) => v / 8), r[4]!]);
const columns = ['sl', 'sw', 'pl', 'pw', 'label'];
const half = (k: number) => ({ columns, rows: scaled.filter((_, i) => i % 2 === k) });

const reject = (p: Promise<unknown>, status: number, re: RegExp) =>
  assert.rejects(p, (e: unknown) => e instanceof ApiError && e.status === status && re.test(e.message));

const spec = { layers: [4, 8, 3], epochs: 3, batchSize: 16, learningRate: 0.5, seed: 'svc', loss: 'mse' as const };

/**
 * The plaintext training of the same rows, and the check that each epoch's loss reached the
 * client alone (under its key), close to the plaintext training's, and in the job's progress.
 */
async function referenceWithLosses(q: QueryClient, r: { jobId: string; lossPerEpoch?: number[] }, x: Tensor, y: Tensor) {
  const refLoss: number[] = [];
  const ref = await train(plainOps, x, y, spec, undefined, undefined, async (e) => {
    refLoss.push(ring.decodeFixed((await epochLoss(plainOps, e.residual)).data, 16)[0]!);
  });
  assert.equal(r.lossPerEpoch?.length, spec.epochs);
  r.lossPerEpoch!.forEach((v, e) => assert.ok(Math.abs(v - refLoss[e]!) <= 0.01, `epoch ${e + 1}: loss ${v} vs ${refLoss[e]}`));
  assert.ok(refLoss[2]! < refLoss[0]!, `the loss falls: ${refLoss}`);
  const last = await q.status(r.jobId);
  assert.deepEqual(last.opened, { label: `loss (epoch ${spec.epochs})`, values: [r.lossPerEpoch!.at(-1)!] });
  return ref;
}

describe('training on two clouds through the services', () => {
  let s: Services;
  let a: DataOwner;
  let b: DataOwner;
  let q: QueryClient;
  let ds: string[];
  const seen = new Map<string, bigint[]>();
  let trained: { job: string; datasets: string[]; model?: ModelFile } = { job: '', datasets: [] };
  before(async () => {
    s = await startServices(512);
    s.ks.core.observer = (protocol, values) => seen.set(protocol, [...(seen.get(protocol) ?? []), ...values]);
    [a, b] = [await DataOwner.register(s.cs.url, 'A'), await DataOwner.register(s.cs.url, 'B')];
    q = await QueryClient.register(s.cs.url, 'q');
    ds = [await a.uploadForTraining('a', half(0), { label: 'label' }), await b.uploadForTraining('b', half(1), { label: 'label' })];
    await a.grant(ds[0]!, q.id, ['train']);
    await b.grant(ds[1]!, q.id, ['train']);
  });
  after(() => s.close());

  it('trains, and every owner decrypts the same model, equal to the plaintext training within the bound', async () => {
    seen.clear();
    const r = await q.train({ datasets: ds, ...spec });
    assert.deepEqual(new Set(r.owners), new Set([a.id, b.id]));
    // The first owner alone cannot open it; it names the owner still to take part.
    await assert.rejects(a.decryptModel(r.jobId, 0), new RegExp(`waiting for the partial decryption of owner ${b.id}`));
    const [ma, mb] = await Promise.all([a.decryptModel(r.jobId, 30_000), b.decryptModel(r.jobId, 30_000)]);
    assert.deepEqual(ma.weights, mb.weights);
    // The reference: the same rows in the same order (owner a's, then b's), same seed.
    const ordered = [...half(0).rows, ...half(1).rows];
    const x = {
      shape: [ordered.length, 4],
      data: ring.encodeFixed(
        ordered.flatMap((r) => r.slice(0, 4)),
        16,
      ),
    };
    const y = {
      shape: [ordered.length, 3],
      data: ring.encodeFixed(
        ordered.flatMap((r) => [0, 1, 2].map((c) => (c === r[4] ? 1 : 0))),
        16,
      ),
    };
    const ref = await referenceWithLosses(q, r, x, y);
    const refW = ref.weights.map((w) => ring.decodeFixed(w.data, 16));
    const worst = Math.max(...ma.weights.flatMap((w, l) => w.flat().map((v, i) => Math.abs(v - refW[l]![i]!))));
    const steps = spec.epochs * Math.ceil(150 / spec.batchSize);
    assert.ok(worst <= (32 * steps) / 65536, `largest weight difference ${worst} after ${steps} steps`);
    const acc =
      predictScores(
        ma,
        scaled.map((r) => r.slice(0, 4)),
      ).filter((sc, i) => argmax(sc) === scaled[i]![4]).length / 150;
    assert.ok(acc > 0.6, `accuracy ${acc}`);
    // What the key server decrypted: the seeds and masked values only, never anything under the model's key.
    assert.deepEqual([...seen.keys()].sort(), ['train-data', 'train-data-pack', 'train-seed']);
  });

  it('standardises on the servers: the released mean and scale equal the plaintext steps, and the model predicts raw rows', async () => {
    const raw = (k: number) => ({ columns, rows: rows.filter((_, i) => i % 2 === k) });
    const rawIds = [await a.uploadForTraining('a raw', raw(0), { label: 'label' }), await b.uploadForTraining('b raw', raw(1), { label: 'label' })];
    await a.grant(rawIds[0]!, q.id, ['train']);
    await b.grant(rawIds[1]!, q.id, ['train']);
    const r = await q.train({ datasets: rawIds, ...spec, standardise: true });
    trained = { job: r.jobId, datasets: rawIds };
    assert.equal(r.standardised, true);
    assert.equal(r.parameters, 4 * 8 + 8 + 8 * 3 + 3 + 2 * 4);
    const [m] = await Promise.all([a.decryptModel(r.jobId, 30_000), b.decryptModel(r.jobId, 30_000)]);
    trained.model = m;
    const ordered = [...raw(0).rows, ...raw(1).rows];
    // Per feature, the power of two at or above its largest value, as the owners declared.
    const bounds = [0, 1, 2, 3].map((j) => 2 ** Math.ceil(Math.log2(Math.max(...ordered.map((row) => row[j]!)))));
    const ref = await train(
      plainOps,
      {
        shape: [ordered.length, 4],
        data: ring.encodeFixed(
          ordered.flatMap((row) => row.slice(0, 4)),
          16,
        ),
      },
      {
        shape: [ordered.length, 3],
        data: ring.encodeFixed(
          ordered.flatMap((row) => [0, 1, 2].map((c) => (c === row[4] ? 1 : 0))),
          16,
        ),
      },
      { ...spec, standardise: { bounds } },
    );
    const refMean = ring.decodeFixed(ref.preprocessing!.mean.data, 16);
    const refScale = ring.decodeFixed(ref.preprocessing!.scale.data, 16);
    m.preprocessing!.mean.forEach((v, j) => assert.ok(Math.abs(v - refMean[j]!) <= 2 ** -12, `mean ${j}: ${v} vs ${refMean[j]}`));
    // The scale inherits the variance's relative error, a few units of 2^-16 over v (standardise.ts): 1% here.
    m.preprocessing!.scale.forEach((v, j) => assert.ok(Math.abs(v / refScale[j]! - 1) <= 0.01, `scale ${j}: ${v} vs ${refScale[j]}`));
    const acc =
      predictScores(
        m,
        rows.map((row) => row.slice(0, 4)),
      ).filter((sc, i) => argmax(sc) === rows[i]![4]).length / 150;
    assert.ok(acc > 0.6, `accuracy ${acc} on raw rows`);
  });

  it('predicts for the client that trained, with the model still in shares: the labels equal the decrypted model on the same rows', async () => {
    const probe = rows.filter((_, i) => i % 5 === 0);
    const features = { columns: columns.slice(0, 4), rows: probe.map((row) => row.slice(0, 4)) };
    const pid = await a.uploadForPrediction('probe', features);
    await a.grant(pid, q.id, ['predict']);
    // The model's owners have not granted predict yet.
    await reject(q.predict({ model: trained.job, datasets: [pid] }), 403, /grant scope 'predict'/);
    await a.grant(trained.datasets[0]!, q.id, ['train', 'predict']);
    await b.grant(trained.datasets[1]!, q.id, ['train', 'predict']);
    seen.clear();
    const r = await q.predict({ model: trained.job, datasets: [pid] });
    const local = predictScores(trained.model!, features.rows).map((sc) => argmax(sc));
    const same = r.predictions.filter((v, i) => v === local[i]).length;
    assert.ok(same >= probe.length - 1, `${same} of ${probe.length} predictions equal the decrypted model's`);
    // The key server opened seeds and blinded values only: never a prediction.
    assert.deepEqual([...seen.keys()].sort(), ['train-data', 'train-data-pack', 'train-seed']);
    // A labelled upload can be predicted on too (its labels are dropped); a mismatched one is refused.
    const labelled = await a.uploadForTraining('probe labelled', { columns, rows: probe }, { label: 'label' });
    await a.grant(labelled, q.id, ['predict']);
    assert.equal((await q.predict({ model: trained.job, datasets: [labelled] })).predictions.length, probe.length);
    const narrow = await a.uploadForPrediction('narrow', { columns: ['sl', 'sw', 'pl'], rows: [[1, 2, 3]] });
    await a.grant(narrow, q.id, ['predict']);
    await reject(q.predict({ model: trained.job, datasets: [narrow] }), 400, /the model takes sl,sw,pl,pw/);
    // Another client cannot use this client's model; a prediction upload cannot train.
    const other = await QueryClient.register(s.cs.url, 'other');
    await a.grant(pid, other.id, ['predict', 'train']);
    await reject(other.predict({ model: trained.job, datasets: [pid] }), 404, /no model of this client/);
    await reject(other.train({ datasets: [pid], ...spec }), 400, /uploaded for prediction/);
    // The key server's sealed share opens only in its own context.
    const sealed = s.ks.core.sealForSelf('model share\0a', new Uint8Array([1, 2, 3]));
    assert.throws(() => s.ks.core.unsealForSelf('model share\0b', sealed), /failed authentication/);
  });

  it('releases the model to the client that trained it, under its own key, only with every owner granting scope model', async () => {
    // Owner a alone is not enough: the model is both owners' data.
    await a.grant(trained.datasets[0]!, q.id, ['train', 'predict', 'model']);
    await reject(q.releaseModel(trained.job), 403, new RegExp(`owner of ${trained.datasets[1]} has not granted this client model jobs`));
    await b.grant(trained.datasets[1]!, q.id, ['train', 'predict', 'model']);
    seen.clear();
    const { releaseJob, ...m } = await q.releaseModel(trained.job);
    assert.ok(releaseJob.length > 0);
    // Exactly the model the owners decrypted jointly: same parameters, same file.
    assert.deepEqual(m, trained.model);
    // The key server opened nothing: its share went out under the client's key, never opened.
    assert.deepEqual([...seen.keys()], []);
    // Another client cannot have it, whatever it was granted; a job that is not a train job is no model.
    const other = await QueryClient.register(s.cs.url, 'other release');
    await a.grant(trained.datasets[0]!, other.id, ['model']);
    await b.grant(trained.datasets[1]!, other.id, ['model']);
    await reject(other.releaseModel(trained.job), 404, /no model of this client/);
    await reject(q.releaseModel(releaseJob), 404, /no model of this client/);
    // Revoking the scope stops further releases.
    await b.grant(trained.datasets[1]!, q.id, ['train']);
    await reject(q.releaseModel(trained.job), 403, /grant scope 'model'/);
  });

  it('trains on a vertically partitioned table (parts matched on keyed id hashes) as on the joined table', async () => {
    const key = generateIdKey();
    const ids = scaled.map((_, i) => `patient-${i}`);
    // A holds two features and the label in id order; B the other two features, shuffled.
    const order = scaled.map((_, i) => (i * 37) % scaled.length);
    const partA = await a.uploadForTraining(
      'va',
      { columns: ['sl', 'sw', 'label'], rows: scaled.map((r) => [r[0]!, r[1]!, r[4]!]) },
      { label: 'label', classes: [0, 1, 2], ids: { values: ids, key } },
    );
    const partB = await b.uploadForTraining(
      'vb',
      { columns: ['pl', 'pw'], rows: order.map((i) => [scaled[i]![2]!, scaled[i]![3]!]) },
      { ids: { values: order.map((i) => ids[i]!), key } },
    );
    await a.grant(partA, q.id, ['train']);
    await b.grant(partB, q.id, ['train']);
    const r = await q.train({ datasets: [partA, partB], ...spec });
    assert.deepEqual(r.features, ['sl', 'sw', 'pl', 'pw']);
    const [m] = await Promise.all([a.decryptModel(r.jobId, 30_000), b.decryptModel(r.jobId, 30_000)]);
    const x = {
      shape: [150, 4],
      data: ring.encodeFixed(
        scaled.flatMap((row) => row.slice(0, 4)),
        16,
      ),
    };
    const y = {
      shape: [150, 3],
      data: ring.encodeFixed(
        scaled.flatMap((row) => [0, 1, 2].map((c) => (c === row[4] ? 1 : 0))),
        16,
      ),
    };
    const ref = await referenceWithLosses(q, r, x, y);
    const refW = ref.weights.map((w) => ring.decodeFixed(w.data, 16));
    const worst = Math.max(...m.weights.flatMap((w, l) => w.flat().map((v, i) => Math.abs(v - refW[l]![i]!))));
    const steps = spec.epochs * Math.ceil(150 / spec.batchSize);
    assert.ok(worst <= (32 * steps) / 65536, `largest weight difference ${worst} after ${steps} steps`);

    // Ids that do not match are counted, never listed; a second labelled part, or a missing id key, is refused.
    const short = await b.uploadForTraining(
      'vb short',
      { columns: ['pl', 'pw'], rows: scaled.slice(3).map((row) => [row[2]!, row[3]!]) },
      { ids: { values: ids.slice(3), key } },
    );
    await b.grant(short, q.id, ['train']);
    await reject(q.train({ datasets: [partA, short], ...spec }), 400, /lacks 3 of dataset .*'s ids and has 0/);
    const otherKey = await b.uploadForTraining(
      'vb other key',
      { columns: ['pl', 'pw'], rows: scaled.map((row) => [row[2]!, row[3]!]) },
      { ids: { values: ids, key: generateIdKey() } },
    );
    await b.grant(otherKey, q.id, ['train']);
    await reject(q.train({ datasets: [partA, otherKey], ...spec }), 400, /lacks 150 of/);
    const twoLabels = await b.uploadForTraining(
      'vb label',
      { columns: ['pl', 'pw', 'label'], rows: scaled.map((row) => [row[2]!, row[3]!, row[4]!]) },
      { label: 'label', ids: { values: ids, key } },
    );
    await b.grant(twoLabels, q.id, ['train']);
    await reject(q.train({ datasets: [partA, twoLabels], ...spec }), 400, /exactly one part .* holds the label column, here 2 do/);
    await reject(q.train({ datasets: [partA, ds[0]!], ...spec }), 400, /every part has an id column/);
    await assert.rejects(b.uploadForTraining('dup', { columns: ['pl'], rows: [[1], [2]] }, { ids: { values: ['x', 'x'], key } }), /repeats an id/);
    await assert.rejects(b.uploadForTraining('nolabel', { columns: ['pl'], rows: [[1]] }, {}), /names its label column/);
  });

  it("the key server's view of the shared data does not depend on the data (KS, alpha 0.001), with a negative control", async () => {
    const view = async (value: number) => {
      const o = await DataOwner.register(s.cs.url, `v${value}`);
      const id = await o.uploadForTraining(
        'v',
        { columns, rows: Array.from({ length: 60 }, (_, i) => [value, value, value, value, i % 3]) },
        { label: 'label', classes: [0, 1, 2] },
      );
      await o.grant(id, q.id, ['train']);
      seen.clear();
      // Constant features of 1000 make this training diverge (refused after the fact): the view of the conversion is what counts.
      await q.train({ datasets: [id], ...spec, epochs: 1 }).catch((e: Error & { code?: string }) => assert.equal(e.code, 'ERR_DIVERGED'));
      return (seen.get('train-data') ?? []).map((v) => Number(v >> 64n) / 2 ** 40);
    };
    const zeros = await view(0);
    const large = await view(1000);
    assert.ok(zeros.length >= 300 && zeros.length === large.length);
    const ks = ksSameDistribution(zeros, large);
    assert.ok(ks.same, `KS d = ${ks.d} > ${ks.critical}`);
    // Negative control: the unmasked values would be told apart at once.
    assert.ok(
      !ksSameDistribution(
        zeros.map(() => 0),
        large.map(() => 1000),
      ).same,
    );
  });

  it('refuses bad input with clear errors', async () => {
    await assert.rejects(a.uploadForTraining('x', half(0), { label: 'species' }), /no label column 'species'/);
    await assert.rejects(a.uploadForTraining('x', half(0), { label: 'label', classes: [0, 1] }), /label 2 is not one of the classes 0,1/);
    await reject(q.train({ datasets: ds, ...spec, layers: [5, 8, 3] }), 400, /5 inputs, the data has 4 features/);
    await reject(q.train({ datasets: ds, ...spec, layers: [4, 8, 2] }), 400, /2 outputs, the targets have 3/);
    await reject(q.train({ datasets: ds, ...spec, learningRate: 1e-9 }), 400, /resolution/);
    const other = await a.uploadForTraining('o', { columns: ['sl', 'sw', 'pl', 'xx', 'label'], rows: half(0).rows }, { label: 'label' });
    await a.grant(other, q.id, ['train']);
    await reject(q.train({ datasets: [ds[1]!, other], ...spec }), 400, /the feature columns must match/);
    await a.grant(ds[0]!, q.id, ['train', 'kmeans']);
    await reject(q.kmeans({ datasets: [ds[0]!], k: 2 }), 400, /secret-shared upload: it serves train and predict jobs only/);
    // A learning rate that makes the weights explode: detected on shares, the job fails, no model is released.
    await assert.rejects(
      q.train({ datasets: ds, ...spec, learningRate: 8 }),
      (e: unknown) =>
        /the training diverged: \d+ parameters ended beyond \+-1024/.test(String((e as Error).message ?? e)) || /diverged/.test(JSON.stringify(e)),
    );
    const stranger = await QueryClient.register(s.cs.url, 'stranger');
    await reject(stranger.train({ datasets: ds, ...spec }), 403, /not granted/);
  });
});
