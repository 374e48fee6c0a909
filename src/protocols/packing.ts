/**
 * Packing (docs/protocols.md): with statistical blinding every blinded value fits in a slot of l
 * bits, so floor((bits(N) - 2) / l) of them share one plaintext and the key server decrypts once per
 * pack instead of once per value. Slot 0 is the least significant.
 */
import type { BcpPublicKey } from '../crypto/bcp-keys.js';
import { Ciphertext } from '../crypto/ciphertext.js';
import { bitLength } from '../crypto/bigint.js';
import { keyWire, type Pair } from '../crypto/kernels.js';
import { BitBudgetError } from './bit-budget.js';
import { kernel, type ComputeSideContext } from './round-trip.js';
import { ProtocolError } from './messages.js';
import { CiphermineError } from '../crypto/errors.js';

/**
 * A value outside the range its sender declared (an owner who encoded beyond maxAbs). `index` is
 * its position in the batch, so the compute server can name the dataset and column.
 */
export class ValueRangeError extends CiphermineError {
  readonly detail: { index: number };
  constructor(index: number) {
    super('ERR_VALUE_RANGE', `value ${index} of the batch exceeds its declared range`);
    this.detail = { index };
  }
}

export function slotsPerPack(N: bigint, slotBits: number): number {
  const s = Math.floor((bitLength(N) - 2) / slotBits);
  if (!Number.isInteger(slotBits) || slotBits < 1 || s < 1) throw new BitBudgetError(`a ${slotBits}-bit slot does not fit in the plaintext space`);
  return s;
}

/**
 * Packs needed for `values` slots; `perPack` (at most what fits) when the sender fills fewer slots
 * per plaintext, as one record or one cluster sum per pack.
 */
export function packCount(N: bigint, slotBits: number, values: number, perPack?: number): number {
  return Math.ceil(values / slotsIn(N, slotBits, perPack));
}

function slotsIn(N: bigint, slotBits: number, perPack?: number): number {
  const fit = slotsPerPack(N, slotBits);
  if (perPack === undefined) return fit;
  if (!Number.isInteger(perPack) || perPack < 1 || perPack > fit)
    throw new BitBudgetError(`${perPack} slots of ${slotBits} bits do not fit a plaintext`);
  return perPack;
}

/**
 * Plaintexts of consecutive groups of values, slot 0 least significant, `perPack` to a group
 * (default: as many as fit). The inverse of `unpack`; values may be negative (the slot above
 * lends), reduced modulo N.
 */
export function packValues(values: readonly bigint[], N: bigint, slotBits: number, perPack?: number): bigint[] {
  const per = slotsIn(N, slotBits, perPack);
  const out: bigint[] = [];
  for (let i = 0; i < values.length; i += per) {
    let m = 0n;
    for (let s = Math.min(values.length, i + per) - 1; s >= i; s--) m = (m << BigInt(slotBits)) + values[s]!;
    out.push(((m % N) + N) % N);
  }
  return out;
}

/**
 * The `count` slot values of decrypted packs, in order. Every slot must lie in [low, high): the
 * senders size slots with a spare guard bit, so a value outside its declared range (an owner who
 * encoded beyond maxAbs) shows up here as an error instead of silently corrupting its neighbours.
 */
export function unpack(
  packs: readonly bigint[],
  N: bigint,
  slotBits: number,
  count: number,
  low = 0n,
  high = 1n << BigInt(slotBits - 1),
  perPack?: number,
): bigint[] {
  const per = slotsIn(N, slotBits, perPack);
  if (packs.length !== Math.ceil(count / per)) throw new ProtocolError('pack count does not match the value count');
  const mask = (1n << BigInt(slotBits)) - 1n;
  const out: bigint[] = [];
  for (let p = 0; p < packs.length; p++) {
    let v = packs[p]!;
    const used = Math.min(per, count - p * per);
    if (v >> BigInt(used * slotBits) !== 0n) throw new ValueRangeError(p * per + used - 1);
    for (let s = 0; s < used; s++, v >>= BigInt(slotBits)) {
      const x = v & mask;
      if (x < low || x >= high) throw new ValueRangeError(p * per + s);
      out.push(x);
    }
  }
  return out;
}

/**
 * Enc(sum_pos (x_pos + constant_pos) 2^(l pos)) for consecutive groups of slots, where x_pos is the
 * plaintext of slots[pos]. Each pack gets one fresh encryption of its constants.
 */
export async function packCiphertexts(
  ctx: ComputeSideContext,
  pk: BcpPublicKey,
  slots: readonly Ciphertext[],
  constants: readonly bigint[],
  slotBits: number,
): Promise<Ciphertext[]> {
  const per = slotsPerPack(pk.params.N, slotBits);
  const items: Array<{ slots: Pair[]; constant: bigint }> = [];
  for (let i = 0; i < slots.length; i += per) {
    const group = slots.slice(i, i + per);
    let constant = 0n;
    for (let s = group.length - 1; s >= 0; s--) constant = (constant << BigInt(slotBits)) + constants[i + s]!;
    items.push({ slots: group.map((c) => [c.A, c.B]), constant });
  }
  const packs = await kernel<Pair>(ctx, 'pack', { ...keyWire(pk), slotBits }, items);
  return packs.map(([A, B]) => new Ciphertext(pk, A, B));
}
