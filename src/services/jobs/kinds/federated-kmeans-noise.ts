/**
 * Differentially private totals for federated k-means (beyond seed 003; docs/federated.md): before a
 * round's totals are released, both servers add a share of discrete Laplace noise under encryption
 * (sPMDP, seed 001: the compute server its own share, the key server its share encrypted under the
 * job key), so no party knows the noise and not even the hosts learn exact statistics of each other.
 *
 * Budget: epsilon is split evenly over the releases that depend on the records (the moments and
 * every iteration: maxIter + 1 of them), and within a release half to the sums and half to the
 * counts. Sensitivities, for adding or removing one record with |value| <= maxAbs (B = maxAbs 2^f
 * encoded, doubled after mean-centring): the m column sums or one cluster's m sums change by at most
 * m B in L1, one count by 1. The initial centres are records themselves and are not protected.
 */
import { add, type BcpPublicKey, type Ciphertext } from '../../../crypto/index.js';
import { laplaceSpec, sampleShare, type NoiseSpec } from '../../../crypto/noise/mechanisms.js';
import { rational } from '../../../crypto/noise/rational.js';
import { exactRatio, momentsLength } from '../../../analytics/federated-kmeans.js';
import type { NoiseControl } from '../../../analytics/stats-secure.js';
import { keyServerNoiseShares, type ComputeSideContext } from '../../../protocols/index.js';
import { encryptAll } from '../../../protocols/round-trip.js';
import { FixedPointCodec } from '../../../crypto/index.js';

export interface NoiseParams {
  epsilon?: number;
  maxIter: number;
  k: number;
  columns: readonly string[];
  normalize: 'none' | 'mean' | 'zscore';
  fractionBits: number;
  maxAbs: number;
}

/** epsilon / (2 (maxIter + 1)) as an exact rational: one half of one release's share. */
function halfRound(p: NoiseParams) {
  const { num, den } = exactRatio(p.epsilon!);
  return rational(num, den * 2n * BigInt(p.maxIter + 1));
}

function encodedBound(p: NoiseParams): bigint {
  return new FixedPointCodec({ fractionBits: p.fractionBits, maxAbs: p.maxAbs }).maxEncoded;
}

/** One spec per value of a round's vector, or undefined when the job releases exact totals. */
export function roundNoise(p: NoiseParams, topic: string): NoiseSpec[] | undefined {
  if (p.epsilon === undefined) return undefined;
  const m = p.columns.length;
  const counts = laplaceSpec(1n, halfRound(p));
  if (topic === 'moments') {
    const sums = laplaceSpec(BigInt(m) * encodedBound(p), halfRound(p));
    return [...new Array<NoiseSpec>(momentsLength(m, p.normalize) - 1).fill(sums), counts];
  }
  if (!topic.startsWith('round-')) return undefined;
  const B = encodedBound(p) * (p.normalize === 'none' ? 1n : 2n);
  const sums = laplaceSpec(BigInt(m) * B, halfRound(p));
  return [...new Array<NoiseSpec>(p.k * m).fill(sums), ...new Array<NoiseSpec>(p.k).fill(counts)];
}

/** Adds both servers' noise shares to the totals under the job key. */
export async function addNoise(
  ctx: ComputeSideContext,
  pk: BcpPublicKey,
  totals: Ciphertext[],
  specs: NoiseSpec[],
  control: NoiseControl,
): Promise<Ciphertext[]> {
  if (control.disabled) return totals;
  const own = specs.map((s) => sampleShare(s, 0));
  control.onComputeServerNoise?.(own);
  const mine = await encryptAll(ctx, pk, own);
  const out = totals.map((c, i) => add(c, mine[i]!));
  for (const s of new Set(specs)) {
    const idx = specs.flatMap((x, i) => (x === s ? [i] : []));
    const theirs = await keyServerNoiseShares(ctx, pk, s, idx.length);
    idx.forEach((i, j) => (out[i] = add(out[i]!, theirs[j]!)));
  }
  return out;
}
