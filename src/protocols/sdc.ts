/**
 * SDC, secure distance comparison (seed 000 section 4.1 with docs/corrections.md (3.4) and 3.6), packed.
 * For clusters a < b: Delta = |c_b|^2 Omega_a - |c_a|^2 Omega_b (a nearer iff Delta < 0) and the odd
 * Delta' = 2 Delta - 1, negative iff Delta <= 0, so ties go to the lower index a. Alice forms
 * Enc(Delta') by scalar steps and blinds its sign (sign-blinding.ts: fair coin, r of
 * rho = min(bits(N) - 3 - bits(Delta'), 64) >= 40 bits, one key-server decryption per pack).
 * Bob answers one bit per comparison, in the clear: without the coin it is a one-time pad, so
 * wrapping it in Enc_pk_y as the seed does would cost Alice a decryption per comparison and hide
 * nothing more. What Bob learns: a fair coin, and log2|Delta| to within about one bit (measured in
 * the leakage test). Alice learns which cluster is nearer, which the scheme gives her (the assignment V).
 */
import type { Ciphertext } from '../crypto/ciphertext.js';
import { flatten, type ComputeSideContext } from './round-trip.js';
import { encodeMessage, ProtocolError } from './messages.js';
import type { KeyServerState } from './key-server-state.js';
import { blindSigns, openSigns, unblindSign } from './sign-blinding.js';

export interface Comparison {
  omegaA: Ciphertext;
  omegaB: Ciphertext;
  sizeA: bigint;
  sizeB: bigint;
}

/** For each comparison: true when a is at least as near as b (ties to a, the lower index). */
export async function secureCompare(ctx: ComputeSideContext, items: readonly Comparison[], deltaBits: number): Promise<boolean[]> {
  if (items.length === 0) return [];
  const pk = items[0]!.omegaA.publicKey;
  // Delta' = Omega_a^(2 |c_b|^2) * Omega_b^(-2 |c_a|^2) * Enc(-1)
  const { packs, slotBits, coins } = await blindSigns(
    ctx,
    pk,
    items.map((c) => ({
      terms: [
        [c.omegaA, 2n * c.sizeB * c.sizeB],
        [c.omegaB, -2n * c.sizeA * c.sizeA],
      ],
      t: -1n,
    })),
    deltaBits,
  );
  const body = encodeMessage({ key: pk.fingerprint, count: items.length, slotBits }, flatten(packs), pk.params.elementBytes);
  const reply = Buffer.from(await ctx.transport.call('sign', body));
  if (reply.length !== items.length || reply.some((b) => b > 1)) throw new ProtocolError('malformed SDC answer');
  return items.map((_, i) => unblindSign(coins, i, reply[i]! === 1));
}

export async function signKeyServer(state: KeyServerState, body: Uint8Array): Promise<Buffer> {
  const { values } = await openSigns(state, 'sdc', body);
  return Buffer.from(values.map((x) => (x < 0n ? 1 : 0)));
}
