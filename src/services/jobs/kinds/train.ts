/**
 * The training job kind (seed 002; docs/neural-networks.md): a multilayer perceptron trained by the
 * two servers on secret-shared uploads, the model released under the data owners' joint key. Steps:
 * the sources (each owner's Enc(m - R) and encrypted seed) handed to the two-server protocol
 * (analytics/mlp-two-server.ts), which shares, trains and re-encrypts; the result holds only
 * ciphertexts under the joint key, which no single party can open.
 */
import { deserializeCiphertexts, deserializePublicKey, serializeCiphertexts, serializePublicKey, type Ciphertext } from '../../../crypto/index.js';
import type { JobSecretProgress } from '../job-status.js';
import { parameterCount, trainOnTwoServers, type SharedSource } from '../../../analytics/mlp-two-server.js';
import { validateConfig, MLP_FRACTION_BITS } from '../../../analytics/mlp.js';
import { datasetChunks } from '../../dataset-reader.js';
import { badRequest } from '../../http-errors.js';
import type { DatasetRow } from '../../store/index.js';
import { admittedDatasets, grantedDatasets } from '../datasets.js';
import { defineJobKind, type JobServices } from '../job-kind.js';
import { rowOrders, type VerticalLayout } from '../../../analytics/vertical-join.js';
import { ID_HASH_BYTES } from '../../../crypto/id-hash.js';
import { trainResult, trainSpec } from './train-schema.js';

/** The job blob that keeps a trained model in shares: session, this server's share, the key server's sealed share. */
export const SHARED_MODEL = 'shared-model';

/** Secret-shared uploads as the two-server programs read them: owner key, seed, chunk sizes, chunks. */
export async function sharedSources({ store, params, x25519 }: JobServices, ds: readonly DatasetRow[]): Promise<SharedSource[]> {
  return Promise.all(
    ds.map(async (d) => {
      const owner = (await store.party(d.ownerId))!;
      const key = deserializePublicKey(owner.bcpPublicKey, params);
      return {
        key,
        seed: deserializeCiphertexts(Buffer.from(d.training!.seed, 'base64'), key, 1)[0]!,
        rows: d.rows,
        slots: d.training!.slots,
        chunkValues: (await store.chunkSizes(d.id)).map((c) => c.rows * d.columns.length),
        chunks: () => datasetChunks(store, d, params, x25519),
      };
    }),
  );
}

/** All sources must describe the same table: features, targets and classes. */
function sameShape(ds: readonly DatasetRow[]): DatasetRow {
  const first = ds[0]!;
  for (const d of ds) {
    if (d.columns.join('\0') !== first.columns.join('\0'))
      throw badRequest(
        `dataset ${d.id} has columns ${d.columns.join(',')}, ${first.id} has ${first.columns.join(',')}: the feature columns must match`,
      );
    if (JSON.stringify(d.training!.classes) !== JSON.stringify(first.training!.classes) || d.training!.task !== first.training!.task)
      throw badRequest(`dataset ${d.id} declares other classes or another task than ${first.id}: give every owner the same --classes`);
  }
  return first;
}

/**
 * Per feature, the largest of the owners' declared bounds (public metadata of the uploads); an
 * upload without per-feature bounds contributes its dataset-wide range.
 */
function featureBounds(ds: readonly DatasetRow[], features: number): number[] {
  return Array.from({ length: features }, (_, j) => Math.max(...ds.map((d) => d.training!.featureBounds?.[j] ?? d.maxAbs)));
}

/** The table a training job sees: horizontal parts (rows) or vertical parts (columns) joined. */
interface JoinedTable {
  columns: number;
  targets: number;
  features: string[];
  task: 'classification' | 'regression';
  classes: number[] | null;
  /** Per feature, the public bound standardisation uses. */
  bounds: number[];
  vertical?: VerticalLayout;
}

/** Each row's keyed id hash (16 bytes), as hex. */
function idsOf(d: DatasetRow): string[] {
  const raw = Buffer.from(d.training!.ids!, 'base64');
  return Array.from({ length: raw.length / ID_HASH_BYTES }, (_, i) => raw.subarray(i * ID_HASH_BYTES, (i + 1) * ID_HASH_BYTES).toString('hex'));
}

function tableOf(ds: readonly DatasetRow[]): JoinedTable {
  const withIds = ds.filter((d) => d.training!.ids).length;
  if (withIds === 0 || ds.length === 1) {
    const first = sameShape(ds);
    const t = first.training!;
    const d = first.columns.length - t.targets;
    if (t.targets === 0) throw badRequest(`dataset ${first.id} holds no labels: name the part with the label column too`);
    return {
      columns: first.columns.length,
      targets: t.targets,
      features: first.columns.slice(0, d),
      task: t.task,
      classes: t.classes,
      bounds: featureBounds(ds, d),
    };
  }
  if (withIds !== ds.length) throw badRequest('either every part has an id column (vertical) or none does (horizontal)');
  const labelled = ds.filter((d) => d.training!.targets > 0);
  if (labelled.length !== 1) throw badRequest(`exactly one part of a vertical table holds the label column, here ${labelled.length} do`);
  const label = labelled[0]!.training!;
  const featuresOf = (d: DatasetRow) => d.columns.slice(0, d.columns.length - d.training!.targets);
  const features = ds.flatMap(featuresOf);
  if (new Set(features).size !== features.length)
    throw badRequest('the parts of a vertical table share a column name: each column belongs to one part');
  let perms: number[][];
  try {
    perms = rowOrders(
      ds.map(idsOf),
      ds.map((d) => `dataset ${d.id}`),
    );
  } catch (e) {
    throw badRequest((e as Error).message);
  }
  return {
    columns: features.length + label.targets,
    targets: label.targets,
    features,
    task: label.task,
    classes: label.classes,
    bounds: ds.flatMap((d) => featureBounds([d], featuresOf(d).length)),
    vertical: { columns: ds.map((d) => d.columns.length), targets: ds.map((d) => d.training!.targets), perms },
  };
}

