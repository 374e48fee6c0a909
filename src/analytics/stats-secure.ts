/**
 * Differentially private aggregates over encrypted data (seed 001: PMDP and sPMDP,
 * docs/differential-privacy.md), the compute server's side. Values arrive under the job key pk_c. Clipping and
 * histogram bins use secure comparisons with encrypted outcomes, so neither server learns where a
 * value lies; sums are homomorphic; noise is added under encryption (pmdp: by the compute server,
 * the designated party; spmdp: a share from each server, so neither knows the total); the noisy
 * results are moved to the query client's key by SCT, and only the query client decrypts.
 *
 * Adjacency: count, sum, histogram and the mean (as noisy sum / noisy count) protect the addition
 * or removal of one record; sample-and-aggregate (a mean over a public number of records split into
 * blocks) protects the replacement of one record.
 */
import { randomInt } from 'node:crypto';
import { add, addPlain, negate, scalarMultiply, type Ciphertext } from '../crypto/ciphertext.js';
import type { BcpPublicKey } from '../crypto/bcp-keys.js';
import { bitLength } from '../crypto/bigint.js';
import { CiphermineError } from '../crypto/errors.js';
import { gaussianSpec, gumbelBound, laplaceSpec, sample, sampleShare, type NoiseKind, type NoiseSpec } from '../crypto/noise/mechanisms.js';
import { div, rational, toNumber, type Rational } from '../crypto/noise/rational.js';
import { encryptAll, type ComputeSideContext } from '../protocols/round-trip.js';
import { keyServerNoiseShares, secureMultiply, sct } from '../protocols/index.js';
import { GUMBEL_FRACTION_BITS, keyServerGumbel } from '../protocols/noise-share.js';
import { hiddenArgmin, MAX_ARGMIN_CHOICES } from '../mpc/hidden-argmin.js';
import { hiddenLessThan } from '../mpc/hidden-less-than.js';

export type StatsKind = 'count' | 'sum' | 'mean' | 'histogram' | 'mode';
export type ReleaseMode = 'pmdp' | 'spmdp';

export class StatsQueryError extends CiphermineError {
  constructor(message: string) {
    super('ERR_STATS_QUERY', message);
  }
}

export interface StatsQuery {
  kind: StatsKind;
  /** Clipping bounds in encoded units (sum, mean). */
  lo: bigint;
  hi: bigint;
  /** Bin edges in encoded units (histogram, mode), strictly increasing, at least two. */
  edges?: bigint[];
  epsilon: Rational;
  mechanism: NoiseKind;
  delta?: number;
  mode: ReleaseMode;
  /** Sample-and-aggregate blocks (mean), each of the public size `blockSize`. */
  blocks?: number;
  blockSize?: number;
  /** Bits of the largest |encoded value| in the data. */
  valueBits: number;
}

/** Test-only hooks: production code paths never set these. */
export interface NoiseControl {
  disabled?: boolean;
  /** Sees the compute server's own noise shares (spmdp) or whole noise (pmdp). */
  onComputeServerNoise?: (values: readonly bigint[]) => void;
}

export interface StatsResult {
  /** Under the query client's key. */
  released: Ciphertext[];
  /** For sample-and-aggregate: released value / divisor = mean of block means (encoded units). */
  divisor?: bigint;
  /** For mode: the chosen bin. */
  choice?: number;
  records: number;
}

