/**
 * The plaintext reference for federated k-means: Lloyd's algorithm on the union of the hosts'
 * records, normalised with the union's own moments, from the same initial rows, with the tolerance
 * rule of federated-kmeans.ts. A federated job must equal it exactly (sums, sizes, iterations,
 * assignments).
 */
import type { ClusterState } from './kmeans-plain.js';
import { localClusterStats, localMoments, movedLessThan, nextState, normalizeRow, type Normalization, type Normalizer } from './federated-kmeans.js';

export interface FederatedOptions {
  k: number;
  maxIter: number;
  /** Stop when every centre moves less than this, in normalised units (> 0). */
  tolerance: number;
  normalize: Normalization;
  fractionBits: number;
}

export interface FederatedResult extends ClusterState {
  normalizer: Normalizer;
  /** Cluster of each record, under the final centres. */
  assignments: number[];
  iterations: number;
  converged: boolean;
}

/** Lloyd's iterations from `start` on normalised rows; shared by the reference and each test's expectations. */
export function lloydWithTolerance(
  rows: readonly (readonly bigint[])[],
  start: ClusterState,
  o: Pick<FederatedOptions, 'maxIter' | 'tolerance' | 'fractionBits'>,
): Omit<FederatedResult, 'normalizer'> {
  let state = start;
  for (let it = 1; it <= o.maxIter; it++) {
    const next = nextState(state, localClusterStats(rows, state).totals);
    const converged = movedLessThan(state, next, o.tolerance, o.fractionBits);
    state = next;
    if (converged || it === o.maxIter) {
      return { ...state, assignments: localClusterStats(rows, state).assignments, iterations: it, converged };
    }
  }
  throw new RangeError('maxIter must be at least 1');
}

/** Federated k-means as if one party held every record: `initIndices` are rows of the union. */
export function federatedReference(union: readonly (readonly bigint[])[], initIndices: readonly number[], o: FederatedOptions): FederatedResult {
  const dims = union[0]!.length;
  const normalizer: Normalizer = { kind: o.normalize, moments: localMoments(union, dims), fractionBits: o.fractionBits };
  const rows = union.map((r) => normalizeRow(normalizer, r));
  const start = { sums: initIndices.map((i) => [...rows[i]!]), sizes: initIndices.map(() => 1n) };
  return { normalizer, ...lloydWithTolerance(rows, start, o) };
}
