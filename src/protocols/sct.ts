/**
 * SCT, secure ciphertext transformation (seed 000 section 4.1, fixed per docs/corrections.md.2):
 * moves Enc_x(M) to Enc_y(M) without either server learning M.
 *   Alice: picks r uniform in Z_N, sends Enc_x(M) * Enc_x(r) = Enc_x(M + r).
 *   Bob:   mDec -> M + r, answers Enc_y(M + r) (fresh randomness).
 *   Alice: multiplies by Enc_y(-r).
 * Blinding is perfect: Bob sees M + r mod N, uniform whatever M is. Alice sees only ciphertexts.
 * The trivial Enc_y(-r) keeps Bob's randomness in the result; every later message to Bob is blinded
 * with a fresh encryption first, so Bob can never recognise his own components.
 */
import { z } from 'zod';
import type { BcpPublicKey } from '../crypto/bcp-keys.js';
import { add, type Ciphertext } from '../crypto/ciphertext.js';
import { mod, randomBelow } from '../crypto/bigint.js';
import { KeyMismatchError } from '../crypto/errors.js';
import { encryptAll, roundTrip, encodeReply, type ComputeSideContext } from './round-trip.js';
import { shareBlind, shareSlotBits, slotBitsSchema } from './inner-distances.js';
import { packCiphertexts, packCount, packValues, slotsPerPack, unpack } from './packing.js';
import { decodeMessage, fingerprint, MAX_ELEMENTS, ProtocolError } from './messages.js';
import { pairsOf, type KeyServerState } from './key-server-state.js';

export async function sct(ctx: ComputeSideContext, cs: readonly Ciphertext[], to: BcpPublicKey): Promise<Ciphertext[]> {
  if (cs.length === 0) return [];
  const from = cs[0]!.publicKey;
  if (cs.some((c) => !c.publicKey.equals(from))) throw new KeyMismatchError('SCT batch mixes source keys');
  const N = from.params.N;
  const rs = cs.map(() => randomBelow(N));
  const masks = await encryptAll(ctx, from, rs);
  const blinded = cs.map((c, i) => add(c, masks[i]!));
  const reply = await roundTrip(ctx, 'sct', { from: from.fingerprint, to: to.fingerprint }, blinded, to, cs.length);
  return reply.map((c, i) => add(c, to.trivial(mod(-rs[i]!, N))));
}

const schema = z.object({
  from: fingerprint,
  to: fingerprint,
  count: z
    .number()
    .int()
    .nonnegative()
    .max(MAX_ELEMENTS / 2),
  slotBits: slotBitsSchema.optional(),
  kms: z.literal(true).optional(),
  share: z
    .string()
    .regex(/^[0-9a-f]{32}$/)
    .optional(),
  offset: z.number().int().nonnegative().optional(),
  /**
   * Answer one KMS-form ciphertext per record of `values` consecutive values, packed in slots of
   * `slotBits` (a k-means job that assigns on shares: one encryption per record, not per value).
   */
  records: z
    .object({
      values: z.number().int().min(1).max(4096),
      slotBits: slotBitsSchema,
    })
    .optional(),
  /** Values per pack when fewer than fit (one record or one cluster sum per pack). */
  perPack: z.number().int().min(1).max(4096).optional(),
  /** Answer only the values at i % stride === at (a DP query's column of an owner-packed table). */
  stride: z.number().int().min(1).max(100_000).optional(),
  at: z.number().int().nonnegative().optional(),
});

/** Bob's common first step of both SCTs: the two registered keys and the elements under `from`. */
function decodeTransfer(state: KeyServerState, body: Uint8Array) {
  let from: BcpPublicKey | undefined;
  let to: BcpPublicKey | undefined;
  const { header, elements } = decodeMessage(body, schema, (h) => {
    from = state.key(h.from);
    to = state.key(h.to);
    return { elementBytes: from.params.elementBytes, modulus: from.params.N2 };
  });
  return { header, elements, from: from!, to: to! };
}

export async function sctKeyServer(state: KeyServerState, body: Uint8Array): Promise<Buffer> {
  const { header, elements, from, to } = decodeTransfer(state, body);
  if (header.slotBits !== undefined || header.kms || header.share || header.stride !== undefined)
    throw new ProtocolError('plain SCT takes no slots, KMS form, share or selection');
  // Policy (defence in depth against a compromised compute server): plain SCT releases results,
  // so it starts only from a job key; owners' data moves only by bounded SCT into a job key.
  state.requireJobKey(from);
  if (elements.length !== 2 * header.count) throw new ProtocolError('element count does not match the header');
  const values = await state.open('sct', from, pairsOf(elements));
  return encodeReply(await state.seal(to, values), to.params.elementBytes);
}

