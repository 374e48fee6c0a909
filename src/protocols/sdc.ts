/**
 * SDC, secure distance comparison (seed 000 section 4.1 with DESIGN.md 3.4 and 3.6).
 * For clusters a < b: Delta = |c_b|^2 Omega_a - |c_a|^2 Omega_b (a nearer iff Delta < 0) and the odd
 * Delta' = 2 Delta - 1, negative iff Delta <= 0, so ties go to the lower index a.
 *   Alice: r uniform in [1, 2^rho), r' uniform in [0, r), coin s in {+1, -1};
 *          sends Enc(s (r Delta' + r')).
 *   Bob:   answers one bit: is the centred plaintext negative?
 *   Alice: undoes s.
 * Since |Delta'| >= 1 and r' < r, the sign of r Delta' + r' is the sign of Delta'. What Bob learns:
 * the sign he sees is s XOR the answer, a fair coin; the magnitude r|Delta'| + r' tells him
 * log2|Delta| to within the spread of log2 r (about two bits; measured in the tests and the README).
 * The answer bit travels in the clear: without s it is a one-time pad, so wrapping it in Enc_pk_y as
 * the seed does would cost Alice a decryption per comparison and hide nothing more.
 * Alice learns which cluster is nearer, which the scheme gives her anyway (the assignment V).
 */
import { z } from 'zod';
import { randomBytes } from 'node:crypto';
import type { BcpPublicKey } from '../crypto/bcp-keys.js';
import { add, negate, scalarMultiply, type Ciphertext } from '../crypto/ciphertext.js';
import { randomBelow, randomBetween } from '../crypto/bigint.js';
import { KeyMismatchError } from '../crypto/errors.js';
import { encryptAll, flatten, type AliceContext } from './alice.js';
import { decodeMessage, encodeMessage, fingerprint, ProtocolError } from './messages.js';
import { sdcBlindBits } from './budget.js';
import { pairsOf, type KeyServerState } from './key-server-state.js';

export interface Comparison {
  omegaA: Ciphertext;
  omegaB: Ciphertext;
  sizeA: bigint;
  sizeB: bigint;
}

/** Encrypted Delta' = 2 (|c_b|^2 Omega_a - |c_a|^2 Omega_b) - 1, by scalar steps only. */
export function encryptedDelta(c: Comparison): Ciphertext {
  const pk = c.omegaA.publicKey;
  const left = scalarMultiply(c.omegaA, 2n * c.sizeB * c.sizeB);
  const right = scalarMultiply(negate(c.omegaB), 2n * c.sizeA * c.sizeA);
  return add(add(left, right), pk.trivial(-1n));
}

/** For each comparison: true when a is at least as near as b (ties to a, the lower index). */
export async function secureCompare(ctx: AliceContext, items: readonly Comparison[], deltaBits: number): Promise<boolean[]> {
  if (items.length === 0) return [];
  const pk = items[0]!.omegaA.publicKey;
  if (items.some((c) => !c.omegaA.publicKey.equals(pk) || !c.omegaB.publicKey.equals(pk))) {
    throw new KeyMismatchError('SDC batch mixes public keys');
  }
  const rho = sdcBlindBits(pk.params.N, deltaBits);
  const coins = randomBytes(items.length);
  const rs = items.map(() => randomBetween(1n, 1n << BigInt(rho)));
  const rPrimes = await encryptAll(ctx, pk, rs.map((r) => randomBelow(r)));
  const blinded = items.map((c, i) => {
    const masked = add(scalarMultiply(encryptedDelta(c), rs[i]!), rPrimes[i]!);
    return coins[i]! & 1 ? negate(masked) : masked;
  });
  const body = encodeMessage({ key: pk.fingerprint, count: items.length }, flatten(blinded), pk.params.elementBytes);
  const reply = Buffer.from(await ctx.transport.call('sign', body));
  if (reply.length !== items.length || reply.some((b) => b > 1)) throw new ProtocolError('malformed SDC answer');
  // Bob says "negative"; with the coin undone, negative Delta' means a is at least as near.
  return items.map((_, i) => (reply[i]! === 1) !== Boolean(coins[i]! & 1));
}

const schema = z.object({ key: fingerprint, count: z.number().int().nonnegative() });

export async function signKeyServer(state: KeyServerState, body: Uint8Array): Promise<Buffer> {
  let pk: BcpPublicKey | undefined;
  const { header, elements } = decodeMessage(body, schema, (h) => {
    pk = state.key(h.key);
    return { elementBytes: pk.params.elementBytes, modulus: pk.params.N2 };
  });
  if (elements.length !== 2 * header.count) throw new ProtocolError('element count does not match the header');
  const half = pk!.params.N / 2n;
  const values = await state.open('sdc', pk!, pairsOf(elements));
  return Buffer.from(values.map((v) => (v > half ? 1 : 0)));
}