export function validateQuery(q: StatsQuery): void {
  if (!(q.epsilon.num > 0n)) throw new StatsQueryError('epsilon must be > 0');
  if ((q.kind === 'sum' || q.kind === 'mean') && !(q.lo < q.hi)) throw new StatsQueryError('clipping bounds must satisfy lo < hi');
  if (q.kind === 'histogram' || q.kind === 'mode') {
    const e = q.edges ?? [];
    if (e.length < 2 || e.some((x, i) => i > 0 && !(x > e[i - 1]!))) throw new StatsQueryError('bin edges must be at least two, strictly increasing');
    if (q.kind === 'mode' && e.length - 1 > MAX_ARGMIN_CHOICES)
      throw new StatsQueryError(`a mode query has at most ${MAX_ARGMIN_CHOICES} bins (${MAX_ARGMIN_CHOICES + 1} edges)`);
  }
  if (q.mechanism === 'gaussian' && !(q.delta !== undefined && q.delta > 0 && q.delta < 1))
    throw new StatsQueryError('the Gaussian mechanism needs delta in (0, 1)');
  // The classic calibration sigma = Delta sqrt(2 ln(1.25/delta)) / epsilon holds only for epsilon < 1.
  if (q.mechanism === 'gaussian' && !(q.epsilon.num < q.epsilon.den)) throw new StatsQueryError('the Gaussian mechanism needs epsilon < 1');
  // The Gumbel scale 2/epsilon, clipped at 64 scales in 2^16 units, must be a finite number of bits
  // that leaves the argmin's slots room under N: checked here, before the query is charged.
  if (q.kind === 'mode' && !(64 * toNumber(div(rational(2n), q.epsilon)) * 2 ** GUMBEL_FRACTION_BITS < 2 ** 900))
    throw new StatsQueryError('epsilon is too small for the mode (its noise would not fit the comparison)');
  if (q.kind === 'mode' && q.mode !== 'pmdp') throw new StatsQueryError('the exponential mechanism (mode) runs in pmdp mode only');
  if (q.blocks !== undefined && (q.kind !== 'mean' || !Number.isInteger(q.blocks) || q.blocks < 2))
    throw new StatsQueryError('blocks (sample-and-aggregate) is for mean queries, at least 2');
  if ((q.blocks === undefined) !== (q.blockSize === undefined))
    throw new StatsQueryError('sample-and-aggregate needs both blocks and blockSize (the public size of a block)');
  if (q.blockSize !== undefined && (!Number.isInteger(q.blockSize) || q.blockSize < 1 || q.blocks! * q.blockSize > MAX_SAMPLE))
    throw new StatsQueryError(`blockSize is a positive integer, and blocks * blockSize at most ${MAX_SAMPLE}`);
}

/** `share` of the query's budget: the mean spends half of epsilon and half of delta on each part. */
function spec(q: StatsQuery, sensitivity: bigint, epsilon: Rational, share = 1): NoiseSpec {
  return q.mechanism === 'laplace' ? laplaceSpec(sensitivity, epsilon) : gaussianSpec(sensitivity, epsilon, q.delta! * share);
}

/** Adds noise of the given specs under encryption, per the release mode. */
async function addNoise(
  ctx: ComputeSideContext,
  pk: BcpPublicKey,
  values: Ciphertext[],
  specs: NoiseSpec[],
  q: StatsQuery,
  noise: NoiseControl,
): Promise<Ciphertext[]> {
  if (noise.disabled) return values;
  const own = specs.map((s) => (q.mode === 'pmdp' ? sample(s) : sampleShare(s, 0)));
  noise.onComputeServerNoise?.(own);
  let out = (await encryptAll(ctx, pk, own)).map((z, i) => add(values[i]!, z));
  if (q.mode === 'spmdp') {
    // One round trip per distinct spec (all released values of a query share one in practice).
    for (const s of new Set(specs)) {
      const idx = specs.map((x, i) => (x === s ? i : -1)).filter((i) => i >= 0);
      const shares = await keyServerNoiseShares(ctx, pk, s, idx.length);
      idx.forEach((i, j) => (out[i] = add(out[i]!, shares[j]!)));
    }
  }
  return out;
}

/** clip(x) = x + [x < lo](lo - x) - [x > hi](x - hi), with encrypted indicators and SM. */
export async function secureClip(ctx: ComputeSideContext, xs: Ciphertext[], lo: bigint, hi: bigint, valueBits: number): Promise<Ciphertext[]> {
  const n = xs.length;
  const bits = Math.max(valueBits, bitLength(lo), bitLength(hi)) + 2;
  const ind = await hiddenLessThan(ctx, [...xs, ...xs], [...xs.map(() => lo), ...xs.map(() => hi + 1n)], bits);
  const pk = xs[0]!.publicKey;
  const below = ind.slice(0, n);
  const above = ind.slice(n).map((b) => add(pk.trivial(1n), negate(b))); // [x > hi] = 1 - [x < hi + 1]
  const products = await secureMultiply(ctx, [...below, ...above], [...xs.map((x) => addPlain(negate(x), lo)), ...xs.map((x) => addPlain(x, -hi))]);
  return xs.map((x, i) => add(add(x, products[i]!), negate(products[n + i]!)));
}