/** Softmax's cross-entropy suits classes only; regression trains on the squared error. */
function lossOf(asked: 'mse' | 'softmax' | undefined, task: 'classification' | 'regression'): 'mse' | 'softmax' {
  if (asked === 'softmax' && task === 'regression') throw badRequest('the softmax loss is for classification uploads');
  return asked ?? (task === 'classification' ? 'softmax' : 'mse');
}

export const trainKind = defineJobKind({
  name: 'train',
  description: 'train a neural network (MLP, ReLU) on secret-shared training uploads; the model is released to the owners jointly (seed 002)',
  spec: trainSpec,
  result: trainResult,

  async admit({ services, client }, spec) {
    const ds = await grantedDatasets(services.store, client, spec.datasets, 'train');
    const table = tableOf(ds);
    lossOf(spec.loss, table.task);
    if (spec.provider === 'dealer' && !services.compute.dealer)
      throw badRequest('these servers run no dealer: train with --provider ot, or start the servers with a dealer');
    try {
      const d = table.columns - table.targets;
      validateConfig({ ...spec, standardise: spec.standardise ? { bounds: table.bounds } : undefined }, d, table.targets);
    } catch (e) {
      throw badRequest((e as Error).message);
    }
    return { spec };
  },

  async run(ctx) {
    const { store, compute, params } = ctx.services;
    const ds = await admittedDatasets(store, ctx.spec.datasets);
    const table = tableOf(ds);
    const sources = await sharedSources(ctx.services, ds);
    const loss = lossOf(ctx.spec.loss, table.task);
    // `ot` on request even where a dealer is configured: the two servers alone.
    const engine = ctx.spec.provider === 'ot' ? { ...compute, dealer: undefined } : compute;
    const config = {
      layers: ctx.spec.layers,
      epochs: ctx.spec.epochs,
      batchSize: ctx.spec.batchSize,
      learningRate: ctx.spec.learningRate,
      seed: ctx.spec.seed,
      loss,
      standardise: ctx.spec.standardise ? { bounds: table.bounds } : undefined,
    };
    // Each epoch's loss goes to the client alone, under its key (the progress display decrypts it).
    const client = deserializePublicKey(ctx.client.bcpPublicKey, params);
    const losses: Ciphertext[] = [];
    let secret: JobSecretProgress | undefined;
    let lastEpoch = 0;
    let batches = 0;
    const { model, jointKey, trainingSeconds, offlineSeconds, lossSeconds, shared } = await ctx.phase('training', () =>
      trainOnTwoServers(engine, sources, table.columns, table.targets, config, {
        vertical: table.vertical,
        lossTo: ctx.spec.reportLoss ? client : undefined,
        onEpoch: async (e) => {
          losses.push(e.loss);
          const values = serializeCiphertexts(client, [e.loss]).toString('base64');
          secret = { label: `loss (epoch ${e.epoch})`, fractionBits: MLP_FRACTION_BITS, values };
          await ctx.progress(e.epoch * batches, e.epochs * batches, 'batch', { note: `epoch ${e.epoch} of ${e.epochs} done`, secret });
        },
        onBatch: async (p) => {
          batches = p.batches;
          // An epoch's end is reported by onEpoch, with its loss, when the loss is reported.
          if (p.epoch !== lastEpoch || (p.batch === p.batches && !ctx.spec.reportLoss)) {
            lastEpoch = p.epoch;
            const note = `epoch ${p.epoch} of ${ctx.spec.epochs}, batch ${p.batch} of ${p.batches}`;
            await ctx.progress((p.epoch - 1) * p.batches + p.batch, ctx.spec.epochs * p.batches, 'batch', { note, secret });
          }
        },
      }),
    );
    // Kept for `predict`: this server's share, and the key server's sealed for it alone.
    await store.putJobBlob(ctx.id, SHARED_MODEL, [
      Buffer.from(shared.session),
      Buffer.from(shared.share.buffer, shared.share.byteOffset, shared.share.byteLength),
      Buffer.from(shared.keyServerShare),
    ]);
    const perEpoch = (s: number) => Number((s / ctx.spec.epochs).toFixed(3));
    return {
      model: serializeCiphertexts(jointKey, model).toString('base64'),
      jointKey: serializePublicKey(jointKey).toString('base64'),
      owners: [...new Set(ds.map((d) => d.ownerId))],
      parameters: parameterCount(ctx.spec.layers, ctx.spec.standardise),
      standardised: ctx.spec.standardise,
      layers: ctx.spec.layers,
      features: table.features,
      task: table.task,
      classes: table.classes,
      fractionBits: MLP_FRACTION_BITS,
      epochs: ctx.spec.epochs,
      loss,
      secondsPerEpoch: perEpoch(trainingSeconds - offlineSeconds - lossSeconds),
      offlineSecondsPerEpoch: perEpoch(offlineSeconds),
      lossSecondsPerEpoch: perEpoch(lossSeconds),
      losses: losses.length > 0 ? serializeCiphertexts(client, losses).toString('base64') : undefined,
      provider: engine.dealer ? ('dealer' as const) : ('ot' as const),
    };
  },
});
