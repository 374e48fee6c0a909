/**
 * Federated k-means (seed 003): the arithmetic every host does on its own records, shared with the
 * plaintext reference (federated-kmeans-plain.ts) so that the two agree exactly. Everything is in
 * fixed-point integers (crypto/encoding.ts); the only values that leave a host are its per-cluster
 * sums and counts (seed 003's S_j^A = C_ij * n_j) and, for the private normalisation, its per-column
 * sums, sums of squares and record count, all encrypted (services/jobs/kinds/federated-kmeans.ts).
 *
 * Conventions, so that hosts and reference compute the same integers:
 * - normalisation (seed 003 section III.A, "private data normalisation"): with the global count n,
 *   column sums S and sums of squares Q, `mean` maps x to round(x - S/n) and `zscore` to
 *   round((x n - S) 2^f / sqrt(n Q - S^2)), i.e. (x - mean) / std in units of 2^-f, with the square
 *   root taken exactly on integers; a constant column becomes 0;
 * - assignment: kmeans-plain.ts's `nearest` (exact integer distances, ties to the lower index);
 * - update: the new sums and sizes are the totals over all hosts; an empty cluster keeps its centre;
 * - stopping: when every centre moves less than the tolerance (Euclidean, in normalised units of
 *   the input, like scikit-learn's `tol` on centre shifts), compared exactly as rationals, or at the
 *   iteration limit. The assignments reported are those to the final centres.
 */
import { nearest, type ClusterState } from './kmeans-plain.js';

export type Normalization = 'none' | 'mean' | 'zscore';

/** One host's (or the union's) moments for the private mean: per-column sums, sums of squares, count. */
export interface Moments {
  sums: bigint[];
  squares: bigint[];
  count: bigint;
}

/** What the hosts learn from the private mean, and how a value is normalised with it. */
export interface Normalizer {
  kind: Normalization;
  moments: Moments;
  fractionBits: number;
}

export function localMoments(rows: readonly (readonly bigint[])[], dims: number): Moments {
  const sums = new Array<bigint>(dims).fill(0n);
  const squares = new Array<bigint>(dims).fill(0n);
  for (const r of rows)
    for (let a = 0; a < dims; a++) {
      sums[a]! += r[a]!;
      squares[a]! += r[a]! * r[a]!;
    }
  return { sums, squares, count: BigInt(rows.length) };
}

/** Flattened as sent: sums, then squares (zscore only), then the count. */
export function momentsVector(m: Moments, kind: Normalization): bigint[] {
  return [...m.sums, ...(kind === 'zscore' ? m.squares : []), m.count];
}

export function momentsFromVector(v: readonly bigint[], dims: number, kind: Normalization): Moments {
  const squares = kind === 'zscore' ? v.slice(dims, 2 * dims) : new Array<bigint>(dims).fill(0n);
  return { sums: v.slice(0, dims), squares, count: v[v.length - 1]! };
}

export function momentsLength(dims: number, kind: Normalization): number {
  return dims * (kind === 'zscore' ? 2 : 1) + 1;
}

/** floor(a / b) for b > 0 (BigInt division truncates towards zero). */
export function floorDiv(a: bigint, b: bigint): bigint {
  const q = a / b;
  return a % b !== 0n && a < 0n ? q - 1n : q;
}

/** a / b rounded to the nearest integer, halves up, for b > 0. */
export function roundDiv(a: bigint, b: bigint): bigint {
  return floorDiv(2n * a + b, 2n * b);
}

/** floor(sqrt(x)) for x >= 0, by Newton's method on integers. */
export function isqrt(x: bigint): bigint {
  if (x < 2n) return x;
  let y = 1n << BigInt(Math.ceil(x.toString(2).length / 2));
  for (;;) {
    const next = (y + x / y) >> 1n;
    if (next >= y) return y;
    y = next;
  }
}

/** Extra bits kept in sqrt(n Q - S^2) so the z-score rounds like the exact real value almost always. */
const ROOT_BITS = 32n;

