/**
 * The k-means job kind (seed 000 section 4.2; docs/protocols.md). Steps: the job key pk_c from the
 * key server; the conversion of every owner's values to pk_c in KMS form (stored once, in parts, so
 * a restart does not redo it); the iterations, each ending in a checkpoint; the centroid sums moved
 * to the query client's key by SCT.
 */
import { assignsOnShares } from '../../../mpc/nearest-centroid.js';
import { CiphermineError } from '../../../crypto/errors.js';
import {
  deserializeCiphertexts,
  serializeCiphertexts,
  deserializePublicKey,
  FixedPointCodec,
  bitLength,
  type BcpPublicKey,
} from '../../../crypto/index.js';
import {
  sct,
  checkDistanceBudget,
  deltaBits,
  dropShare,
  newShareId,
  recordLayout,
  MAX_SHARED_VALUES,
  type RecordShare,
  type RecordLayout,
} from '../../../protocols/index.js';
import { secureKMeans, validateKMeansInput, type SecureCheckpoint, type SecureKMeansOptions } from '../../../analytics/kmeans-secure.js';
import { withDatasetsContext } from '../../dataset-reader.js';
import { conversionInputs, conversionOutput, convertTask } from '../conversion-tasks.js';
import { assignTask, taskBlocks } from './kmeans-tasks.js';
import { badRequest } from '../../http-errors.js';
import type { DatasetRow } from '../../store/index.js';
import { admittedDatasets, grantedDatasets } from '../datasets.js';
import { defineJobKind, type JobContext } from '../job-kind.js';
import { kmeansResult, kmeansSpec } from './kmeans-schema.js';

type Spec = ReturnType<typeof kmeansSpec.parse>;

const maxEncoded = (d: DatasetRow) => new FixedPointCodec({ fractionBits: d.fractionBits, maxAbs: d.maxAbs }).maxEncoded;

/** The largest |encoded value| any of the datasets declares. */
const largestEncoded = (ds: readonly DatasetRow[]) => ds.reduce((a, d) => (maxEncoded(d) > a ? maxEncoded(d) : a), 0n);