export interface BoundedTransferOptions {
  /**
   * Answers in KMS form (kms-paillier.ts), for a job key: one element per value, about six times
   * cheaper for the key server to make.
   */
  kms?: boolean;
  /**
   * Also let the key server keep the M + c it decrypts, as values [offset, offset + count) of a
   * record share (inner-distances.ts); the blinds c land in share.blinds at the same positions.
   */
  share?: { id: string; offset: number; blinds: bigint[] };
  /** One KMS-form ciphertext per record instead of one per value (needs `kms`). */
  records?: RecordLayout;
  /** Values per pack when the sender filled fewer than fit. */
  perPack?: number;
}

/**
 * SCT for values known to be small, |M| < 2^valueBits (the owners' encoded data), with statistical
 * blinding and packing: Alice adds c = 2^valueBits + r, r uniform in [0, 2^(valueBits + sigma)), packs
 * the blinded values, and Bob decrypts once per pack and answers Enc_y(M + c) per value; Alice
 * subtracts c. Bob sees each M + c within statistical distance 2^(1-sigma) of uniform whatever M is.
 * Used for the conversion of a job's data to pk_c, where it saves one decryption and one encryption
 * per value, answers in KMS form and leaves Bob the M + c he saw as the job's record share (nothing
 * new for him); results and anything unbounded go through the perfectly blinded `sct`.
 */
export async function sctBounded(
  ctx: ComputeSideContext,
  cs: readonly Ciphertext[],
  to: BcpPublicKey,
  valueBits: number,
  opts: BoundedTransferOptions = {},
): Promise<Ciphertext[]> {
  if (cs.length === 0) return [];
  const from = cs[0]!.publicKey;
  if (cs.some((c) => !c.publicKey.equals(from))) throw new KeyMismatchError('SCT batch mixes source keys');
  const slotBits = shareSlotBits(valueBits);
  const blinds = cs.map(() => shareBlind(valueBits));
  const packs = await packCiphertexts(ctx, from, cs, blinds, slotBits);
  return transferPacks(ctx, packs, cs.length, blinds, slotBits, to, opts);
}

/** Which values of a batch the key server answers: those at positions i with i % stride === at. */
export interface ValueSelection {
  stride: number;
  at: number;
}

/**
 * The shared second half of the bounded SCTs: Enc_from(M + c) packed, `count` values; Bob decrypts
 * each pack, keeps the share if asked, and answers Enc_to(M + c) for the selected values; Alice
 * subtracts c. Returns the selected values, in order.
 */
export async function transferPacks(
  ctx: ComputeSideContext,
  packs: readonly Ciphertext[],
  count: number,
  blinds: readonly bigint[],
  slotBits: number,
  to: BcpPublicKey,
  opts: BoundedTransferOptions & { select?: ValueSelection } = {},
): Promise<Ciphertext[]> {
  const from = packs[0]!.publicKey;
  if (opts.records) return transferRecords(ctx, packs, count, blinds, slotBits, to, { ...opts, records: opts.records });
  const chosen = selectedPositions(count, opts.select);
  const reply = await roundTrip(ctx, 'sct-packed', packedHeader(from, to, count, slotBits, opts), packs, to, chosen.length);
  blinds.forEach((c, i) => opts.share && (opts.share.blinds[opts.share.offset + i] = c));
  return reply.map((c, i) => add(c, to.trivial(mod(-blinds[chosen[i]!]!, to.params.N))));
}

/**
 * A record of `values` consecutive values as one KMS-form ciphertext: slot d (of `slotBits` bits,
 * slot 0 least significant) holds x_d + offset, offset = 2^valueBits, so every slot stays
 * non-negative and sums of up to 2^(slotBits - valueBits - 43) records stay in their slots.
 */
export interface RecordLayout {
  values: number;
  slotBits: number;
  offset: bigint;
}

