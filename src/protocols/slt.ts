/**
 * Secure less-than with an encrypted outcome: Enc([x < c]) for encrypted x and public thresholds c,
 * such that neither server learns the outcome. This is where seed 000's habit of wrapping the
 * comparison answer in a ciphertext is needed: the answer feeds further homomorphic computation
 * (clipping, histogram bins) and must stay hidden from the compute server too.
 *   Alice: D' = 2 (x - c) + 1 (odd, so never 0; x < c iff D' < 0); r in [1, 2^rho), r' in [0, r),
 *          coin s; packs u = s (r D' + r') + 2^(l-1) as in SDC.
 *   Bob:   b = [u - 2^(l-1) < 0] per slot, answers Enc(b) with fresh randomness.
 *   Alice: Enc([x < c]) = Enc(b) if s = +1, Enc(1 - b) if s = -1.
 * Bob sees a fair coin and the magnitude leakage of SDC; Alice sees only ciphertexts.
 */
import { z } from 'zod';
import { randomBytes } from 'node:crypto';
import type { BcpPublicKey } from '../crypto/bcp-keys.js';
import { add, negate, type Ciphertext } from '../crypto/ciphertext.js';
import { randomBelow, randomBetween } from '../crypto/bigint.js';
import { KeyMismatchError } from '../crypto/errors.js';
import { roundTrip, encodeReply, type AliceContext } from './alice.js';
import { decodeMessage, fingerprint, ProtocolError } from './messages.js';
import { sdcMultiplierBits } from './budget.js';
import { pairsOf, type KeyServerState } from './key-server-state.js';
import { packCiphertexts, packCount, unpack } from './packing.js';
import { combineAll, term } from './sm.js';

/** valueBits bounds |x - c|. */
export async function secureLessThan(ctx: AliceContext, xs: readonly Ciphertext[], thresholds: readonly bigint[], valueBits: number): Promise<Ciphertext[]> {
  if (xs.length !== thresholds.length) throw new ProtocolError('one threshold per value');
  if (xs.length === 0) return [];
  const pk = xs[0]!.publicKey;
  if (xs.some((c) => !c.publicKey.equals(pk))) throw new KeyMismatchError('batch mixes public keys');
  const dBits = valueBits + 2;
  const rho = sdcMultiplierBits(pk.params.N, dBits);
  const slotBits = rho + dBits + 2;
  const offset = 1n << BigInt(slotBits - 1);
  const coins = randomBytes(xs.length);
  const sign = (i: number) => (coins[i]! & 1 ? -1n : 1n);
  const rs = xs.map(() => randomBetween(1n, 1n << BigInt(rho)));
  // Enc(s r D') = x^(2 s r) * Enc(s r (1 - 2c))
  const blinded = await combineAll(
    ctx,
    pk,
    xs.map((x, i) => {
      const sr = sign(i) * rs[i]!;
      return { base: [1n, 1n], terms: [term(x, 2n * sr)], t: sr * (1n - 2n * thresholds[i]!) };
    }),
  );
  const constants = xs.map((_, i) => sign(i) * randomBelow(rs[i]!) + offset);
  const packs = await packCiphertexts(ctx, pk, blinded, constants, slotBits);
  const bits = await roundTrip(ctx, 'lt', { key: pk.fingerprint, slotBits }, packs, pk, xs.length);
  return bits.map((b, i) => (coins[i]! & 1 ? add(pk.trivial(1n), negate(b)) : b));
}

const schema = z.object({ key: fingerprint, count: z.number().int().nonnegative(), slotBits: z.number().int().min(2).max(16_384) });

export async function lessThanKeyServer(state: KeyServerState, body: Uint8Array): Promise<Buffer> {
  let pk: BcpPublicKey | undefined;
  const { header, elements } = decodeMessage(body, schema, (h) => {
    pk = state.key(h.key);
    return { elementBytes: pk.params.elementBytes, modulus: pk.params.N2 };
  });
  const N = pk!.params.N;
  if (elements.length !== 2 * packCount(N, header.slotBits, header.count)) throw new ProtocolError('pack count does not match the header');
  const offset = 1n << BigInt(header.slotBits - 1);
  const values = unpack(await state.open('lt-pack', pk!, pairsOf(elements)), N, header.slotBits, header.count).map((u) => u - offset);
  state.observe('lt', values.map((x) => (x < 0n ? N + x : x)));
  return encodeReply(await state.seal(pk!, values.map((x) => (x < 0n ? 1n : 0n))), pk!.params.elementBytes);
}