export const kmeansKind = defineJobKind({
  name: 'kmeans',
  description: "k-means over granted datasets encrypted under their owners' keys (seed 000)",
  spec: kmeansSpec,
  result: kmeansResult,
  tasks: { convert: convertTask, assign: assignTask },

  async admit({ services, client }, spec) {
    const ds = await grantedDatasets(services.store, client, spec.datasets, 'kmeans');
    const dims = ds[0]!.columns.length;
    const bad = ds.find((d) => d.columns.length !== dims);
    if (bad) throw badRequest(`dimension mismatch: ${bad.id} has ${bad.columns.length} columns, ${ds[0]!.id} has ${dims}`);
    const n = ds.reduce((a, d) => a + d.rows, 0);
    const initIndices = spec.initIndices ?? Array.from({ length: spec.k }, (_, i) => i);
    const maxAbs = largestEncoded(ds);
    try {
      validateKMeansInput(n, dims, spec.k, spec.maxIter, initIndices);
      checkDistanceBudget(services.params.N, { maxAbs, dims, maxCount: n });
    } catch (e) {
      throw badRequest((e as Error).message);
    }
    return { spec: { ...spec, initIndices } };
  },

  async run(ctx) {
    const { store, params } = ctx.services;
    const datasets = await admittedDatasets(store, ctx.spec.datasets);
    const dims = datasets[0]!.columns.length;
    const jobKey = await ctx.jobKey();
    const fresh: { share?: RecordShare } = {};
    const maxAbs = largestEncoded(datasets);
    const layout = await chosenLayout(ctx, datasets, dims, maxAbs);
    // The phase shows only while converting: after a restart the stored records are read back.
    const parts = await ctx.once('records', () => ctx.phase('conversion', () => convert(ctx, datasets, jobKey, fresh, layout)));
    await ctx.dropSteps('convert');
    const perPart = parts.map((p) => deserializeCiphertexts(p, jobKey, 1 << 24));
    const records = perPart.flat();
    // Each part's size, so a chunk task reads only the parts that hold its block.
    await ctx.once('records-index', async () => [Buffer.from(JSON.stringify(perPart.map((p) => p.length)))]);
    const width = layout ? 1 : dims;
    const resumeFrom = await resumePoint(ctx, jobKey, width);
    let iteration = resumeFrom?.iteration ?? 0;
    const loop: SecureKMeansOptions = {
      k: ctx.spec.k,
      maxIter: ctx.spec.maxIter,
      initIndices: ctx.spec.initIndices!,
      maxAbs,
      valueBits: bitLength(maxAbs),
      comparison: ctx.spec.comparison,
      // Only a conversion made in this run left its share at the key server; after a restart the
      // loop shares the saved records again.
      share: fresh.share,
      resumeFrom,
      recordLayout: layout,
      chunkRecords: ctx.services.blockRecords,
      // Each iteration's blocks are chunk tasks: here, or on the compute workers.
      blocks: taskBlocks(ctx, jobKey, width, () => iteration),
      onCheckpoint: async (cp) => {
        await save(cp);
        iteration = cp.iteration;
        await ctx.dropSteps('assign-');
      },
    };
    const save = checkpointer(ctx, jobKey);
    const result = await ctx
      .phase('iterations', () => secureKMeans(ctx.services.compute, chunk(records, width), loop))
      .catch((e) => {
        throw withDatasetsContext(e, datasets);
      })
      .finally(async () => {
        // The key server's share is no longer needed (best effort: its store is bounded anyway).
        if (loop.share) dropShare(ctx.services.compute, jobKey, loop.share.id).catch(() => undefined);
        // The iterations' plans and the shares' blinds were for the tasks; nothing else needs them.
        await ctx.dropBlobs('plan-').catch(() => undefined);
        await ctx.dropBlobs('share-').catch(() => undefined);
      });
    // The owners' floor on cluster sizes: a tiny cluster's sum is nearly a record (k = n with every
    // record a start would export the data), so no result is released below it.
    const floor = Math.max(...datasets.map((d) => d.minClusterSize));
    const small = result.sizes.find((s) => s > 0n && s < BigInt(floor));
    if (small !== undefined) {
      throw new CiphermineError(
        'ERR_KMEANS_INPUT',
        `a cluster of ${small} records is below the owners' minimum cluster size of ${floor}: no result is released (choose a smaller k)`,
      );
    }
    const clientKey = deserializePublicKey(ctx.client.bcpPublicKey, params);
    const sums = await ctx.phase('result', () => sct(ctx.services.compute, result.sums.flat(), clientKey));
    await ctx.progress(result.iterations, result.iterations, 'iteration');
    return {
      sums: serializeCiphertexts(clientKey, sums).toString('base64'),
      sizes: result.sizes.map(String),
      assignments: result.assignments,
      iterations: result.iterations,
      converged: result.converged,
      columns: datasets[0]!.columns,
      fractionBits: datasets[0]!.fractionBits,
    };
  },
});

/**
 * Records one to a pack when the iterations will assign on shares (a dealer, the hidden comparison,
 * records that fit the key server's share store and one plaintext each); chosen once per job and
 * stored, so a restart reads the records back in the layout they were converted to.
 */
