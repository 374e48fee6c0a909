/**
 * Chinese remainder helpers for whoever knows the factorisation N = p q (the key server, KMS):
 * work modulo p^k and q^k, where numbers are half as long and an exponentiation is several times
 * cheaper, then recombine with Garner's formula.
 */
import { backend } from './backends.js';
import { mod } from './bigint.js';
import { ParameterError } from './errors.js';

export class CrtPair {
  /** mq^-1 mod mp, for Garner's recombination. */
  private readonly mqInv: bigint;
  readonly modulus: bigint;

  constructor(
    readonly mp: bigint,
    readonly mq: bigint,
  ) {
    if (mp <= 1n || mq <= 1n) throw new ParameterError('CRT moduli must be > 1');
    this.mqInv = backend().modInverse(mq % mp, mp);
    this.modulus = mp * mq;
  }

  /** The x mod mp * mq with x = xp (mod mp) and x = xq (mod mq). */
  combine(xp: bigint, xq: bigint): bigint {
    return xq + this.mq * mod((xp - xq) * this.mqInv, this.mp);
  }

  /** base^exp modulo mp * mq, computed as two half-size exponentiations; exp is secret-safe. */
  modPow(base: bigint, exp: bigint): bigint {
    const be = backend();
    return this.combine(be.modPowSecret(base % this.mp, exp, this.mp), be.modPowSecret(base % this.mq, exp, this.mq));
  }
}
