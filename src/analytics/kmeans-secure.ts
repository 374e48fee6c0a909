/**
 * k-means under multiple keys, the compute server's loop (seed 000 section 4.2, docs/protocols.md).
 * Input: every record already moved to the job key pk_c. Each iteration computes the distances for
 * all (record, cluster) (shared-record distances for KMS-form records, else SDM), SMDM per record
 * (the engine's hidden argmin by default), then sets the assignment V and sizes |c_j| in the clear (the compute
 * server learns them, as in the seed) and sums the members' ciphertexts homomorphically. It stops when
 * V repeats or at maxIter; an empty cluster keeps its last sum and size. The state after every
 * iteration is handed to `onCheckpoint`, and a run can resume from such a checkpoint.
 */
import { add, type Ciphertext } from '../crypto/ciphertext.js';
import type { ComputeSideContext } from '../protocols/round-trip.js';
import { checkDistanceBudget, deltaBits, type DistanceBounds } from '../protocols/bit-budget.js';
import { secureDistances } from '../protocols/sdm.js';
import { secureArgmin } from '../protocols/smdm.js';
import { hiddenArgmin, MAX_ARGMIN_CHOICES } from '../mpc/hidden-argmin.js';
import { assignsOnShares, centroidTerms, nearestCentroids } from '../mpc/nearest-centroid.js';
import { CiphermineError } from '../crypto/errors.js';
import { bitLength } from '../crypto/bigint.js';
import { blindCentroids, innerDistances, shareRecords, type BlindedCentroids, type RecordShare } from '../protocols/inner-distances.js';
import { MAX_SHARED_VALUES } from '../protocols/share-store.js';
import { shareRecordPacks, unpackSums } from '../protocols/record-packs.js';
import type { RecordLayout } from '../protocols/sct.js';
import { MAX_ELEMENTS } from '../protocols/messages.js';
import { RemoteError } from '../protocols/transport.js';

export interface SecureCheckpoint {
  /** Iterations completed. */
  iteration: number;
  /** V of the last iteration (undefined before the first). */
  assignments: number[] | undefined;
  sizes: bigint[];
  sums: Ciphertext[][];
}

export interface SecureKMeansResult {
  sums: Ciphertext[][];
  sizes: bigint[];
  assignments: number[];
  iterations: number;
  converged: boolean;
}

export interface SecureKMeansOptions {
  k: number;
  maxIter: number;
  initIndices: readonly number[];
  /** Largest |encoded value| the owners declared. */
  maxAbs: bigint;
  resumeFrom?: SecureCheckpoint;
  /** Records per SDM + SMDM pass: bounds the memory of one iteration (default 1024). */
  chunkRecords?: number;
  onCheckpoint?: (cp: SecureCheckpoint) => void | Promise<void>;
  /**
   * The key server's share of KMS-form records (protocols/inner-distances.ts), made while converting
   * them; when absent or lost (a restart), the records are shared again before the next chunk.
   */
  share?: RecordShare;
  /** |encoded value| < 2^valueBits, for sharing again (default: from maxAbs). */
  valueBits?: number;
  /**
   * How SMDM compares distances: `hidden` (default), the engine's argmin, which shows the key server
   * only masked values and the compute server only the assignment; `multiplicative`, the seed's SDC,
   * an explicit opt-in whose key server reads log2 |Delta| to within about a bit per comparison
   * (docs/leakage.md states the measured leak).
   */
  comparison?: KMeansComparison;
  /**
   * Records as one KMS-form pack each (protocols/record-packs.ts): `records[i]` holds one
   * ciphertext and checkpoints hold packed sums. Needs the assignment on shares (a dealer).
   */
  recordLayout?: RecordLayout;
}

export type KMeansComparison = 'hidden' | 'multiplicative';

export class KMeansInputError extends CiphermineError {
  constructor(message: string) {
    super('ERR_KMEANS_INPUT', message);
  }
}

