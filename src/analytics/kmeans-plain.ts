/**
 * Plaintext Lloyd's k-means over fixed-point integers: the reference the encrypted job must equal
 * exactly. Centroids are kept as (sum, size) like the encrypted scheme, distances are compared as
 * |c_b|^2 Omega_a vs |c_a|^2 Omega_b in exact integers, ties go to the lower index, an empty cluster
 * keeps its last sum and size, and the loop stops when the assignment repeats (docs/protocols.md).
 */
export interface ClusterState {
  sums: bigint[][];
  sizes: bigint[];
}

export interface KMeansResult extends ClusterState {
  assignments: number[];
  iterations: number;
  converged: boolean;
}

/** Omega = sum (|c| d - s)^2, the scaled squared distance. */
export function omega(row: readonly bigint[], sum: readonly bigint[], size: bigint): bigint {
  let acc = 0n;
  for (let a = 0; a < row.length; a++) {
    const t = size * row[a]! - sum[a]!;
    acc += t * t;
  }
  return acc;
}

export function nearest(row: readonly bigint[], state: ClusterState): number {
  let best = 0;
  let bestOmega = omega(row, state.sums[0]!, state.sizes[0]!);
  for (let j = 1; j < state.sizes.length; j++) {
    const o = omega(row, state.sums[j]!, state.sizes[j]!);
    const cb = state.sizes[best]!;
    const cj = state.sizes[j]!;
    if (cj * cj * bestOmega - cb * cb * o > 0n) {
      best = j;
      bestOmega = o;
    }
  }
  return best;
}

export function initialState(data: readonly (readonly bigint[])[], initIndices: readonly number[]): ClusterState {
  return { sums: initIndices.map((i) => [...data[i]!]), sizes: initIndices.map(() => 1n) };
}

export function updateState(data: readonly (readonly bigint[])[], assignments: readonly number[], prev: ClusterState): ClusterState {
  const k = prev.sizes.length;
  const m = prev.sums[0]!.length;
  const sums = Array.from({ length: k }, () => new Array<bigint>(m).fill(0n));
  const sizes = new Array<bigint>(k).fill(0n);
  assignments.forEach((j, i) => {
    sizes[j]!++;
    for (let a = 0; a < m; a++) sums[j]![a]! += data[i]![a]!;
  });
  for (let j = 0; j < k; j++) {
    if (sizes[j] === 0n) {
      sums[j] = [...prev.sums[j]!];
      sizes[j] = prev.sizes[j]!;
    }
  }
  return { sums, sizes };
}

export function lloyd(data: readonly (readonly bigint[])[], initIndices: readonly number[], maxIter: number): KMeansResult {
  let state = initialState(data, initIndices);
  let prev: number[] | undefined;
  for (let it = 1; it <= maxIter; it++) {
    const assignments = data.map((row) => nearest(row, state));
    if (prev && assignments.every((j, i) => j === prev![i])) {
      return { ...state, assignments, iterations: it, converged: true };
    }
    state = updateState(data, assignments, state);
    prev = assignments;
  }
  return { ...state, assignments: prev ?? [], iterations: maxIter, converged: false };
}

/** Centroid coordinates in encoded units (sum / size), as numbers. */
export function centroids(state: ClusterState, scale: number): number[][] {
  return state.sums.map((s, j) => s.map((x) => Number(x) / Number(state.sizes[j]!) / scale));
}