function sum(cs: readonly Ciphertext[], pk: BcpPublicKey): Ciphertext {
  return cs.reduce((acc, c) => add(acc, c), pk.trivial(0n));
}

/** C_j = number of values below each edge; counts per bin from their differences. */
async function binCounts(ctx: ComputeSideContext, xs: Ciphertext[], edges: bigint[], valueBits: number): Promise<Ciphertext[]> {
  const pk = xs[0]!.publicKey;
  const inner = edges.slice(1, -1);
  const bits = Math.max(valueBits, ...edges.map((e) => bitLength(e))) + 2;
  const ind = await hiddenLessThan(
    ctx,
    inner.flatMap(() => xs),
    inner.flatMap((e) => xs.map(() => e)),
    bits,
  );
  const below = inner.map((_, j) => sum(ind.slice(j * xs.length, (j + 1) * xs.length), pk));
  const C = [pk.trivial(0n), ...below, pk.trivial(BigInt(xs.length))];
  return C.slice(1).map((c, b) => add(c, negate(C[b]!)));
}

/** Largest sample-and-aggregate sample, b * s. */
export const MAX_SAMPLE = 1 << 24;

/**
 * The records of `blocks` blocks of public size `size`: min(n, b s) of the n, drawn uniformly
 * without replacement (node:crypto). With fewer than b s records some slots stay empty (they count
 * as 0), so nothing about n decides what is released beyond the value itself.
 */
export function sampleForBlocks(n: number, blocks: number, size: number): number[] {
  const idx = Array.from({ length: n }, (_, i) => i);
  const m = Math.min(n, blocks * size);
  for (let i = 0; i < m; i++) {
    const j = i + randomInt(n - i);
    [idx[i], idx[j]] = [idx[j]!, idx[i]!];
  }
  return idx.slice(0, m);
}

/**
 * Sample-and-aggregate sensitivity with public block sizes: replacing a record moves one block sum
 * by at most hi - lo; adding or removing one fills or empties a slot (at most max(|lo|, |hi|)) or
 * displaces another record (a replacement). So one bound serves both adjacencies.
 */
export function blockSensitivity(lo: bigint, hi: bigint): bigint {
  const abs = (x: bigint) => (x < 0n ? -x : x);
  return [hi - lo, abs(lo), abs(hi)].reduce((a, b) => (b > a ? b : a), 1n);
}

/**
 * The per-value part of a query over the column: the clipped values summed (all, or only the sampled
 * positions), or the count per bin. Its result over the whole column is the sum of its results over
 * any split of the column into ranges, so ranges may run anywhere (ColumnAggregate).
 */
export type ColumnOp =
  { op: 'clipped-sum'; lo: bigint; hi: bigint; valueBits: number; sample?: readonly number[] } | { op: 'bins'; edges: bigint[]; valueBits: number };

/** Runs a ColumnOp over the column (default: here, at once; the DP job kind: as chunk tasks). */
export type ColumnAggregate = (op: ColumnOp) => Promise<Ciphertext[]>;

/** A ColumnOp over the values xs, which are the column's positions [first, first + xs.length). */
export async function aggregateRange(ctx: ComputeSideContext, xs: Ciphertext[], first: number, op: ColumnOp): Promise<Ciphertext[]> {
  const pk = xs[0]!.publicKey;
  if (op.op === 'bins') return binCounts(ctx, xs, op.edges, op.valueBits);
  const clipped = await secureClip(ctx, xs, op.lo, op.hi, op.valueBits);
  const picked = op.sample ? op.sample.filter((i) => i >= first && i < first + xs.length).map((i) => clipped[i - first]!) : clipped;
  return [picked.length ? sum(picked, pk) : pk.trivial(0n)];
}

