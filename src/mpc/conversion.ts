/**
 * Conversions between the homomorphic world and secret shares over Z_2^64, both halves here.
 *
 * Ciphertext to shares (one blinded decryption): the compute server (CCS, party 0) adds a fresh
 * encryption of a mask r uniform in [2^l, 2^(l + sigma)) to each [[m]] (|m| < 2^l, sigma = 40)
 * under the ciphertext's own key and sends it; the key server (KMS, party 1) decrypts m + r with its master key
 * (mDec opens a BCP ciphertext under any key, and a KMS-form one) and keeps m + r mod 2^64, the
 * compute server keeps -r mod 2^64. The key server sees m + r, within statistical distance 2^-40 of
 * r alone whatever m is; the compute server sees nothing new.
 *
 * Shares to a ciphertext under any public key pk: each server encrypts its own share, but the
 * shares' sum as integers is m + 2^64 w with a carry w that neither knows, so the carry is
 * computed on XOR shares first (the engine's carry circuit on 65 bits), the key server sends
 * Enc(s_1) and Enc(w_1), and the compute server assembles Enc(s_0 + s_1 - 2^64 (w_0 ^ w_1)) - 2^63
 * homomorphically (shares of m + 2^63 make the sum non-negative) and rerandomises it. The key server
 * never receives a ciphertext back, so its master key opens nothing of the result.
 */
import { ParameterError } from '../crypto/errors.js';
import type { BcpPublicKey } from '../crypto/bcp-keys.js';
import { add, addPlain, rerandomize, scalarMultiply, type Ciphertext } from '../crypto/ciphertext.js';
import { deserializeCiphertexts, serializeCiphertexts } from '../crypto/serialize.js';
import { bitLength, randomBelow } from '../crypto/bigint.js';
import type { MpcParty } from './party.js';
import { toPlanes, bitOf } from './bits.js';
import { msbOfSum } from './primitives/binary.js';
import { share, type ArithmeticShare } from './primitives/arithmetic.js';

/** Statistical hiding of the blinded decryption: the key server's view is 2^-40-close to uniform. */
export const CONVERSION_SIGMA = 40;
const TWO64 = 1n << 64n;
const OFFSET = 1n << 63n;

function checkBound(pk: BcpPublicKey, boundBits: number): void {
  if (!Number.isSafeInteger(boundBits) || boundBits < 1 || boundBits > 63)
    throw new ParameterError(`a conversion bound is 1..63 bits, got ${boundBits}`);
  // m + r < 2^(l + sigma + 1) must stay below N / 2 so the key server reads it without wrapping.
  if (boundBits + CONVERSION_SIGMA + 2 >= bitLength(pk.params.N))
    throw new ParameterError(`a ${boundBits}-bit bound leaves no room for the mask under this N`);
}

/** r uniform in [2^l, 2^(l + sigma)): m + r > 0 for |m| < 2^l, and 2^-40-close to r alone. */
function uniformMask(boundBits: number): bigint {
  const low = 1n << BigInt(boundBits);
  return low + randomBelow((1n << BigInt(boundBits + CONVERSION_SIGMA)) - low);
}

/**
 * Party 0's half of ciphertext to shares: `cts` are under `pk` (a BCP key, or the job key carrying
 * KMS-form elements), each |m| < 2^boundBits. Returns its shares, shape [cts.length].
 */
export async function ciphertextsToShares(
  p: MpcParty,
  cts: readonly Ciphertext[],
  pk: BcpPublicKey,
  boundBits: number,
  encryptMasks: MaskEncryptor,
): Promise<ArithmeticShare> {
  checkBound(pk, boundBits);
  const masks = cts.map(() => uniformMask(boundBits));
  const encrypted = await encryptMasks(masks);
  const blinded = cts.map((c, i) => add(c, encrypted[i]!));
  await p.channel.exchange(serializeCiphertexts(pk, blinded));
  return share(
    [cts.length],
    BigUint64Array.from(masks, (r) => BigInt.asUintN(64, -r)),
  );
}

/**
 * Fresh encryptions of the masks under the ciphertexts' key; they also rerandomise the blinded
 * ciphertexts. Where inputs may be KMS-form elements (whose randomness the key server knows) it
 * must also multiply in a fresh h_N^rho' (the protocols' blindEncrypt kernel), or the key server
 * could read the compute server's scalars off the randomness; plain BCP encryption suffices only
 * for ciphertexts under a user's key.
 */
export type MaskEncryptor = (masks: readonly bigint[]) => Promise<Ciphertext[]>;

/** What the key server decrypts with: its master key, or its protocol state (which records views in tests). */
export interface MasterDecryptor {
  decryptBatch(cts: readonly Ciphertext[]): bigint[] | Promise<bigint[]>;
}

/** Party 1's half: decrypts the blinded values with the master key and keeps them modulo 2^64. */
export async function ciphertextsToSharesAtKeyServer(
  p: MpcParty,
  master: MasterDecryptor,
  pk: BcpPublicKey,
  count: number,
): Promise<ArithmeticShare> {
  const blinded = deserializeCiphertexts(await p.channel.exchange(new Uint8Array(0)), pk, count);
  if (blinded.length !== count) throw new ParameterError(`expected ${count} ciphertexts, got ${blinded.length}`);
  const values = await master.decryptBatch(blinded);
  return share(
    [count],
    BigUint64Array.from(values, (v) => BigInt.asUintN(64, v)),
  );
}

/** XOR shares of the carry out of s_0 + s_1 (unsigned, 64 bits) for shares of m + 2^63. */
async function carryOfSum(p: MpcParty, shifted: BigUint64Array): Promise<Uint32Array> {
  const planes = toPlanes(shifted);
  return msbOfSum(p, [...planes, new Uint32Array(planes[0]!.length)]);
}

/** This party's share of m + 2^63 (party 0 adds the offset). */
const shiftedShare = (p: MpcParty, x: ArithmeticShare) => (p.id === 0 ? x.data.map((v) => v + OFFSET) : x.data);

/** Party 0's half of shares to ciphertexts: returns Enc_pk(m) for each element (signed m). */
export async function sharesToCiphertexts(p: MpcParty, x: ArithmeticShare, pk: BcpPublicKey): Promise<Ciphertext[]> {
  const s = shiftedShare(p, x);
  const w = await carryOfSum(p, s);
  const theirs = deserializeCiphertexts(await p.channel.exchange(new Uint8Array(0)), pk, 2 * s.length);
  if (theirs.length !== 2 * s.length) throw new ParameterError(`expected ${2 * s.length} ciphertexts, got ${theirs.length}`);
  return Array.from(s, (s0, i) => {
    const w0 = bitOf(w, i);
    // w = w0 ^ w1 = w0 + (1 - 2 w0) w1
    const carry = addPlain(scalarMultiply(theirs[2 * i + 1]!, BigInt(1 - 2 * w0)), BigInt(w0));
    const sum = addPlain(add(theirs[2 * i]!, scalarMultiply(carry, -TWO64)), s0 - OFFSET);
    return rerandomize(sum);
  });
}

/** Party 1's half: sends Enc_pk of its share and of its carry share; receives nothing back. */
export async function sharesToCiphertextsAtKeyServer(p: MpcParty, x: ArithmeticShare, pk: BcpPublicKey): Promise<void> {
  const s = shiftedShare(p, x);
  const w = await carryOfSum(p, s);
  const out = Array.from(s, (s1, i) => [pk.encrypt(s1), pk.encrypt(BigInt(bitOf(w, i)))]).flat();
  await p.channel.exchange(serializeCiphertexts(pk, out));
}
