/**
 * Joint decryption under a joint BCP key (seed 002's model release, without its KGC). Users i hold
 * sk_i = a_i with pk_i = g^(a_i); the joint key is pk = prod pk_i = g^(sum a_i), so no party ever
 * holds its secret key. For a ciphertext (A, B) = (g^r, pk^r (1 + mN)) each user contributes the
 * partial decryption d_i = A^(a_i) mod N^2; with all n of them (all are needed) Y = prod d_i = pk^r
 * and m = L(B / Y).
 *
 * Each partial comes with a proof that it used the key behind pk_i: a Chaum-Pedersen proof of
 * equal discrete logarithms log_g pk_i = log_A* d* (Fiat-Shamir, SHA-256), for one random linear
 * combination A* = prod A_k^(e_k), d* = prod d_k^(e_k) of the whole batch (e_k 128-bit, from a hash
 * of the batch, so one proof covers every ciphertext except with probability about 2^-128). The
 * group Z_N^2* has an order nobody knows, so the response is an integer, z = w + c a_i with w
 * 168 bits longer than c a_i (statistical zero knowledge, 2^-40). It catches a wrong or careless
 * partial decryption and names its author; it is not meant to stop a prover who knows the
 * factorisation of N (nobody but the key server's setup does).
 */
import { createHash } from 'node:crypto';
import { backend } from './backends.js';
import { BcpPublicKey, type BcpSecretKey } from './bcp-keys.js';
import { Ciphertext } from './ciphertext.js';
import { bitLength, randomBelow } from './bigint.js';
import { CiphermineError, KeyMismatchError } from './errors.js';

export class PartialDecryptionError extends CiphermineError {
  constructor(message: string) {
    super('ERR_KEY_MISMATCH', message);
  }
}

export interface PartialDecryption {
  /** d_k = A_k^(a_i) for every ciphertext of the batch. */
  d: bigint[];
  proof: { t1: bigint; t2: bigint; z: bigint };
}

/** pk = prod pk_i: the joint key of several users (same public parameters). */
export function jointPublicKey(pks: readonly BcpPublicKey[]): BcpPublicKey {
  if (pks.length === 0) throw new KeyMismatchError('a joint key needs at least one key');
  const params = pks[0]!.params;
  if (pks.some((pk) => !pk.params.equals(params))) throw new KeyMismatchError('joint keys need one set of public parameters');
  return new BcpPublicKey(
    params,
    pks.reduce((h, pk) => backend().modMul(h, pk.h, params.N2), 1n),
  );
}

const hashToInt = (bits: number, ...parts: (string | number | bigint)[]): bigint => {
  const h = createHash('sha256');
  for (const p of parts) h.update(String(p)).update('\0');
  return BigInt('0x' + h.digest('hex')) >> BigInt(256 - bits);
};

/** The batch's combination A* = prod A_k^(e_k), d* = prod d_k^(e_k). */
function combination(context: string, cts: readonly Ciphertext[], d: readonly bigint[], N2: bigint): [bigint, bigint] {
  const be = backend();
  let A = 1n;
  let D = 1n;
  cts.forEach((c, k) => {
    const e = hashToInt(128, 'ciphermine joint decryption v1', context, k, c.A, d[k]!);
    A = be.modMul(A, be.modPow(c.A, e, N2), N2);
    D = be.modMul(D, be.modPow(d[k]!, e, N2), N2);
  });
  return [A, D];
}

const challenge = (context: string, pk: BcpPublicKey, A: bigint, D: bigint, t1: bigint, t2: bigint) =>
  hashToInt(128, 'ciphermine joint decryption challenge v1', context, pk.params.g, pk.h, A, D, t1, t2);

/** User i's partial decryption of a batch under the joint key, with its proof. `context` binds it (job, user). */
export function partialDecrypt(sk: BcpSecretKey, cts: readonly Ciphertext[], context: string): PartialDecryption {
  const { N2, g } = sk.publicKey.params;
  const be = backend();
  const d = cts.map((c) => be.modPowSecret(c.A, sk.a, N2));
  const [A, D] = combination(context, cts, d, N2);
  const w = randomBelow(1n << BigInt(bitLength(sk.a) + 128 + 40));
  const t1 = be.modPowSecret(g, w, N2);
  const t2 = be.modPowSecret(A, w, N2);
  const c = challenge(context, sk.publicKey, A, D, t1, t2);
  return { d, proof: { t1, t2, z: w + c * sk.a } };
}

/** Checks user i's partial decryption against its public key pk_i; throws naming `who` otherwise. */
export function verifyPartial(pk: BcpPublicKey, cts: readonly Ciphertext[], part: PartialDecryption, context: string, who: string): void {
  const { N2, g } = pk.params;
  const be = backend();
  if (part.d.length !== cts.length) throw new PartialDecryptionError(`${who}'s partial decryption covers ${part.d.length} values, not ${cts.length}`);
  if (part.d.some((x) => x <= 0n || x >= N2)) throw new PartialDecryptionError(`${who}'s partial decryption has a value out of range`);
  const [A, D] = combination(context, cts, part.d, N2);
  const { t1, t2, z } = part.proof;
  const c = challenge(context, pk, A, D, t1, t2);
  const ok =
    z > 0n && be.modPow(g, z, N2) === be.modMul(t1, be.modPow(pk.h, c, N2), N2) && be.modPow(A, z, N2) === be.modMul(t2, be.modPow(D, c, N2), N2);
  if (!ok) throw new PartialDecryptionError(`${who}'s partial decryption does not verify against their public key: refusing to combine it`);
}

/** The plaintexts (signed) from every user's verified partial decryption. */
export function combinePartials(cts: readonly Ciphertext[], parts: readonly PartialDecryption[]): bigint[] {
  const { N, N2 } = cts[0]!.publicKey.params;
  const be = backend();
  return cts.map((c, k) => {
    const Y = parts.reduce((y, p) => be.modMul(y, p.d[k]!, N2), 1n);
    const diff = (((c.B - Y) % N2) + N2) % N2;
    if (diff % N !== 0n) throw new PartialDecryptionError('the partial decryptions do not open the model: a key is missing or wrong');
    const m = be.modMul(diff / N, be.modInverse(Y % N, N), N);
    return m > N / 2n ? m - N : m;
  });
}