export function validateKMeansInput(n: number, m: number, k: number, maxIter: number, initIndices: readonly number[]): void {
  if (!Number.isInteger(k) || k < 2) throw new KMeansInputError('k must be an integer >= 2');
  if (k > MAX_ARGMIN_CHOICES)
    throw new KMeansInputError(`k is at most ${MAX_ARGMIN_CHOICES} (the hidden argmin compares all pairs of clusters in one session)`);
  if (k > n) throw new KMeansInputError(`k = ${k} is larger than the number of records`);
  if (!Number.isInteger(maxIter) || maxIter < 1) throw new KMeansInputError('max iterations must be an integer >= 1');
  if (m < 1) throw new KMeansInputError('records need at least one attribute');
  if (initIndices.length !== k) throw new KMeansInputError(`need ${k} initial records, got ${initIndices.length}`);
  if (initIndices.some((i) => !Number.isInteger(i) || i < 0 || i >= n)) throw new KMeansInputError('initial record index out of range');
  if (new Set(initIndices).size !== k) throw new KMeansInputError('initial record indices must be distinct');
}

function memberSums(records: readonly (readonly Ciphertext[])[], assignments: readonly number[], prev: SecureCheckpoint): [Ciphertext[][], bigint[]] {
  const k = prev.sizes.length;
  const sums: (Ciphertext[] | undefined)[] = new Array(k).fill(undefined);
  const sizes = new Array<bigint>(k).fill(0n);
  assignments.forEach((j, i) => {
    sizes[j]!++;
    sums[j] = sums[j] ? sums[j]!.map((s, a) => add(s, records[i]![a]!)) : [...records[i]!];
  });
  return [sums.map((s, j) => s ?? prev.sums[j]!), sizes.map((c, j) => (c === 0n ? prev.sizes[j]! : c))];
}

/**
 * Distances + SMDM in chunks of records, so the distances of only one chunk are alive at a time.
 * KMS-form records (a converted job) that fit the key server's share store use the shared-record
 * distances, with the centroids blinded once per iteration; others the seed's SDM.
 */
async function assign(
  ctx: ComputeSideContext,
  records: readonly (readonly Ciphertext[])[],
  cp: SecureCheckpoint,
  bounds: DistanceBounds,
  dBits: number,
  opts: SecureKMeansOptions,
): Promise<number[]> {
  const k = cp.sizes.length;
  // Every answer (about 2 k elements per record) must fit one message.
  const chunk = Math.max(1, Math.min(opts.chunkRecords ?? 1024, Math.floor(MAX_ELEMENTS / (2 * k)) - 1));
  if (opts.recordLayout) {
    if (!ctx.dealer)
      throw new KMeansInputError("this job's records were converted for the assignment on shares: start the compute server with its dealer");
    return assignOnShares(ctx, records, cp, bounds, dBits, opts);
  }
  const shared = records[0]!.every((c) => c.A === 1n) && records.length * records[0]!.length <= MAX_SHARED_VALUES;
  const onShares = ctx.dealer && opts.comparison !== 'multiplicative' && assignsOnShares(records[0]![0]!.publicKey.params.N, k, bounds.dims, dBits);
  if (shared && onShares) return assignOnShares(ctx, records, cp, bounds, dBits, opts);
  const centroids = shared ? await blindCentroids(ctx, cp.sums, cp.sizes, bounds) : undefined;
  const out: number[] = [];
  for (let i = 0; i < records.length; i += chunk) {
    const rows = records.slice(i, i + chunk);
    const omegas = centroids
      ? await sharedDistances(ctx, records, i, rows, centroids, opts)
      : await secureDistances(ctx, rows, cp.sums, cp.sizes, bounds);
    const nearest = opts.comparison === 'multiplicative' ? secureArgmin : hiddenArgmin;
    out.push(...(await nearest(ctx, omegas, cp.sizes, dBits)));
  }
  return out;
}

/**
 * With a dealer: the distances as one matrix product on shares per block of records, and the
 * hidden argmin on them (mpc/nearest-centroid.ts), with no public-key operation per record.
 */
