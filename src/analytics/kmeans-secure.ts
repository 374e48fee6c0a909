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
import { assignsOnShares, centroidTerms, nearestCentroids, type CentroidTerms } from '../mpc/nearest-centroid.js';
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
  /** Where the blocks of each iteration's assignment run (default: here, one after another). */
  blocks?: AssignmentBlocks;
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

/** Per cluster, the sum of the block's members (undefined: no member in the block). */
export type PartialSums = Array<Ciphertext[] | undefined>;

/** The member sums of one block of records, given their assignments. */
export function blockSums(rows: readonly (readonly Ciphertext[])[], assignments: readonly number[], k: number): PartialSums {
  const sums: PartialSums = new Array(k).fill(undefined);
  assignments.forEach((j, i) => {
    sums[j] = sums[j] ? sums[j]!.map((s, a) => add(s, rows[i]![a]!)) : [...rows[i]!];
  });
  return sums;
}

/**
 * The next sums and sizes from the blocks' partial sums: an empty cluster keeps its last sum and
 * size. Blocks' sums are added in block order, so the result does not depend on where they ran.
 */
function memberSums(outcomes: readonly BlockOutcome[], assignments: readonly number[], prev: SecureCheckpoint): [Ciphertext[][], bigint[]] {
  const k = prev.sizes.length;
  const sizes = new Array<bigint>(k).fill(0n);
  for (const j of assignments) sizes[j]!++;
  const sums = Array.from({ length: k }, (_, j) => {
    const parts = outcomes.map((o) => o.sums[j]).filter((s): s is Ciphertext[] => s !== undefined);
    return parts.length ? parts.slice(1).reduce((acc, p) => acc.map((c, a) => add(c, p[a]!)), parts[0]!) : prev.sums[j]!;
  });
  return [sums, sizes.map((c, j) => (c === 0n ? prev.sizes[j]! : c))];
}

/**
 * What every block of one iteration's assignment needs, made once per iteration by the compute
 * server (with the key server): the dealer path's centroid terms, the shared-record distances'
 * blinded centroids, or for SDM the sums themselves. Blocks of records are then independent, so
 * they may run anywhere (AssignmentBlocks).
 */
export type AssignmentPlan =
  | { path: 'shares'; terms: CentroidTerms }
  | { path: 'shared-distances'; centroids: BlindedCentroids; sizes: bigint[]; deltaBits: number; comparison: KMeansComparison }
  | { path: 'sdm'; sums: Ciphertext[][]; sizes: bigint[]; bounds: DistanceBounds; deltaBits: number; comparison: KMeansComparison };

/** A range of records, assigned as one unit. */
export interface AssignmentBlock {
  first: number;
  count: number;
}

/**
 * Runs an iteration's blocks and returns each block's assignments in block order: in this process
 * (the default, one block at a time, so only one block's distances are alive) or as chunk tasks
 * on workers (services/jobs/kinds/kmeans-tasks.ts). A block that finds the key server's share gone
 * rejects with ERR_UNKNOWN_SHARE; the loop then shares again and runs the iteration's blocks again.
 */
export type AssignmentBlocks = (plan: AssignmentPlan, blocks: readonly AssignmentBlock[], share: RecordShare | undefined) => Promise<BlockOutcome[]>;

/** What a block gives the iteration: its records' clusters, and per cluster the sum of its members there. */
export interface BlockOutcome {
  assignments: number[];
  sums: PartialSums;
}

/** The number of clusters a plan assigns to. */
export const planClusters = (plan: AssignmentPlan) => (plan.path === 'shares' ? plan.terms.k : plan.sizes.length);

/** The iteration's plan: the path the records allow, and the per-iteration work of that path. */
export async function planAssignment(
  ctx: ComputeSideContext,
  records: readonly (readonly Ciphertext[])[],
  cp: SecureCheckpoint,
  bounds: DistanceBounds,
  dBits: number,
  opts: SecureKMeansOptions,
): Promise<{ plan: AssignmentPlan; blocks: AssignmentBlock[] }> {
  const k = cp.sizes.length;
  const comparison = opts.comparison ?? 'hidden';
  if (opts.recordLayout && !ctx.dealer)
    throw new KMeansInputError("this job's records were converted for the assignment on shares: start the compute server with its dealer");
  const shared = records[0]!.every((c) => c.A === 1n) && records.length * records[0]!.length <= MAX_SHARED_VALUES;
  const onShares =
    opts.recordLayout !== undefined ||
    (shared && ctx.dealer && comparison !== 'multiplicative' && assignsOnShares(records[0]![0]!.publicKey.params.N, k, bounds.dims, dBits));
  if (onShares) {
    const layout = opts.recordLayout;
    const sums = layout ? await unpackSums(ctx, cp.sums.flat(), cp.sizes, layout, bounds.maxCount) : cp.sums;
    const terms = await centroidTerms(ctx, sums, cp.sizes, bounds, dBits);
    return { plan: { path: 'shares', terms }, blocks: blocksOf(records.length, opts.chunkRecords ?? 1 << 14) };
  }
  // Every answer (about 2 k elements per record) must fit one message.
  const size = Math.max(1, Math.min(opts.chunkRecords ?? 1024, Math.floor(MAX_ELEMENTS / (2 * k)) - 1));
  const plan: AssignmentPlan = shared
    ? { path: 'shared-distances', centroids: await blindCentroids(ctx, cp.sums, cp.sizes, bounds), sizes: cp.sizes, deltaBits: dBits, comparison }
    : { path: 'sdm', sums: cp.sums.map((r) => [...r]), sizes: cp.sizes, bounds, deltaBits: dBits, comparison };
  return { plan, blocks: blocksOf(records.length, size) };
}