export function normalizeRow(z: Normalizer, row: readonly bigint[]): bigint[] {
  const { sums, squares, count: n } = z.moments;
  if (z.kind === 'none') return [...row];
  if (z.kind === 'mean') return row.map((x, a) => roundDiv(x * n - sums[a]!, n));
  return row.map((x, a) => {
    const root = isqrt((n * squares[a]! - sums[a]! * sums[a]!) << (2n * ROOT_BITS));
    return root === 0n ? 0n : roundDiv((x * n - sums[a]!) << (BigInt(z.fractionBits) + ROOT_BITS), root);
  });
}

/** A normalised value back in the input's units (for display; not exact). */
export function denormalize(z: Normalizer, column: number, y: number): number {
  const scale = 2 ** z.fractionBits;
  const n = Number(z.moments.count);
  const mean = Number(z.moments.sums[column]!) / n / scale;
  if (z.kind === 'none') return y;
  if (z.kind === 'mean') return y + mean;
  const s = z.moments.sums[column]!;
  const variance = Number(z.moments.count * z.moments.squares[column]! - s * s) / n / n / scale / scale;
  return y * Math.sqrt(variance) + mean;
}

/** The local half of one iteration: this host's records assigned to the current centres. */
export function localClusterStats(rows: readonly (readonly bigint[])[], state: ClusterState): { assignments: number[]; totals: ClusterState } {
  const k = state.sizes.length;
  const m = state.sums[0]!.length;
  const sums = Array.from({ length: k }, () => new Array<bigint>(m).fill(0n));
  const sizes = new Array<bigint>(k).fill(0n);
  const assignments = rows.map((r) => {
    const j = nearest(r, state);
    sizes[j]!++;
    for (let a = 0; a < m; a++) sums[j]![a]! += r[a]!;
    return j;
  });
  return { assignments, totals: { sums, sizes } };
}

/** Sums then counts, as sent. */
export function clusterVector(s: ClusterState): bigint[] {
  return [...s.sums.flat(), ...s.sizes];
}

export function clusterFromVector(v: readonly bigint[], k: number, dims: number): ClusterState {
  return {
    sums: Array.from({ length: k }, (_, j) => v.slice(j * dims, (j + 1) * dims)),
    sizes: v.slice(k * dims, k * dims + k),
  };
}

export function addClusters(a: ClusterState, b: ClusterState): ClusterState {
  return { sums: a.sums.map((s, j) => s.map((x, i) => x + b.sums[j]![i]!)), sizes: a.sizes.map((c, j) => c + b.sizes[j]!) };
}

/**
 * The new centres from the global totals: an empty cluster keeps its previous sum and size (a count
 * of 0 or below, which only noise can make, counts as empty).
 */
export function nextState(prev: ClusterState, totals: ClusterState): ClusterState {
  return {
    sums: totals.sums.map((s, j) => (totals.sizes[j]! <= 0n ? [...prev.sums[j]!] : [...s])),
    sizes: totals.sizes.map((c, j) => (c <= 0n ? prev.sizes[j]! : c)),
  };
}

/** A finite positive double as an exact fraction num / den (every double is m 2^e). */
export function exactRatio(x: number): { num: bigint; den: bigint } {
  let den = 1n;
  while (!Number.isInteger(x)) {
    x *= 2;
    den *= 2n;
  }
  return { num: BigInt(x), den };
}

/**
 * True when every centre moved less than `tolerance` (in the normalised input's units, so 2^f
 * encoded units): |s/n - s'/n'| < tol 2^f, compared without division as
 * sum (s n' - s' n)^2 den^2 < num^2 4^f (n n')^2.
 */
export function movedLessThan(prev: ClusterState, next: ClusterState, tolerance: number, fractionBits: number): boolean {
  const { num, den } = exactRatio(tolerance);
  return prev.sizes.every((n, j) => {
    const n2 = next.sizes[j]!;
    let d = 0n;
    prev.sums[j]!.forEach((s, a) => {
      const t = s * n2 - next.sums[j]![a]! * n;
      d += t * t;
    });
    const nn = n * n2;
    return d * den * den < num * num * (1n << (2n * BigInt(fractionBits))) * nn * nn;
  });
}
