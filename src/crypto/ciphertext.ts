/**
 * A BCP ciphertext (A, B) = (g^r, h^r (1 + mN)) mod N^2 and its homomorphic operations. A
 * ciphertext remembers its public key, so operations on ciphertexts of different keys fail loudly
 * instead of producing garbage.
 */
import type { BcpPublicKey } from './bcp-keys.js';
import { backend } from './backends.js';
import { mod } from './bigint.js';
import { InvalidCiphertextError, KeyMismatchError } from './errors.js';

export class Ciphertext {
  constructor(
    readonly publicKey: BcpPublicKey,
    readonly A: bigint,
    readonly B: bigint,
  ) {}

  /** Range check of both components; what arrives from outside goes through here. */
  static checked(publicKey: BcpPublicKey, A: bigint, B: bigint): Ciphertext {
    const N2 = publicKey.params.N2;
    if (A < 1n || A >= N2 || B < 1n || B >= N2) {
      throw new InvalidCiphertextError('ciphertext component outside [1, N^2)');
    }
    return new Ciphertext(publicKey, A, B);
  }
}

function sameKey(a: Ciphertext, b: Ciphertext): void {
  if (!a.publicKey.equals(b.publicKey)) {
    throw new KeyMismatchError('ciphertexts are under different public keys');
  }
}

/** Enc(m1) * Enc(m2) = Enc(m1 + m2). */
export function add(a: Ciphertext, b: Ciphertext): Ciphertext {
  sameKey(a, b);
  const N2 = a.publicKey.params.N2;
  const be = backend();
  return new Ciphertext(a.publicKey, be.modMul(a.A, b.A, N2), be.modMul(a.B, b.B, N2));
}

/** Enc(m)^(-1) = Enc(-m). */
export function negate(c: Ciphertext): Ciphertext {
  const N2 = c.publicKey.params.N2;
  const be = backend();
  try {
    return new Ciphertext(c.publicKey, be.modInverse(c.A, N2), be.modInverse(c.B, N2));
  } catch {
    throw new InvalidCiphertextError('ciphertext component is not invertible modulo N^2');
  }
}

export function subtract(a: Ciphertext, b: Ciphertext): Ciphertext {
  return add(a, negate(b));
}

/**
 * Enc(m)^k = Enc(k m) for any integer k. Negative scalars invert first so the exponent stays as
 * short as |k| (a 64-bit scalar costs a 64-bit exponentiation, not one of N's size).
 */
export function scalarMultiply(c: Ciphertext, k: bigint): Ciphertext {
  const N = c.publicKey.params.N;
  const N2 = c.publicKey.params.N2;
  k = mod(k, N);
  if (k === 0n) return c.publicKey.trivial(0n);
  if (k > N / 2n) return scalarMultiply(negate(c), N - k);
  const be = backend();
  return new Ciphertext(c.publicKey, be.modPow(c.A, k, N2), be.modPow(c.B, k, N2));
}

/**
 * Multiplies by a fresh Enc(0): same plaintext, unlinkable components, still decryptable with the
 * key's secret. Not enough for a KMS-form ciphertext on its way to the key server, which also needs a
 * fresh h_N^rho' (kms-paillier.ts; the protocols' blindEncrypt and pack kernels add it).
 */
export function rerandomize(c: Ciphertext): Ciphertext {
  return add(c, c.publicKey.encrypt(0n));
}

/** Adds a public constant without a fresh encryption. */
export function addPlain(c: Ciphertext, m: bigint): Ciphertext {
  return add(c, c.publicKey.trivial(m));
}
