/**
 * SDM, secure squared distance (seed 000 Algorithm 4 with the square restored, DESIGN.md 3.3):
 *   Omega_ij = sum_alpha (|c_j| d_i,alpha - s_j,alpha)^2,
 * so Omega_ij / |c_j|^2 is the squared distance from record i to the centroid s_j / |c_j|.
 * |c_j| is known to Alice, so |c_j| d is a scalar exponentiation (DESIGN.md 3.5); the squares go
 * through one batched secure-square round trip for all (i, j, alpha). Bob sees only uniform values.
 */
import { add, negate, scalarMultiply, type Ciphertext } from '../crypto/ciphertext.js';
import { ProtocolError } from './messages.js';
import { secureSquare } from './sm.js';
import type { AliceContext } from './alice.js';

/** records: n x m, sums: k x m, sizes: k. Returns Omega as n x k. */
export async function secureDistances(
  ctx: AliceContext,
  records: readonly (readonly Ciphertext[])[],
  sums: readonly (readonly Ciphertext[])[],
  sizes: readonly bigint[],
): Promise<Ciphertext[][]> {
  const k = sums.length;
  const m = sums[0]?.length ?? 0;
  if (sizes.length !== k) throw new ProtocolError('one size per cluster');
  if (records.some((r) => r.length !== m) || sums.some((s) => s.length !== m)) throw new ProtocolError('dimension mismatch');
  const negSums = sums.map((s) => s.map(negate));
  const diffs: Ciphertext[] = [];
  for (const d of records) {
    for (let j = 0; j < k; j++) {
      for (let a = 0; a < m; a++) diffs.push(add(scalarMultiply(d[a]!, sizes[j]!), negSums[j]![a]!));
    }
  }
  const squares = await secureSquare(ctx, diffs);
  const out: Ciphertext[][] = [];
  for (let i = 0, at = 0; i < records.length; i++) {
    const row: Ciphertext[] = [];
    for (let j = 0; j < k; j++) {
      let acc = squares[at++]!;
      for (let a = 1; a < m; a++) acc = add(acc, squares[at++]!);
      row.push(acc);
    }
    out.push(row);
  }
  return out;
}
