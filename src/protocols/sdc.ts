/**
 * SDC, secure distance comparison (seed 000 section 4.1 with DESIGN.md 3.4 and 3.6), packed.
 * For clusters a < b: Delta = |c_b|^2 Omega_a - |c_a|^2 Omega_b (a nearer iff Delta < 0) and the odd
 * Delta' = 2 Delta - 1, negative iff Delta <= 0, so ties go to the lower index a.
 *   Alice: r uniform in [1, 2^rho), r' uniform in [0, r), coin s in {+1, -1}; the slot value is
 *          u = s (r Delta' + r') + 2^(l-1), l = rho + bits(Delta') + 2, so u is in (0, 2^l).
 *          Enc(s r Delta') comes from Omega_a, Omega_b by signed exponents of about rho + 16 bits;
 *          slots are packed, one fresh encryption of the constants s r' + 2^(l-1) per pack.
 *   Bob:   decrypts each pack once, answers one bit per slot: is u - 2^(l-1) negative?
 *   Alice: undoes s.
 * Since |Delta'| >= 1 and r' < r, the sign of r Delta' + r' is the sign of Delta'. What Bob learns:
 * the sign he sees is s XOR the answer, a fair coin; the magnitude r|Delta'| + r' tells him
 * log2|Delta| to within the spread of log2 r (about one bit; measured in the tests and the README).
 * rho = min(bits(N) - 3 - bits(Delta'), 64) >= 40: a longer r would hide nothing more.
 * The answer bit travels in the clear: without s it is a one-time pad, so wrapping it in Enc_pk_y as
 * the seed does would cost Alice a decryption per comparison and hide nothing more.
 * Alice learns which cluster is nearer, which the scheme gives her anyway (the assignment V).
 */
import { z } from 'zod';
import { randomBytes } from 'node:crypto';
import type { BcpPublicKey } from '../crypto/bcp-keys.js';
import type { Ciphertext } from '../crypto/ciphertext.js';
import { randomBelow, randomBetween } from '../crypto/bigint.js';
import { KeyMismatchError } from '../crypto/errors.js';
import { flatten, type AliceContext } from './alice.js';
import { decodeMessage, encodeMessage, fingerprint, ProtocolError } from './messages.js';
import { sdcMultiplierBits } from './budget.js';
import { pairsOf, type KeyServerState } from './key-server-state.js';
import { packCiphertexts, packCount, unpack } from './packing.js';
import { combineAll, term } from './sm.js';

export interface Comparison {
  omegaA: Ciphertext;
  omegaB: Ciphertext;
  sizeA: bigint;
  sizeB: bigint;
}

/** For each comparison: true when a is at least as near as b (ties to a, the lower index). */
export async function secureCompare(ctx: AliceContext, items: readonly Comparison[], deltaBits: number): Promise<boolean[]> {
  if (items.length === 0) return [];
  const pk = items[0]!.omegaA.publicKey;
  if (items.some((c) => !c.omegaA.publicKey.equals(pk) || !c.omegaB.publicKey.equals(pk))) {
    throw new KeyMismatchError('SDC batch mixes public keys');
  }
  const rho = sdcMultiplierBits(pk.params.N, deltaBits);
  const slotBits = rho + deltaBits + 2;
  const offset = 1n << BigInt(slotBits - 1);
  const coins = randomBytes(items.length);
  const sign = (i: number) => (coins[i]! & 1 ? -1n : 1n);
  const rs = items.map(() => randomBetween(1n, 1n << BigInt(rho)));
  // Enc(s r Delta') = Omega_a^(2 |c_b|^2 s r) * Omega_b^(-2 |c_a|^2 s r) * Enc(-s r)
  const blinded = await combineAll(
    ctx,
    pk,
    items.map((c, i) => {
      const sr = sign(i) * rs[i]!;
      return { base: [1n, 1n], terms: [term(c.omegaA, 2n * c.sizeB * c.sizeB * sr), term(c.omegaB, -2n * c.sizeA * c.sizeA * sr)], t: -sr };
    }),
  );
  const constants = items.map((_, i) => sign(i) * randomBelow(rs[i]!) + offset);
  const packs = await packCiphertexts(ctx, pk, blinded, constants, slotBits);
  const body = encodeMessage({ key: pk.fingerprint, count: items.length, slotBits }, flatten(packs), pk.params.elementBytes);
  const reply = Buffer.from(await ctx.transport.call('sign', body));
  if (reply.length !== items.length || reply.some((b) => b > 1)) throw new ProtocolError('malformed SDC answer');
  // Bob says "negative"; with the coin undone, negative Delta' means a is at least as near.
  return items.map((_, i) => (reply[i]! === 1) !== Boolean(coins[i]! & 1));
}

const schema = z.object({
  key: fingerprint,
  count: z.number().int().nonnegative(),
  slotBits: z.number().int().min(2).max(16_384),
});

export async function signKeyServer(state: KeyServerState, body: Uint8Array): Promise<Buffer> {
  let pk: BcpPublicKey | undefined;
  const { header, elements } = decodeMessage(body, schema, (h) => {
    pk = state.key(h.key);
    return { elementBytes: pk.params.elementBytes, modulus: pk.params.N2 };
  });
  const N = pk!.params.N;
  if (elements.length !== 2 * packCount(N, header.slotBits, header.count)) throw new ProtocolError('pack count does not match the header');
  const offset = 1n << BigInt(header.slotBits - 1);
  const values = unpack(await state.open('sdc-pack', pk!, pairsOf(elements)), N, header.slotBits, header.count).map((u) => u - offset);
  state.observe('sdc', values.map((x) => (x < 0n ? N + x : x)));
  return Buffer.from(values.map((x) => (x < 0n ? 1 : 0)));
}
