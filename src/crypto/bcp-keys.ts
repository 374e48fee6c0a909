/**
 * BCP user keys (docs/cryptosystem.md): sk = a uniform in [1, N^2/4), pk = h = g^a mod N^2.
 * Every party of the system (data owner DO, query client QC, the compute server's comparison key
 * pk_y, the job key pk_c of the key server KMS) holds a pair like this over the same pp.
 */
import { createHash } from 'node:crypto';
import { BcpParams, PowerCache } from './bcp-params.js';
import { Ciphertext } from './ciphertext.js';
import { backend } from './backends.js';
import { mod, randomBetween, randomBelow, toBytes } from './bigint.js';
import { InvalidCiphertextError, KeyMismatchError, ParameterError } from './errors.js';

/** Maps a signed plaintext into Z_N; refuses anything that would wrap. */
export function toResidue(m: bigint, N: bigint): bigint {
  if (m >= N || -m >= N - N / 2n) throw new ParameterError('plaintext outside (-N/2, N)');
  return mod(m, N);
}

/** The centred representative of a residue: (-N/2, N/2]. */
export function toSigned(m: bigint, N: bigint): bigint {
  return m > N / 2n ? m - N : m;
}

export class BcpPublicKey {
  readonly fingerprint: string;
  private readonly hPowers: PowerCache;
  constructor(
    readonly params: BcpParams,
    readonly h: bigint,
  ) {
    if (h <= 1n || h >= params.N2) throw new ParameterError('public key outside (1, N^2)');
    this.fingerprint = createHash('sha256')
      .update('ciphermine/bcp-pk/v1')
      .update(params.fingerprint)
      .update(toBytes(h, params.elementBytes))
      .digest('hex')
      .slice(0, 32);
    this.hPowers = new PowerCache(h, params.N2, params.bits);
  }

  equals(other: BcpPublicKey): boolean {
    return this === other || (this.h === other.h && this.params.equals(other.params));
  }

  /** Enc(pk, m) with fresh r uniform in Z_N; m signed in (-N/2, N/2] or a residue in [0, N). */
  encrypt(m: bigint): Ciphertext {
    return this.encryptWith(m, randomBelow(this.params.N));
  }

  /** Enc with caller-chosen randomness; for tests and for deterministic replays only. */
  encryptWith(m: bigint, r: bigint): Ciphertext {
    const { N, N2 } = this.params;
    const A = this.params.gPow(r);
    const B = backend().modMul(this.hPowers.pow(r), 1n + toResidue(m, N) * N, N2);
    return new Ciphertext(this, A, B);
  }

  encryptBatch(ms: readonly bigint[]): Ciphertext[] {
    return ms.map((m) => this.encrypt(m));
  }

  /** (1, 1 + mN): no randomness. Never send one out without rerandomising it first. */
  trivial(m: bigint): Ciphertext {
    const { N, N2 } = this.params;
    return new Ciphertext(this, 1n, (1n + toResidue(m, N) * N) % N2);
  }

  /** Builds the fixed-base tables for g and h now instead of after the first few dozen uses. */
  precompute(): void {
    this.params.precompute();
    this.hPowers.precompute();
  }
}

export class BcpSecretKey {
  constructor(
    readonly publicKey: BcpPublicKey,
    readonly a: bigint,
  ) {
    const { params } = publicKey;
    if (a < 1n || a >= params.N2) throw new ParameterError('secret key outside [1, N^2)');
  }

  /** Checks that a matches h; a mismatched pair would decrypt everything to garbage. */
  static checked(publicKey: BcpPublicKey, a: bigint): BcpSecretKey {
    const sk = new BcpSecretKey(publicKey, a);
    const { g, N2 } = publicKey.params;
    if (backend().modPowSecret(g, a, N2) !== publicKey.h) {
      throw new KeyMismatchError('secret key does not match its public key');
    }
    return sk;
  }

  /** Dec(sk, (A, B)) as a signed value in (-N/2, N/2]. */
  decrypt(c: Ciphertext): bigint {
    return toSigned(this.decryptResidue(c), this.publicKey.params.N);
  }

  /**
   * m = L(B / A^a). Using B = Y (1 + mN) with Y = A^a, (B - Y) / N = m Y (mod N), so one inverse
   * modulo N replaces one modulo N^2, and a non-multiple of N exposes a wrong key or a tampered
   * ciphertext.
   */
  decryptResidue(c: Ciphertext): bigint {
    if (!c.publicKey.equals(this.publicKey)) {
      throw new KeyMismatchError('ciphertext is under another public key');
    }
    const { N, N2 } = this.publicKey.params;
    const be = backend();
    const checked = Ciphertext.checked(this.publicKey, c.A, c.B);
    const Y = be.modPowSecret(checked.A, this.a, N2);
    const diff = mod(checked.B - Y, N2);
    if (diff % N !== 0n) {
      throw new KeyMismatchError('ciphertext does not decrypt under this key (wrong key or tampered)');
    }
    let yInv: bigint;
    try {
      yInv = be.modInverse(Y % N, N);
    } catch {
      throw new InvalidCiphertextError('ciphertext component shares a factor with N');
    }
    return be.modMul(diff / N, yInv, N);
  }

  decryptBatch(cs: readonly Ciphertext[]): bigint[] {
    return cs.map((c) => this.decrypt(c));
  }
}

/** KeyGen(pp). */
export function keyGen(params: BcpParams): BcpSecretKey {
  const a = randomBetween(1n, params.N2 / 4n);
  const pk = new BcpPublicKey(params, backend().modPowSecret(params.g, a, params.N2));
  return new BcpSecretKey(pk, a);
}
