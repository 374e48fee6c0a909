/**
 * SMDM, secure minimum distance (seed 000 section 4.1): the nearest cluster of every record, as a
 * running minimum over clusters 1..k. Step j compares each record's current best (always a lower
 * index than j) with cluster j by SDC, all records together: k - 1 round trips per call, not
 * n (k - 1). Alice learns the argmin (the assignment V, which the scheme reveals to her); Bob learns
 * only what SDC shows him.
 */
import type { Ciphertext } from '../crypto/ciphertext.js';
import { ProtocolError } from './messages.js';
import { secureCompare } from './sdc.js';
import type { ComputeSideContext } from './round-trip.js';

/** omegas: n x k (from SDM), sizes: k. Returns the nearest cluster per record, ties to the lower index. */
export async function secureArgmin(
  ctx: ComputeSideContext,
  omegas: readonly (readonly Ciphertext[])[],
  sizes: readonly bigint[],
  deltaBits: number,
): Promise<number[]> {
  const k = sizes.length;
  if (omegas.some((row) => row.length !== k)) throw new ProtocolError('one distance per cluster');
  const best = omegas.map(() => 0);
  for (let j = 1; j < k; j++) {
    const aNearer = await secureCompare(
      ctx,
      omegas.map((row, i) => ({ omegaA: row[best[i]!]!, omegaB: row[j]!, sizeA: sizes[best[i]!]!, sizeB: sizes[j]! })),
      deltaBits,
    );
    aNearer.forEach((keep, i) => {
      if (!keep) best[i] = j;
    });
  }
  return best;
}