async function chosenLayout(ctx: JobContext<Spec>, datasets: DatasetRow[], dims: number, maxAbs: bigint): Promise<RecordLayout | undefined> {
  // A job whose records an earlier version converted (value by value, with no layout stored) keeps them.
  const { store } = ctx.services;
  if ((await store.jobBlob(ctx.id, 'records')) !== undefined && (await store.jobBlob(ctx.id, 'record-layout')) === undefined) return undefined;
  const [saved] = await ctx.once('record-layout', async () => {
    const n = datasets.reduce((a, d) => a + d.rows, 0);
    const fits = assignsOnShares(ctx.services.params.N, ctx.spec.k, dims, deltaBits({ maxAbs, dims, maxCount: n }));
    const onShares = ctx.services.compute.dealer && ctx.spec.comparison !== 'multiplicative' && n * dims <= MAX_SHARED_VALUES && fits;
    const layout = onShares ? recordLayout(ctx.services.params.N, dims, n, bitLength(maxAbs)) : undefined;
    return [Buffer.from(JSON.stringify(layout ? { ...layout, offset: layout.offset.toString() } : null))];
  });
  const parsed = JSON.parse(saved!.toString()) as (Omit<RecordLayout, 'offset'> & { offset: string }) | null;
  return parsed ? { ...parsed, offset: BigInt(parsed.offset) } : undefined;
}

async function resumePoint(ctx: JobContext<Spec>, jobKey: BcpPublicKey, dims: number): Promise<SecureCheckpoint | undefined> {
  const saved = await ctx.latestCheckpoint();
  if (!saved) return undefined;
  const s = saved.state as { assignments: number[]; sizes: string[] };
  return {
    iteration: saved.step,
    assignments: s.assignments,
    sizes: s.sizes.map(BigInt),
    sums: chunk(deserializeCiphertexts(saved.data!, jobKey), dims),
  };
}

function checkpointer(ctx: JobContext<Spec>, jobKey: BcpPublicKey): (cp: SecureCheckpoint) => Promise<void> {
  let last = performance.now();
  return async (cp) => {
    const state = { assignments: cp.assignments ?? [], sizes: cp.sizes.map(String) };
    await ctx.saveCheckpoint(
      { step: cp.iteration, state, data: serializeCiphertexts(jobKey, cp.sums.flat()) },
      { done: cp.iteration, total: ctx.spec.maxIter, unit: 'iteration' },
    );
    const now = performance.now();
    await ctx.time(`iteration ${cp.iteration}`, (now - last) / 1000);
    last = now;
  };
}

/**
 * Every value of every dataset, in dataset and row order, under the job key in KMS form, as stored
 * parts: one chunk task per stored chunk of an upload (conversion-tasks.ts). A conversion also
 * leaves the key server a share of the records (inner-distances.ts) when they fit its share store;
 * larger jobs run their iterations with SDM. The share's id is kept with the job, so chunks
 * converted before a restart and after it belong to one share.
 */
async function convert(
  ctx: JobContext<Spec>,
  datasets: DatasetRow[],
  jobKey: BcpPublicKey,
  fresh: { share?: RecordShare },
  records?: RecordLayout,
): Promise<Buffer[]> {
  const { store } = ctx.services;
  const total = datasets.reduce((a, d) => a + d.rows * d.columns.length, 0);
  // On workers or replicas the key server could keep other blinds than a stored result's
  // (JobServices.separateRecordShare): the loop then shares the stored records once, from here.
  // Decided on every run, so a job begun without workers and resumed with them follows the rule too.
  const fused = total <= MAX_SHARED_VALUES && !ctx.services.separateRecordShare;
  const [id] = await ctx.once('conversion-share', async () => [Buffer.from(fused ? newShareId() : '')]);
  const share = fused && id!.length ? id!.toString() : undefined;
  const inputs = await conversionInputs(store, datasets, jobKey, { kms: true, share, records });
  // Progress in values, counting finished chunks (they may finish out of order).
  const perChunk = inputs.map((c, i) => (inputs[i + 1]?.offset ?? total) - c.offset);
  const results = await ctx.fanOut('convert', 'convert', inputs, {
    onProgress: (done) => ctx.progress(Math.round((perChunk.reduce((a, b) => a + b, 0) * done) / inputs.length), total, 'value converted'),
  });
  const { parts, blinds } = conversionOutput(results);
  fresh.share = share ? { id: share, blinds } : undefined;
  return parts;
}

function chunk<T>(xs: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < xs.length; i += size) out.push(xs.slice(i, i + size));
  return out;
}
