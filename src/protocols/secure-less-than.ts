/**
 * Secure less-than with an encrypted outcome: Enc([x < c]) for encrypted x and public thresholds c,
 * such that neither server learns the outcome. This is where seed 000's habit of wrapping the
 * comparison answer in a ciphertext is needed: the answer feeds further homomorphic computation
 * (clipping, histogram bins) and must stay hidden from the compute server too.
 *   Alice: D' = 2 (x - c) + 1 (odd; x < c iff D' < 0), sign-blinded as in SDC (sign-blinding.ts).
 *   Bob:   b = "the slot is negative", answered as Enc(b) with fresh randomness.
 *   Alice: Enc([x < c]) = Enc(b) if her coin was +1, Enc(1 - b) if it was -1.
 * Bob sees a fair coin and the magnitude leakage of SDC; Alice sees only ciphertexts.
 */
import { add, negate, type Ciphertext } from '../crypto/ciphertext.js';
import type { BcpPublicKey } from '../crypto/bcp-keys.js';
import { KeyMismatchError } from '../crypto/errors.js';
import { roundTrip, encodeReply, type ComputeSideContext } from './round-trip.js';
import { ProtocolError } from './messages.js';
import type { KeyServerState } from './key-server-state.js';
import { blindSigns, openSigns } from './sign-blinding.js';

/**
 * The common checks of a comparison batch: one threshold per value, one public key for all.
 * Returns that key, or undefined for an empty batch.
 */
export function comparisonKey(xs: readonly Ciphertext[], thresholds: readonly bigint[]): BcpPublicKey | undefined {
  if (xs.length !== thresholds.length) throw new ProtocolError('one threshold per value');
  if (xs.length === 0) return undefined;
  const pk = xs[0]!.publicKey;
  if (xs.some((c) => !c.publicKey.equals(pk))) throw new KeyMismatchError('batch mixes public keys');
  return pk;
}

/** valueBits bounds |x - c|. */
export async function secureLessThan(
  ctx: ComputeSideContext,
  xs: readonly Ciphertext[],
  thresholds: readonly bigint[],
  valueBits: number,
): Promise<Ciphertext[]> {
  const pk = comparisonKey(xs, thresholds);
  if (!pk) return [];
  const { packs, slotBits, coins } = await blindSigns(
    ctx,
    pk,
    xs.map((x, i) => ({ terms: [[x, 2n]], t: 1n - 2n * thresholds[i]! })),
    valueBits + 2,
  );
  const bits = await roundTrip(ctx, 'lt', { key: pk.fingerprint, slotBits }, packs, pk, xs.length);
  return bits.map((b, i) => (coins[i]! & 1 ? add(pk.trivial(1n), negate(b)) : b));
}

export async function lessThanKeyServer(state: KeyServerState, body: Uint8Array): Promise<Buffer> {
  const { pk, values } = await openSigns(state, 'lt', body);
  return encodeReply(
    await state.seal(
      pk,
      values.map((x) => (x < 0n ? 1n : 0n)),
    ),
    pk.params.elementBytes,
  );
}