/** transferPacks answering one ciphertext per record: Bob packs M + c, Alice takes off c - offset. */
async function transferRecords(
  ctx: ComputeSideContext,
  packs: readonly Ciphertext[],
  count: number,
  blinds: readonly bigint[],
  slotBits: number,
  to: BcpPublicKey,
  opts: BoundedTransferOptions & { records: RecordLayout; select?: ValueSelection },
): Promise<Ciphertext[]> {
  const { values: m, slotBits: w, offset } = opts.records;
  if (!opts.kms || count % m !== 0 || opts.select) throw new ProtocolError('records are answered whole, in KMS form and without a selection');
  const header = { ...packedHeader(packs[0]!.publicKey, to, count, slotBits, opts), records: { values: m, slotBits: w } };
  const reply = await roundTrip(ctx, 'sct-packed', header, packs, to, count / m);
  blinds.forEach((c, i) => opts.share && (opts.share.blinds[opts.share.offset + i] = c));
  // Take off c - offset per slot: what is left is x + offset.
  const minus = packValues(
    blinds.map((c) => c - offset),
    to.params.N,
    w,
    m,
  );
  return reply.map((c, i) => add(c, to.trivial(mod(-minus[i]!, to.params.N))));
}

/** The header of a packed SCT request (sctPackedKeyServer's schema). */
function packedHeader(
  from: BcpPublicKey,
  to: BcpPublicKey,
  count: number,
  slotBits: number,
  opts: BoundedTransferOptions & { select?: ValueSelection },
) {
  return {
    from: from.fingerprint,
    to: to.fingerprint,
    count,
    slotBits,
    ...(opts.kms ? { kms: true } : {}),
    ...(opts.share ? { share: opts.share.id, offset: opts.share.offset } : {}),
    ...(opts.select ? { stride: opts.select.stride, at: opts.select.at } : {}),
    ...(opts.perPack ? { perPack: opts.perPack } : {}),
  };
}

/** The positions in [0, count) a selection keeps (all when there is none). */
export function selectedPositions(count: number, select?: ValueSelection): number[] {
  const out: number[] = [];
  for (let i = select?.at ?? 0; i < count; i += select?.stride ?? 1) out.push(i);
  return out;
}

/** The key server's per-record packs of M + c: slot d of record i holds value i m + d. */
function recordPacks(header: z.infer<typeof schema>, values: readonly bigint[], N: bigint): bigint[] {
  // The header's combination was checked before decrypting (sctPackedKeyServer). M + c < 2^(v + 41)
  // sits in a slot of at least v + 42 bits; a value that does not is a malformed request.
  const { values: m, slotBits } = header.records!;
  if (values.some((v) => v >> BigInt(slotBits - 1) !== 0n)) throw new ProtocolError('a value does not fit its record slot');
  return packValues(values, N, slotBits, m);
}

export async function sctPackedKeyServer(state: KeyServerState, body: Uint8Array): Promise<Buffer> {
  const { header, elements, from, to } = decodeTransfer(state, body);
  const slotBits = header.slotBits;
  const N = from.params.N;
  // Policy: owners' data moves only into job keys (never straight to a client's or owner's key).
  state.requireJobKey(to);
  if ((header.stride === undefined) !== (header.at === undefined) || (header.at ?? 0) >= (header.stride ?? 1))
    throw new ProtocolError('a selection needs a stride and a position below it');
  // Checked before anything is decrypted or kept.
  if (header.records && (!header.kms || header.stride !== undefined || header.count % header.records.values !== 0))
    throw new ProtocolError('records are answered in KMS form, whole, and without a selection');
  if (header.records && slotsPerPack(N, header.records.slotBits) < header.records.values) throw new ProtocolError('a record must fit one plaintext');
  if (slotBits === undefined || elements.length !== 2 * packCount(N, slotBits, header.count, header.perPack))
    throw new ProtocolError('pack count does not match the header');
  const values = unpack(await state.open('sct-pack', from, pairsOf(elements)), N, slotBits, header.count, undefined, undefined, header.perPack);
  state.observe('sct-packed', values);
  if (header.share !== undefined) await state.shares.put(header.share, to.fingerprint, header.offset ?? 0, values);
  const select = header.stride === undefined ? undefined : { stride: header.stride, at: header.at! };
  const chosen = selectedPositions(values.length, select).map((i) => values[i]!);
  if (header.records) return encodeReply(await state.sealKms(to, recordPacks(header, chosen, to.params.N)), to.params.elementBytes);
  return encodeReply(await (header.kms ? state.sealKms(to, chosen) : state.seal(to, chosen)), to.params.elementBytes);
}
