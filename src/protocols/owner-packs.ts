/**
 * Owner-side packing (issue 16): a data owner (DO) encrypts its encoded values several to one BCP
 * plaintext, so encryption, upload, storage and the conversion to the job key all shrink by the
 * packing factor. The format is the one the conversion already decrypts (packing.ts): values in
 * row-major order, floor((bits(N) - 2) / l) to a plaintext, slot 0 least significant, with
 * l = valueBits + sigma + 2, where |x| < 2^valueBits is the owner's declared range. An owner's pack
 * holds sum_s x_s 2^(l s) mod N; negative values borrow from the slot above, and the compute server's
 * blinds c_s = 2^valueBits + r_s (r_s < 2^(valueBits + sigma)) make every slot x_s + c_s positive
 * and below 2^(l - 1), so the key server (KMS) decrypts the same statistically blinded values, in the
 * same layout, as when the compute server (CCS) packs per-value ciphertexts itself.
 *
 * What the key server sees is therefore unchanged (docs/leakage.md): M + c per value, within
 * statistical distance 2^(1 - sigma) of uniform. An owner who packs a value beyond its range
 * corrupts only its own slots, and the slot guard bit reports it (ERR_VALUE_RANGE).
 */
import type { BcpPublicKey } from '../crypto/bcp-keys.js';
import { Ciphertext } from '../crypto/ciphertext.js';
import { bitLength } from '../crypto/bigint.js';
import { KeyMismatchError } from '../crypto/errors.js';
import { keyWire, type Pair } from '../crypto/kernels.js';
import { kernel, type ComputeSideContext } from './round-trip.js';
import { shareBlind, shareSlotBits } from './inner-distances.js';
import { packCount, packValues } from './packing.js';
import { ProtocolError } from './messages.js';
import { transferPacks, type BoundedTransferOptions, type ValueSelection } from './sct.js';

/** The slot width of an owner's packs for |encoded value| <= maxEncoded. */
export function ownerSlotBits(maxEncoded: bigint): number {
  return shareSlotBits(bitLength(maxEncoded));
}

/**
 * The bounded, packed SCT (sct.ts `sctBounded`) of values an owner already packed: Alice adds one
 * fresh encryption of the packed blinds to each pack (which also rerandomises it) instead of
 * packing per-value ciphertexts, and the key server answers one ciphertext under `to` per value
 * (per selected value with `select`).
 */
export async function sctOwnerPacks(
  ctx: ComputeSideContext,
  packs: readonly Ciphertext[],
  count: number,
  to: BcpPublicKey,
  valueBits: number,
  opts: BoundedTransferOptions & { select?: ValueSelection } = {},
): Promise<Ciphertext[]> {
  if (count === 0) return [];
  const from = packs[0]!.publicKey;
  if (packs.some((c) => !c.publicKey.equals(from))) throw new KeyMismatchError('SCT batch mixes source keys');
  const slotBits = shareSlotBits(valueBits);
  if (packs.length !== packCount(from.params.N, slotBits, count)) throw new ProtocolError(`${packs.length} packs cannot hold ${count} values`);
  const blinds = Array.from({ length: count }, () => shareBlind(valueBits));
  const constants = packValues(blinds, from.params.N, slotBits);
  // A one-slot `pack` is exactly "times a fresh encryption of the constant", rerandomised.
  const items = packs.map((c, i) => ({ slots: [[c.A, c.B]] as Pair[], constant: constants[i]! }));
  const blinded = (await kernel<Pair>(ctx, 'pack', { ...keyWire(from), slotBits }, items)).map(([A, B]) => new Ciphertext(from, A, B));
  return transferPacks(ctx, blinded, count, blinds, slotBits, to, opts);
}
