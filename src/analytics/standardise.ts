/**
 * Private standardisation (seed 002's preprocessing, done on shares): every feature becomes
 * z = (x - mean) * s with s ~ 1 / std over all owners' records together, and neither server sees the
 * mean, the variance or s. Written once against `TensorOps`, like the MLP: `plainOps` runs the
 * same steps as the reference the secure run must equal (up to the engine's truncation error).
 *
 * Every product is kept small before its truncation (the engine's local truncation fails with
 * probability about |x| / 2^63, docs/secret-sharing.md), so sums over records are taken of
 * per-record terms already divided by n, and the variance is computed on u = (x - mean) / B for the
 * public bound B >= |x| of its column the owners declared (a power of two per column). The steps, in fixed point with 16 fraction bits:
 *   mean = sum_i (x_i * c_n) / 2^a          c_n = round(2^(16 + a) / n)
 *   v    = sum_i (u_i^2 * c'_n) / 2^a' + 2^-10
 *   y    = 1 / sqrt(v) by 20 Newton steps y <- y (3 - v y^2) / 2 from y = 1/2 (v <= 4, so it
 *          rises monotonically to the root; 2^-10 keeps a constant feature finite: y <= 32)
 *   s    = y / B,  z = (x - mean) * s
 * The released model carries mean and s, exactly as applied, so prediction repeats the same map.
 * A feature whose standard deviation is below B / 32 is scaled as if 2^-10 B^2 were added to its
 * variance (a floor, where scikit-learn would use 1 for a constant feature).
 *
 * Error: v is known to a few units of 2^-16, so the scale carries a relative error of about
 * 2^-16 / v: 0.4% for a feature whose deviation is B / 16, 0.01% at B / 2 (the mean's error is
 * stated at `columnMean`). On shares the truncations add that much again; the reference and the
 * shares use the same map, and the released model carries the map exactly as applied.
 */
import { ParameterError } from '../crypto/errors.js';
import * as ring from '../mpc/ring.js';
import { addRow, fixed, sumRows, type Tensor, type TensorOps } from './mlp.js';

export const STANDARDISE_NEWTON_STEPS = 20;
/** Added to the variance of u = (x - mean) / B: 2^-10. */
export const VARIANCE_FLOOR = 2 ** -10;

export interface Standardised {
  /** The standardised features [n, d]. */
  z: Tensor;
  /** [1, d] each: the map applied, z = (x - mean) * scale. */
  mean: Tensor;
  scale: Tensor;
}

const log2Ceil = (v: number) => Math.ceil(Math.log2(Math.max(1, v)));
const clamp = (v: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, v));
const neg = (t: Tensor): Tensor => ({ shape: t.shape, data: ring.neg(t.data) });

/**
 * Per column j, sum_i x_ij / n with each term divided first and 2^a_j extra bits kept until the
 * end; `bits[j]` bounds |x_ij| as 2^bits[j]. x_ij c_j stays below 2^(16 + bits) 2^(16 + a) / n <=
 * 2^30 before its truncation. c_j = round(2^(16 + a_j) / n) is off by at most n / 2^(17 + a_j)
 * relative: the mean used (and released) may differ from the exact mean by that fraction of it.
 */
function columnMean(ops: TensorOps, x: Tensor, bits: readonly number[]): Tensor {
  const n = x.shape[0]!;
  const a = bits.map((b) => clamp(log2Ceil(n) - b - 2, 0, 16));
  const cn = a.map((aj) => BigInt(Math.round(2 ** (16 + aj) / n)));
  return ops.scaleColumns(
    sumRows(ops.scaleColumns(x, cn)),
    a.map((aj) => 1n << BigInt(16 - aj)),
  );
}

/** The declared bound B >= |x| keeps every product below 2^31 units; beyond 2^20 it would not. */
export function validateBound(bound: number): void {
  if (!(bound > 0) || !Number.isFinite(bound) || bound > 2 ** 20) throw new ParameterError('the bound of a standardised feature is in (0, 2^20]');
}

/**
 * z = (x - mean) * scale per column on the backend. `bounds[j] >= |x_ij|` is public (the owners'
 * declared ranges), one per column; it sizes every product so no truncation overflows.
 */
export async function standardise(ops: TensorOps, x: Tensor, bounds: readonly number[]): Promise<Standardised> {
  const [n, d] = x.shape as [number, number];
  if (bounds.length !== d) throw new ParameterError(`${bounds.length} feature bounds for ${d} features`);
  bounds.forEach(validateBound);
  if (n < 2) throw new ParameterError('standardisation needs at least two records');
  const B = bounds.map((b) => Math.max(1, b));
  const mean = columnMean(ops, x, B.map(log2Ceil));
  const centred = addRow(x, neg(mean));
  const cu = B.map((b) => BigInt(Math.round(2 ** 16 / b)));
  const u = ops.scaleColumns(centred, cu); // |u| <= 2
  const variance = columnMean(
    ops,
    await ops.mulFixed(u, u),
    B.map(() => 2),
  );
  const v = ops.addPublic(variance, fixed(VARIANCE_FLOOR, d));
  let y = ops.addPublic({ shape: [1, d], data: new BigUint64Array(d) }, fixed(0.5, d));
  for (let k = 0; k < STANDARDISE_NEWTON_STEPS; k++) {
    const vy2 = await ops.mulFixed(v, await ops.mulFixed(y, y));
    y = ops.scale(await ops.mulFixed(y, ops.addPublic(neg(vy2), fixed(3, d))), 1n << 15n);
  }
  const scale = ops.scaleColumns(y, cu);
  const z = await ops.mulFixed(centred, broadcastRows(scale, n));
  return { z, mean, scale };
}

/** [1, d] repeated as [n, d] (local on shares). */
export function broadcastRows(row: Tensor, n: number): Tensor {
  const d = row.shape[1]!;
  const out = new BigUint64Array(n * d);
  for (let i = 0; i < n; i++) out.set(row.data, i * d);
  return { shape: [n, d], data: out };
}
