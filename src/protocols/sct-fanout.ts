/**
 * SCT to several keys at once (seed 003's release of the joint centres to every host): moves
 * Enc_x(M) to Enc_y1(M), ..., Enc_yh(M) with one blinding and one decryption per value.
 *   Alice: picks r uniform in Z_N, sends Enc_x(M + r) and the target keys.
 *   Bob:   mDec -> M + r once, answers Enc_yt(M + r) for every target t (fresh randomness each).
 *   Alice: multiplies each by Enc_yt(-r).
 * Bob's view is that of one SCT: M + r, uniform whatever M is (perfect blinding). Every target gets
 * the same M, which is the point; h separate SCTs would show Bob h independent blindings of it and
 * cost h decryptions per value instead of one.
 */
import { z } from 'zod';
import type { BcpPublicKey } from '../crypto/bcp-keys.js';
import { add, Ciphertext } from '../crypto/ciphertext.js';
import { mod, randomBelow } from '../crypto/bigint.js';
import { KeyMismatchError } from '../crypto/errors.js';
import { encryptAll, roundTrip, encodeReply, type ComputeSideContext } from './round-trip.js';
import { decodeMessage, fingerprint, MAX_ELEMENTS, ProtocolError } from './messages.js';
import { pairsOf, type KeyServerState } from './key-server-state.js';

/** Largest number of target keys in one request. */
const MAX_TARGETS = 64;

export async function sctFanout(ctx: ComputeSideContext, cs: readonly Ciphertext[], targets: readonly BcpPublicKey[]): Promise<Ciphertext[][]> {
  if (cs.length === 0) return targets.map(() => []);
  const from = cs[0]!.publicKey;
  if (cs.some((c) => !c.publicKey.equals(from))) throw new KeyMismatchError('SCT batch mixes source keys');
  if (targets.some((t) => !t.params.equals(from.params))) throw new KeyMismatchError('SCT targets use other parameters');
  const N = from.params.N;
  const rs = cs.map(() => randomBelow(N));
  const masks = await encryptAll(ctx, from, rs);
  const blinded = cs.map((c, i) => add(c, masks[i]!));
  const header = { from: from.fingerprint, to: targets.map((t) => t.fingerprint) };
  const reply = await roundTrip(ctx, 'sct-fanout', header, blinded, targets[0]!, cs.length * targets.length);
  return targets.map((t, j) =>
    cs.map((_, i) => {
      const c = reply[j * cs.length + i]!;
      return add(new Ciphertext(t, c.A, c.B), t.trivial(mod(-rs[i]!, N)));
    }),
  );
}

const schema = z.object({
  from: fingerprint,
  to: z.array(fingerprint).min(1).max(MAX_TARGETS),
  count: z.number().int().nonnegative().max(MAX_ELEMENTS),
});

export async function sctFanoutKeyServer(state: KeyServerState, body: Uint8Array): Promise<Buffer> {
  let from: BcpPublicKey | undefined;
  const { header, elements } = decodeMessage(body, schema, (h) => {
    from = state.key(h.from);
    return { elementBytes: from.params.elementBytes, modulus: from.params.N2 };
  });
  const targets = header.to.map((f) => state.key(f));
  // Policy, as plain SCT: releases start only from a job key.
  state.requireJobKey(from!);
  if (elements.length === 0 || header.count !== (elements.length / 2) * targets.length)
    throw new ProtocolError('element count does not match the header');
  if (header.count > MAX_ELEMENTS / 2) throw new ProtocolError(`a reply of ${header.count} ciphertexts exceeds the limit`, 'ERR_TOO_LARGE');
  const values = await state.open('sct-fanout', from!, pairsOf(elements));
  const sealed = await Promise.all(targets.map((t) => state.seal(t, values)));
  return encodeReply(sealed.flat(), from!.params.elementBytes);
}
