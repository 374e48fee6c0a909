/**
 * SCT to several keys at once (seed 003's release of the joint centres to every host): moves
 * Enc_x(M) to Enc_y1(M), ..., Enc_yh(M) with one blinding and one decryption per value.
 *   Alice: picks r uniform in Z_N, sends Enc_x(M + r) and the target keys.
 *   Bob:   mDec -> M + r once, answers Enc_yt(M + r) for every target t (fresh randomness each).
 *   Alice: multiplies each by Enc_yt(-r).
 * Bob's view is that of one SCT: M + r, uniform whatever M is (perfect blinding). Every target gets
 * the same M, which is the point; h separate SCTs would show Bob h independent blindings of it and
 * cost h decryptions per value instead of one.
 *
 * `sctFanoutPacked` does the same for values known to be small, |M| < 2^valueBits, with statistical
 * blinding and packing as in the bounded SCT (sct.ts): Alice packs M + c (c = 2^valueBits + r, r
 * uniform in [0, 2^(valueBits + sigma))) into few plaintexts, Bob decrypts once per pack, checks
 * every slot, and re-encrypts each whole pack under every target; Alice removes the packed blinds
 * under the target key, and the target unpacks signed slots (`unpackSigned`). Bob sees each M + c
 * within 2^(1-sigma) of uniform; a total outside its bound (a sender who cheated on its range)
 * overflows its slot and is refused.
 */
import { z } from 'zod';
import type { BcpPublicKey } from '../crypto/bcp-keys.js';
import { add, Ciphertext } from '../crypto/ciphertext.js';
import { mod, randomBelow } from '../crypto/bigint.js';
import { KeyMismatchError } from '../crypto/errors.js';
import { encryptAll, roundTrip, encodeReply, type ComputeSideContext } from './round-trip.js';
import { decodeMessage, fingerprint, MAX_ELEMENTS, ProtocolError } from './messages.js';
import { pairsOf, type KeyServerState } from './key-server-state.js';
import { shareBlind, shareSlotBits, slotBitsSchema } from './inner-distances.js';
import { packCiphertexts, packCount, packValues, slotsPerPack, unpack } from './packing.js';

/** Largest number of target keys in one request. */
const MAX_TARGETS = 64;

function checkBatch(cs: readonly Ciphertext[], targets: readonly BcpPublicKey[]): BcpPublicKey {
  const from = cs[0]!.publicKey;
  if (cs.some((c) => !c.publicKey.equals(from))) throw new KeyMismatchError('SCT batch mixes source keys');
  if (targets.some((t) => !t.params.equals(from.params))) throw new KeyMismatchError('SCT targets use other parameters');
  return from;
}

/** The reply's element pairs as ciphertexts under their targets, each minus its blind. */
function unblind(reply: readonly Ciphertext[], targets: readonly BcpPublicKey[], blinds: readonly bigint[]): Ciphertext[][] {
  return targets.map((t, j) =>
    blinds.map((b, i) => {
      const c = reply[j * blinds.length + i]!;
      return add(new Ciphertext(t, c.A, c.B), t.trivial(mod(-b, t.params.N)));
    }),
  );
}

export async function sctFanout(ctx: ComputeSideContext, cs: readonly Ciphertext[], targets: readonly BcpPublicKey[]): Promise<Ciphertext[][]> {
  if (cs.length === 0) return targets.map(() => []);
  const from = checkBatch(cs, targets);
  const rs = cs.map(() => randomBelow(from.params.N));
  const masks = await encryptAll(ctx, from, rs);
  const blinded = cs.map((c, i) => add(c, masks[i]!));
  const header = { from: from.fingerprint, to: targets.map((t) => t.fingerprint) };
  const reply = await roundTrip(ctx, 'sct-fanout', header, blinded, targets[0]!, cs.length * targets.length);
  return unblind(reply, targets, rs);
}

/** The packed variant: per target, ciphertexts of packs of `slotBits`-bit signed slots (unpackSigned). */
export async function sctFanoutPacked(
  ctx: ComputeSideContext,
  cs: readonly Ciphertext[],
  targets: readonly BcpPublicKey[],
  valueBits: number,
): Promise<{ slotBits: number; packs: Ciphertext[][] }> {
  const from = checkBatch(cs, targets);
  const slotBits = shareSlotBits(valueBits);
  const blinds = cs.map(() => shareBlind(valueBits));
  const packs = await packCiphertexts(ctx, from, cs, blinds, slotBits);
  // The packed blinds, as the packs hold them.
  const packedBlinds = packValues(blinds, from.params.N, slotBits);
  const header = { from: from.fingerprint, to: targets.map((t) => t.fingerprint), values: cs.length, slotBits };
  const reply = await roundTrip(ctx, 'sct-fanout', header, packs, targets[0]!, packs.length * targets.length);
  return { slotBits, packs: unblind(reply, targets, packedBlinds) };
}

/** The target's side of the packed variant: decrypted packs to `count` signed values. */
export function unpackSigned(packs: readonly bigint[], N: bigint, slotBits: number, count: number): bigint[] {
  const per = slotsPerPack(N, slotBits);
  if (packs.length !== Math.ceil(count / per)) throw new ProtocolError('pack count does not match the value count');
  const l = BigInt(slotBits);
  const half = 1n << (l - 1n);
  const out: bigint[] = [];
  packs.forEach((pack, p) => {
    let v = pack;
    for (let s = 0; s < Math.min(per, count - p * per); s++) {
      let x = mod(v, 1n << l);
      if (x >= half) x -= 1n << l;
      out.push(x);
      v = (v - x) >> l;
    }
    if (v !== 0n) throw new ProtocolError('a pack holds more than its slots');
  });
  return out;
}

const schema = z.object({
  from: fingerprint,
  to: z.array(fingerprint).min(1).max(MAX_TARGETS),
  count: z
    .number()
    .int()
    .nonnegative()
    .max(MAX_ELEMENTS / 2),
  /** Packed: the number of values and the slot width. */
  values: z.number().int().positive().max(MAX_ELEMENTS).optional(),
  slotBits: slotBitsSchema.optional(),
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
  const items = elements.length / 2;
  if (items === 0 || header.count !== items * targets.length) throw new ProtocolError('element count does not match the header');
  const packed = header.slotBits !== undefined && header.values !== undefined;
  if (packed && items !== packCount(from!.params.N, header.slotBits!, header.values!))
    throw new ProtocolError('pack count does not match the header');
  const opened = await state.open(packed ? 'sct-fanout-pack' : 'sct-fanout', from!, pairsOf(elements));
  // Every slot must lie in its range: a total beyond its bound would spill into its neighbour.
  if (packed) state.observe('sct-fanout-packed', unpack(opened, from!.params.N, header.slotBits!, header.values!));
  const sealed = await Promise.all(targets.map((t) => state.seal(t, opened)));
  return encodeReply(sealed.flat(), from!.params.elementBytes);
}
