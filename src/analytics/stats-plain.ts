/** Plaintext reference of the aggregate queries, in encoded (fixed-point integer) units. */
export function clip(x: bigint, lo: bigint, hi: bigint): bigint {
  return x < lo ? lo : x > hi ? hi : x;
}

export function clippedSum(xs: readonly bigint[], lo: bigint, hi: bigint): bigint {
  return xs.reduce((acc, x) => acc + clip(x, lo, hi), 0n);
}

/** Counts per bin [e_b, e_(b+1)); values below e_0 fall in the first bin, from e_B on in the last. */
export function histogram(xs: readonly bigint[], edges: readonly bigint[]): bigint[] {
  const counts = new Array<bigint>(edges.length - 1).fill(0n);
  for (const x of xs) {
    let b = 0;
    while (b < counts.length - 1 && x >= edges[b + 1]!) b++;
    counts[b]!++;
  }
  return counts;
}
