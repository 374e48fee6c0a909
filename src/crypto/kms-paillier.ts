/**
 * Paillier encryption under the key server's own modulus N ("KMS form"), for intermediate values
 * that only the key server (KMS) ever decrypts:
 *   c = (1 + mN) * h_N^rho mod N^2,   h_N = (x^2)^N mod N^2,
 * with x derived from N by SHAKE256 (so h_N has no trapdoor and both servers compute it alone) and
 * rho uniform in the group <h_N> (order dividing p'q'). It is Paillier with the randomness drawn
 * from the squares, as in Damgard-Jurik-Nielsen's fixed-base variant: semantically secure under
 * DCR (squaring maps a DCR challenge to one of this form).
 *
 * Why: only the key server knows p and q, so it encrypts with two exponentiations of ~N/2-bit
 * exponents modulo p^2 and q^2 from fixed-base tables (about 0.5 ms at 2048 bits, against 3 ms for a
 * BCP encryption), and a KMS-form ciphertext is one group element instead of two, which halves every
 * homomorphic step of the compute server. The element is carried as a BCP ciphertext (1, c) under
 * the job key, so the rest of the code (and mDec, since h_N lies in G and Lp(h_N) = 0) needs no
 * change; such a ciphertext can only be opened with the master key.
 *
 * The rule that comes with it: the key server knows the rho of every element it made, so whatever
 * the compute server sends back must carry a fresh factor h_N^rho' (rho' uniform in [0, N 2^40)),
 * or the key server could read the compute server's secret exponents off the randomness.
 */
import { createHash } from 'node:crypto';
import { backend } from './backends.js';
import type { FixedBase } from './backend.js';
import { bitLength, mod, randomBelow } from './bigint.js';
import { CrtPair } from './crt.js';

/** Statistical distance of rho' from uniform on <h_N>: 2^-40. */
const RHO_MARGIN = 40;

const bases = new Map<bigint, bigint>();

/** h_N = (x^2)^N mod N^2 for x = SHAKE256(N, counter) mod N, the first one that is a unit. */
export function kmsBase(N: bigint): bigint {
  let h = bases.get(N);
  if (h === undefined) {
    const N2 = N * N;
    for (let counter = 0; h === undefined; counter++) {
      // SHAKE256 output 128 bits longer than N, so x is close to uniform modulo N.
      const bytes = Math.ceil(bitLength(N) / 8) + 16;
      const digest = createHash('shake256', { outputLength: bytes })
        .update(`ciphermine kms base ${N.toString(16)} ${counter}`)
        .digest('hex');
      const x = BigInt('0x' + digest) % N;
      if (x > 1n && gcd(x, N) === 1n) h = backend().modPow(x * x, N, N2);
    }
    bases.set(N, h);
  }
  return h;
}

function gcd(a: bigint, b: bigint): bigint {
  while (b) [a, b] = [b, a % b];
  return a;
}

/** The compute server's side: fresh factors h_N^rho' from a fixed-base table modulo N^2. */
export class KmsRerandomizer {
  private readonly table: FixedBase;
  private readonly bound: bigint;
  constructor(readonly N: bigint) {
    const bits = bitLength(N) + RHO_MARGIN;
    this.bound = 1n << BigInt(bits);
    this.table = backend().fixedBase(kmsBase(N), N * N, bits, 7);
  }
  factor(): bigint {
    return this.factorWith(randomBelow(this.bound));
  }
  /** h_N^rho' for a caller-chosen rho' >= 0; for test vectors and deterministic replays only. */
  factorWith(rho: bigint): bigint {
    return this.table.pow(rho);
  }
}

/** The key server's side: encryption by CRT with per-prime fixed-base tables (exponents ~N/2 bits). */
export class KmsEncryptor {
  private readonly crt: CrtPair;
  private readonly halves: Array<{ m: bigint; order: bigint; h: FixedBase }>;
  constructor(
    readonly N: bigint,
    p: bigint,
    q: bigint,
  ) {
    const hN = kmsBase(N);
    this.crt = new CrtPair(p * p, q * q);
    // Modulo p^2, h_N = x^(2pq) has order dividing p' = (p - 1) / 2: rho mod p' and rho mod q' are
    // independent and uniform exactly when rho is uniform modulo p'q'.
    this.halves = [p, q].map((r) => {
      const m = r * r;
      const order = (r - 1n) / 2n;
      return { m, order, h: backend().fixedBase(hN % m, m, bitLength(order), 8) };
    });
  }
  /** The group element (1 + mN) h_N^rho mod N^2. */
  encrypt(msg: bigint): bigint {
    const oneMN = 1n + mod(msg, this.N) * this.N;
    const be = backend();
    const [cp, cq] = this.halves.map(({ m, order, h }) => be.modMul(h.pow(randomBelow(order)), oneMN % m, m));
    return this.crt.combine(cp!, cq!);
  }
  /**
   * (1 + mN) h_N^rho mod N^2 for a caller-chosen rho >= 0 (reduced modulo p' and q', the orders of
   * h_N modulo p^2 and q^2). Exists for test vectors and deterministic replays only.
   */
  encryptWith(msg: bigint, rho: bigint): bigint {
    const oneMN = 1n + mod(msg, this.N) * this.N;
    const be = backend();
    const [cp, cq] = this.halves.map(({ m, order, h }) => be.modMul(h.pow(mod(rho, order)), oneMN % m, m));
    return this.crt.combine(cp!, cq!);
  }
}