async function assignOnShares(
  ctx: ComputeSideContext,
  records: readonly (readonly Ciphertext[])[],
  cp: SecureCheckpoint,
  bounds: DistanceBounds,
  dBits: number,
  opts: SecureKMeansOptions,
): Promise<number[]> {
  const valueBits = opts.valueBits ?? bitLength(opts.maxAbs) + 1;
  const layout = opts.recordLayout;
  const sums = layout ? await unpackSums(ctx, cp.sums.flat(), cp.sizes, layout, bounds.maxCount) : cp.sums;
  const terms = await centroidTerms(ctx, sums, cp.sizes, bounds, dBits);
  const share = () => (layout ? shareRecordPacks(ctx, records.flat(), layout) : shareRecords(ctx, records, valueBits));
  const block = opts.chunkRecords ?? 1 << 14;
  const out: number[] = [];
  for (let i = 0; i < records.length; i += block) {
    const count = Math.min(block, records.length - i);
    opts.share ??= await share();
    try {
      out.push(...(await nearestCentroids(ctx, opts.share, i, count, terms)));
    } catch (e) {
      if (!(e instanceof RemoteError && e.code === 'ERR_UNKNOWN_SHARE')) throw e;
      opts.share = await share();
      out.push(...(await nearestCentroids(ctx, opts.share, i, count, terms)));
    }
  }
  return out;
}

async function sharedDistances(
  ctx: ComputeSideContext,
  records: readonly (readonly Ciphertext[])[],
  first: number,
  rows: readonly (readonly Ciphertext[])[],
  centroids: BlindedCentroids,
  opts: SecureKMeansOptions,
): Promise<Ciphertext[][]> {
  const valueBits = opts.valueBits ?? bitLength(opts.maxAbs) + 1;
  opts.share ??= await shareRecords(ctx, records, valueBits);
  try {
    return await innerDistances(ctx, opts.share, first, rows, centroids);
  } catch (e) {
    if (!(e instanceof RemoteError && e.code === 'ERR_UNKNOWN_SHARE')) throw e;
    opts.share = await shareRecords(ctx, records, valueBits);
    return innerDistances(ctx, opts.share, first, rows, centroids);
  }
}

export async function secureKMeans(
  ctx: ComputeSideContext,
  records: readonly (readonly Ciphertext[])[],
  opts: SecureKMeansOptions,
): Promise<SecureKMeansResult> {
  const n = records.length;
  const m = opts.recordLayout?.values ?? records[0]?.length ?? 0;
  validateKMeansInput(n, m, opts.k, opts.maxIter, opts.initIndices);
  const N = records[0]![0]!.publicKey.params.N;
  const bounds: DistanceBounds = { maxAbs: opts.maxAbs, dims: m, maxCount: n };
  checkDistanceBudget(N, bounds);
  const dBits = deltaBits(bounds);
  let cp: SecureCheckpoint = opts.resumeFrom ?? {
    iteration: 0,
    assignments: undefined,
    sizes: opts.initIndices.map(() => 1n),
    sums: opts.initIndices.map((i) => [...records[i]!]),
  };
  while (cp.iteration < opts.maxIter) {
    const assignments = await assign(ctx, records, cp, bounds, dBits, opts);
    const prev = cp.assignments;
    if (prev && assignments.every((j, i) => j === prev[i])) {
      return { sums: await valuesOf(ctx, cp, opts, n), sizes: cp.sizes, assignments, iterations: cp.iteration + 1, converged: true };
    }
    const [sums, sizes] = memberSums(records, assignments, cp);
    cp = { iteration: cp.iteration + 1, assignments, sizes, sums };
    await opts.onCheckpoint?.(cp);
  }
  return { sums: await valuesOf(ctx, cp, opts, n), sizes: cp.sizes, assignments: cp.assignments ?? [], iterations: cp.iteration, converged: false };
}

/** The final sums value by value (record packs unpacked). */
async function valuesOf(ctx: ComputeSideContext, cp: SecureCheckpoint, opts: SecureKMeansOptions, n: number): Promise<Ciphertext[][]> {
  return opts.recordLayout ? unpackSums(ctx, cp.sums.flat(), cp.sizes, opts.recordLayout, n) : cp.sums;
}
