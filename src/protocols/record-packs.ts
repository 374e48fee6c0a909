/**
 * Records packed one to a KMS-form ciphertext (issue 16): when a k-means job assigns on shares
 * (mpc/nearest-centroid.ts), its iterations need the records' ciphertexts only to add up the
 * members of each cluster, which works on packs slot by slot. So the conversion answers one
 * encryption per record instead of one per value (sct.ts `records`), and a cluster's sum stays a
 * pack until the iteration's centroid terms need its values.
 *
 * Layout (sct.ts RecordLayout): slot d of `slotBits` bits holds x_d + 2^V, V the bits of the largest
 * declared |value|, so slots stay non-negative and a sum of |c| records holds s_d + |c| 2^V.
 */
import { Ciphertext, addPlain } from '../crypto/ciphertext.js';
import { bitLength } from '../crypto/bigint.js';
import { keyWire, type Pair } from '../crypto/kernels.js';
import type { BcpPublicKey } from '../crypto/bcp-keys.js';
import { kernel, flatten, type ComputeSideContext } from './round-trip.js';
import { encodeMessage, MAX_ELEMENTS } from './messages.js';
import { packCiphertexts, packValues, slotsPerPack } from './packing.js';
import { SIGMA } from './bit-budget.js';
import { randomBelow } from '../crypto/bigint.js';
import { shareBlind, newShareId, type RecordShare } from './inner-distances.js';
import { transferPacks, type RecordLayout } from './sct.js';

/** The layout for n records of m values with |x| < 2^valueBits, or undefined when a record does not fit one plaintext. */
export function recordLayout(N: bigint, m: number, n: number, valueBits: number): RecordLayout | undefined {
  // A sum of n records plus a blind 40 bits wider, and a guard bit: V + bits(n) + 1 + 42 + 2.
  const slotBits = valueBits + bitLength(BigInt(n)) + SIGMA + 5;
  if (m * slotBits > bitLength(N) - 2) return undefined;
  return { values: m, slotBits, offset: 1n << BigInt(valueBits) };
}

/** Multiplies each pack by a fresh encryption of its constant (rerandomised, KMS form kept). */
async function blindPacks(
  ctx: ComputeSideContext,
  pk: BcpPublicKey,
  packs: readonly Ciphertext[],
  constants: readonly bigint[],
): Promise<Ciphertext[]> {
  const items = packs.map((c, i) => ({ slots: [[c.A, c.B]] as Pair[], constant: constants[i]! }));
  return (await kernel<Pair>(ctx, 'pack', { ...keyWire(pk), slotBits: 1 }, items)).map(([A, B]) => new Ciphertext(pk, A, B));
}

/**
 * The values of cluster sums held as record packs: Enc(s_jd) per cluster j and value d, in KMS
 * form, from the packs of s_j + |c_j| 2^V and the sizes (one bounded SCT, one pack per cluster).
 */
export async function unpackSums(
  ctx: ComputeSideContext,
  sums: readonly Ciphertext[],
  sizes: readonly bigint[],
  layout: RecordLayout,
  maxCount: number,
): Promise<Ciphertext[][]> {
  const pk = sums[0]!.publicKey;
  const m = layout.values;
  const u = bitLength(layout.offset) + bitLength(BigInt(maxCount)) + 1;
  const blinds = sums.flatMap(() => Array.from({ length: m }, () => shareBlind(u)));
  const blinded = await blindPacks(ctx, pk, sums, packValues(blinds, pk.params.N, layout.slotBits, m));
  const values = await transferPacks(ctx, blinded, sums.length * m, blinds, layout.slotBits, pk, { kms: true, perPack: m });
  return sums.map((_, j) => values.slice(j * m, (j + 1) * m).map((c) => addPlain(c, -sizes[j]! * layout.offset)));
}

/**
 * A fresh record share (after a restart of the key server) from record packs: Alice adds r < 2^(V + 40)
 * to every slot, so the key server keeps x + c with c = 2^V + r, the share's usual blinds; packs of
 * whole records are combined so that it decrypts once per plaintext, not once per record.
 */
export async function shareRecordPacks(ctx: ComputeSideContext, records: readonly Ciphertext[], layout: RecordLayout): Promise<RecordShare> {
  const pk = records[0]!.publicKey;
  const m = layout.values;
  const V = bitLength(layout.offset) - 1;
  const extra = records.map(() => Array.from({ length: m }, () => randomBelow(1n << BigInt(V + SIGMA))));
  const share: RecordShare = { id: newShareId(), blinds: extra.flat().map((r) => layout.offset + r) };
  const perPack = slotsPerPack(pk.params.N, layout.slotBits * m) * m;
  // A call carries at most MAX_ELEMENTS values, and about 4096 records.
  const per = Math.max(1, Math.min(4096, Math.floor(MAX_ELEMENTS / m)));
  for (let i = 0; i < records.length; i += per) {
    const batch = records.slice(i, i + per);
    const packs = await packCiphertexts(
      ctx,
      pk,
      batch,
      packValues(extra.slice(i, i + per).flat(), pk.params.N, layout.slotBits, m),
      layout.slotBits * m,
    );
    const header = {
      key: pk.fingerprint,
      share: share.id,
      offset: i * m,
      count: batch.length * m,
      slotBits: layout.slotBits,
      perPack,
    };
    await ctx.transport.call('share', encodeMessage(header, flatten(packs), pk.params.elementBytes));
  }
  return share;
}
