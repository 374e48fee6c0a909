/**
 * The master key msk = (p', q') of the key server (KMS), which opens a ciphertext under any public
 * key of the system (mDec, docs/cryptosystem.md).
 *
 * Computation, per prime p (likewise q): for X in G, X^p' mod p^2 = 1 + t p; Lp(X) = t mod p is a
 * homomorphism G -> Z_p with Lp(g^x) = x Lp(g) and Lp(1 + mN) = p' q m. So for (A, B) = (g^r, g^(ar)(1+mN)):
 *   m = (Lp(B) - Lp(h) Lp(A) / Lp(g)) / (p' q)  (mod p),
 * recombined by CRT. That is four exponentiations with ~N/4-bit exponents modulo ~N/2-bit moduli,
 * several times cheaper than the textbook formula, and it needs no g^-gamma. The same step rejects
 * elements outside G: X^p' must be 1 mod p.
 */
import { BcpParams } from './bcp-params.js';
import type { BcpPublicKey } from './bcp-keys.js';
import { toSigned } from './bcp-keys.js';
import { Ciphertext } from './ciphertext.js';
import { backend } from './backends.js';
import { mod } from './bigint.js';
import { CrtPair } from './crt.js';
import { InvalidCiphertextError, KeyMismatchError, ParameterError } from './errors.js';

/** One prime's half of the CRT computation. */
class PrimeHalf {
  readonly p2: bigint;
  readonly p1: bigint;
  /** (p' * other)^-1 mod p: divides out Lp(1 + mN) = p' * other * m. */
  readonly scale: bigint;
  readonly lg: bigint;
  readonly lgInv: bigint;
  constructor(
    readonly p: bigint,
    other: bigint,
    g: bigint,
  ) {
    this.p2 = p * p;
    this.p1 = (p - 1n) / 2n;
    this.scale = backend().modInverse(mod(this.p1 * other, p), p);
    this.lg = this.L(g);
    if (this.lg === 0n) throw new ParameterError('g does not have maximal order');
    this.lgInv = backend().modInverse(this.lg, p);
  }

  /** Lp(X); throws when X is not in the group G. */
  L(x: bigint): bigint {
    const u = backend().modPowSecret(x % this.p2, this.p1, this.p2);
    if (u % this.p !== 1n) throw new InvalidCiphertextError('ciphertext component is not in the group G');
    return (u - 1n) / this.p;
  }

  /** m mod p from Lp(h) / Lp(g) (cached per key) and the ciphertext. */
  plaintext(ratio: bigint, A: bigint, B: bigint): bigint {
    return mod((this.L(B) - ratio * this.L(A)) * this.scale, this.p);
  }
}

export class BcpMasterKey {
  private readonly hp: PrimeHalf;
  private readonly hq: PrimeHalf;
  private readonly crt: CrtPair;
  /** Per public key: [Lp(h)/Lp(g) mod p, Lq(h)/Lq(g) mod q]. */
  private readonly ratios = new Map<bigint, [bigint, bigint]>();

  constructor(
    readonly params: BcpParams,
    readonly p: bigint,
    readonly q: bigint,
  ) {
    if (p * q !== params.N) throw new KeyMismatchError('master key factors do not match N');
    this.hp = new PrimeHalf(p, q, params.g);
    this.hq = new PrimeHalf(q, p, params.g);
    this.crt = new CrtPair(p, q);
  }

  private ratio(pk: BcpPublicKey): [bigint, bigint] {
    let r = this.ratios.get(pk.h);
    if (!r) {
      r = [mod(this.hp.L(pk.h) * this.hp.lgInv, this.p), mod(this.hq.L(pk.h) * this.hq.lgInv, this.q)];
      this.ratios.set(pk.h, r);
    }
    return r;
  }

  /** mDec(msk, pk, c) as a residue in [0, N). */
  decryptResidue(c: Ciphertext): bigint {
    if (!c.publicKey.params.equals(this.params)) {
      throw new KeyMismatchError('ciphertext uses other public parameters');
    }
    const { A, B } = Ciphertext.checked(c.publicKey, c.A, c.B);
    const [rp, rq] = this.ratio(c.publicKey);
    const mp = this.hp.plaintext(rp, A, B);
    const mq = this.hq.plaintext(rq, A, B);
    return this.crt.combine(mp, mq);
  }

  /** mDec as a signed value in (-N/2, N/2]. */
  decrypt(c: Ciphertext): bigint {
    return toSigned(this.decryptResidue(c), this.params.N);
  }

  decryptBatch(cs: readonly Ciphertext[]): bigint[] {
    return cs.map((c) => this.decrypt(c));
  }
}