/** Partial results of ranges added up: what the whole column gives. */
export function addPartials(parts: readonly (readonly Ciphertext[])[]): Ciphertext[] {
  return parts[0]!.map((_, j) => parts.slice(1).reduce((a, p) => add(a, p[j]!), parts[0]![j]!));
}

export async function secureStats(
  ctx: ComputeSideContext,
  xs: Ciphertext[],
  q: StatsQuery,
  clientKey: BcpPublicKey,
  noise: NoiseControl = {},
  aggregate: ColumnAggregate = (op) => aggregateRange(ctx, xs, 0, op),
): Promise<StatsResult> {
  validateQuery(q);
  const n = xs.length;
  if (n === 0) throw new StatsQueryError('no records');
  const pk = xs[0]!.publicKey;
  const maxClip = (q.lo < 0n ? -q.lo : q.lo) > (q.hi < 0n ? -q.hi : q.hi) ? (q.lo < 0n ? -q.lo : q.lo) : q.hi < 0n ? -q.hi : q.hi;
  let values: Ciphertext[];
  let specs: NoiseSpec[];
  let divisor: bigint | undefined;
  let choice: number | undefined;
  switch (q.kind) {
    case 'count':
      values = [pk.trivial(BigInt(n))];
      specs = [spec(q, 1n, q.epsilon)];
      break;
    case 'sum': {
      values = await aggregate({ op: 'clipped-sum', lo: q.lo, hi: q.hi, valueBits: q.valueBits });
      specs = [spec(q, maxClip > 0n ? maxClip : 1n, q.epsilon)];
      break;
    }
    case 'mean': {
      const clip = { op: 'clipped-sum', lo: q.lo, hi: q.hi, valueBits: q.valueBits } as const;
      if (q.blocks) {
        // Mean of block means with the public block size s: every block mean is its sum over s,
        // so the released integer is the sampled sum and the divisor b s is public, not n.
        const sample = sampleForBlocks(n, q.blocks, q.blockSize!);
        values = await aggregate({ ...clip, sample });
        divisor = BigInt(q.blocks * q.blockSize!);
        specs = [spec(q, blockSensitivity(q.lo, q.hi), q.epsilon)];
      } else {
        const half = div(q.epsilon, rational(2n));
        values = [...(await aggregate(clip)), pk.trivial(BigInt(n))];
        specs = [spec(q, maxClip > 0n ? maxClip : 1n, half, 0.5), spec(q, 1n, half, 0.5)];
      }
      break;
    }
    case 'histogram': {
      values = await aggregate({ op: 'bins', edges: q.edges!, valueBits: q.valueBits });
      const s = spec(q, 1n, q.epsilon);
      specs = values.map(() => s);
      break;
    }
    case 'mode': {
      // Exponential mechanism as argmax(count_b + Gumbel(2 / epsilon)), in fixed point, compared
      // securely (the engine's argmin on the negated scores). The Gumbel noise comes encrypted
      // from the key server: the compute server, which learns the chosen bin, never knows the
      // noise, so the choice is epsilon-DP against it too; the key server knows the noise but
      // learns neither the counts nor the choice.
      const counts = await aggregate({ op: 'bins', edges: q.edges!, valueBits: q.valueBits });
      const F = GUMBEL_FRACTION_BITS;
      const scale = div(rational(2n), q.epsilon);
      const cap = gumbelBound(toNumber(scale), F);
      const gumbel = noise.disabled ? counts.map(() => pk.trivial(0n)) : await keyServerGumbel(ctx, pk, scale, counts.length);
      const scores = counts.map((c, b) => negate(add(scalarMultiply(c, 1n << BigInt(F)), gumbel[b]!)));
      const bound = (BigInt(n) << BigInt(F)) + cap;
      const [best] = await hiddenArgmin(
        ctx,
        [scores],
        scores.map(() => 1n),
        bitLength(4n * bound) + 2,
      );
      choice = best!;
      values = [];
      specs = [];
      break;
    }
  }
  const noisy = await addNoise(ctx, pk, values, specs, q, noise);
  return { released: noisy.length ? await sct(ctx, noisy, clientKey) : [], divisor, choice, records: n };
}
