/**
 * Bit budgets (docs/cryptosystem.md): before a computation starts, bound every intermediate and
 * refuse the job when it would not fit below N/2 with the blinding margin. Never wrap silently.
 */
import { bitLength } from '../crypto/bigint.js';
import { CiphermineError } from '../crypto/errors.js';

/** Statistical security of multiplicative blinding in SDC, in bits. */
export const SIGMA = 40;

export class BitBudgetError extends CiphermineError {
  constructor(message: string) {
    super('ERR_BIT_BUDGET', message);
  }
}

export interface DistanceBounds {
  /** Largest |encoded value| of any attribute. */
  maxAbs: bigint;
  dims: number;
  /** Largest cluster size (the record count). */
  maxCount: number;
}

/** Bound on Omega = sum (|c| d - s)^2: each term is at most (2 n D)^2. */
export function omegaBound(b: DistanceBounds): bigint {
  const term = 2n * BigInt(b.maxCount) * b.maxAbs;
  return BigInt(b.dims) * term * term;
}

/** Bits of |Delta'| = |2 (|c_b|^2 Omega_a - |c_a|^2 Omega_b) - 1|. */
export function deltaBits(b: DistanceBounds): number {
  const n2 = BigInt(b.maxCount) ** 2n;
  return bitLength(4n * n2 * omegaBound(b) + 1n);
}

/**
 * Bits of SDC's multiplier r, or a BitBudgetError when fewer than SIGMA remain. A packed slot holds
 * r |Delta'| + r' plus a sign offset, rho + dBits + 2 bits, and must fit in bits(N) - 2.
 */
export function sdcBlindBits(N: bigint, dBits: number): number {
  const r = bitLength(N) - 4 - dBits;
  if (r < SIGMA) {
    throw new BitBudgetError(
      `comparison values need ${dBits} bits, leaving ${r} bits of blinding below N/2 (need ${SIGMA}); ` +
        'use a larger key, fewer fractional bits or a smaller value range',
    );
  }
  return r;
}

/**
 * Bits of SDC's multiplier r as used: enough for statistical hiding, no more. What the key server
 * learns of |Delta| from r |Delta'| + r' depends on the spread of log2 r, not on its size, so a
 * longer r would only make the compute server's exponentiations slower.
 */
export function sdcMultiplierBits(N: bigint, dBits: number): number {
  return Math.min(sdcBlindBits(N, dBits), SIGMA + 24);
}

/** Bits of |t| = | |c| d - s | in SDM, whose squares the key server sums. */
export function differenceBits(b: DistanceBounds): number {
  return bitLength(2n * BigInt(b.maxCount) * b.maxAbs);
}

/** Checks a distance computation fits, so SDM's Omega never wraps modulo N. */
export function checkDistanceBudget(N: bigint, b: DistanceBounds): void {
  if (omegaBound(b) >= N / 2n) throw new BitBudgetError('squared distances would exceed N/2');
  sdcBlindBits(N, deltaBits(b));
}