function blocksOf(n: number, size: number): AssignmentBlock[] {
  const out: AssignmentBlock[] = [];
  for (let first = 0; first < n; first += size) out.push({ first, count: Math.min(size, n - first) });
  return out;
}

/**
 * One block's assignments under the iteration's plan. `rows` are the block's records (the records
 * [first, first + count) of the job); the path on shares reads none (the key server's share and the
 * compute server's blinds stand for them), so a caller may pass none.
 */
export async function assignBlock(
  ctx: ComputeSideContext,
  rows: readonly (readonly Ciphertext[])[],
  plan: AssignmentPlan,
  block: AssignmentBlock,
  share: RecordShare | undefined,
): Promise<number[]> {
  if (plan.path === 'shares') return nearestCentroids(ctx, requireShare(share), block.first, block.count, plan.terms);
  if (rows.length !== block.count) throw new KMeansInputError(`a block of ${block.count} records got ${rows.length}`);
  const omegas =
    plan.path === 'shared-distances'
      ? await innerDistances(ctx, requireShare(share), block.first, rows, plan.centroids)
      : await secureDistances(ctx, rows, plan.sums, plan.sizes, plan.bounds);
  const nearest = plan.comparison === 'multiplicative' ? secureArgmin : hiddenArgmin;
  return nearest(ctx, omegas, plan.sizes, plan.deltaBits);
}

function requireShare(share: RecordShare | undefined): RecordShare {
  if (!share) throw new KMeansInputError('the assignment on shared records needs the record share');
  return share;
}

/** The default: the blocks one after another in this process. */
export function localBlocks(ctx: ComputeSideContext, records: readonly (readonly Ciphertext[])[]): AssignmentBlocks {
  return async (plan, blocks, share) => {
    const out: BlockOutcome[] = [];
    for (const b of blocks) {
      const rows = records.slice(b.first, b.first + b.count);
      const assignments = await assignBlock(ctx, rows, plan, b, share);
      out.push({ assignments, sums: blockSums(rows, assignments, planClusters(plan)) });
    }
    return out;
  };
}

/**
 * One iteration's assignment: the plan, the record share when the path needs one (made again
 * when the key server lost it), and the blocks.
 */
async function assign(
  ctx: ComputeSideContext,
  records: readonly (readonly Ciphertext[])[],
  cp: SecureCheckpoint,
  bounds: DistanceBounds,
  dBits: number,
  opts: SecureKMeansOptions,
): Promise<BlockOutcome[]> {
  const { plan, blocks } = await planAssignment(ctx, records, cp, bounds, dBits, opts);
  const valueBits = opts.valueBits ?? bitLength(opts.maxAbs) + 1;
  const layout = opts.recordLayout;
  const share = () => (layout ? shareRecordPacks(ctx, records.flat(), layout) : shareRecords(ctx, records, valueBits));
  if (plan.path !== 'sdm') opts.share ??= await share();
  const run = opts.blocks ?? localBlocks(ctx, records);
  try {
    return await run(plan, blocks, opts.share);
  } catch (e) {
    if (!(e instanceof RemoteError && e.code === 'ERR_UNKNOWN_SHARE')) throw e;
    opts.share = await share();
    return run(plan, blocks, opts.share);
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
    const outcomes = await assign(ctx, records, cp, bounds, dBits, opts);
    const assignments = outcomes.flatMap((o) => o.assignments);
    const prev = cp.assignments;
    if (prev && assignments.every((j, i) => j === prev[i])) {
      return { sums: await valuesOf(ctx, cp, opts, n), sizes: cp.sizes, assignments, iterations: cp.iteration + 1, converged: true };
    }
    // Each block summed its own members (in a task, when blocks run on workers).
    const [sums, sizes] = memberSums(outcomes, assignments, cp);
    cp = { iteration: cp.iteration + 1, assignments, sizes, sums };
    await opts.onCheckpoint?.(cp);
  }
  return { sums: await valuesOf(ctx, cp, opts, n), sizes: cp.sizes, assignments: cp.assignments ?? [], iterations: cp.iteration, converged: false };
}

/** The final sums value by value (record packs unpacked). */
async function valuesOf(ctx: ComputeSideContext, cp: SecureCheckpoint, opts: SecureKMeansOptions, n: number): Promise<Ciphertext[][]> {
  return opts.recordLayout ? unpackSums(ctx, cp.sums.flat(), cp.sizes, opts.recordLayout, n) : cp.sums;
}
