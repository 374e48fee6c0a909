/**
 * Owner-packed ciphertexts of ring elements to arithmetic shares. A training upload packs `slots`
 * ring elements (0 <= m < 2^64) into one plaintext, sum_s m_s 2^(106 s), so the owner encrypts,
 * and the key server decrypts, once per pack instead of once per value.
 *   CCS (party 0): multiplies each pack by a fresh encryption of its masks sum_s r_s 2^(106 s),
 *   r_s uniform in [2^64, 2^104) (which also rerandomises it), and keeps -r_s;
 *   KMS (party 1): decrypts each pack with its master key, checks every slot (and the guard bit
 *   above it) and keeps m_s + r_s modulo 2^64.
 * The key server sees m + r, within 2^-40 of r alone; the compute server sees nothing new.
 */
import type { BcpPublicKey } from '../crypto/bcp-keys.js';
import { add, type Ciphertext } from '../crypto/ciphertext.js';
import { bitLength, randomBelow } from '../crypto/bigint.js';
import { ParameterError } from '../crypto/errors.js';
import { deserializeCiphertexts, serializeCiphertexts } from '../crypto/serialize.js';
import { ValueRangeError } from '../protocols/packing.js';
import { pairsOf, type KeyServerState } from '../protocols/key-server-state.js';
import type { MpcParty } from './party.js';
import { MpcChannelError } from './channel.js';
import { CONVERSION_SIGMA } from './conversion.js';

const VALUE_BITS = 64;
/** A slot: m + r < 2^105, and a guard bit. */
export const RING_SLOT_BITS = VALUE_BITS + CONVERSION_SIGMA + 2;

/** Ring elements per plaintext under N. */
export function ringSlots(N: bigint): number {
  const slots = Math.floor((bitLength(N) - 2) / RING_SLOT_BITS);
  if (slots < 1) throw new ParameterError('N is too small to hold one 64-bit value with its mask');
  return slots;
}

/** The plaintexts of owner packs: `values` (ring elements) `slots` to a plaintext, slot 0 lowest. */
export function packRing(values: readonly bigint[], slots: number): bigint[] {
  const out: bigint[] = [];
  for (let i = 0; i < values.length; i += slots) {
    let p = 0n;
    for (let s = Math.min(slots, values.length - i) - 1; s >= 0; s--) p = (p << BigInt(RING_SLOT_BITS)) + values[i + s]!;
    out.push(p);
  }
  return out;
}

export const packsFor = (count: number, slots: number): number => Math.ceil(count / slots);

/**
 * Party 0: its shares (-r) of the `count` values in `packs` (under `pk`); `encrypt` makes fresh
 * encryptions of the mask packs under pk.
 */
export async function packedToShares(
  p: MpcParty,
  packs: readonly Ciphertext[],
  count: number,
  slots: number,
  pk: BcpPublicKey,
  encrypt: (ms: readonly bigint[]) => Promise<Ciphertext[]>,
): Promise<BigUint64Array> {
  if (packs.length !== packsFor(count, slots))
    throw new ParameterError(`${count} values in ${slots}-slot packs are ${packsFor(count, slots)} packs, not ${packs.length}`);
  const low = 1n << BigInt(VALUE_BITS);
  const masks = Array.from({ length: count }, () => low + randomBelow((1n << BigInt(VALUE_BITS + CONVERSION_SIGMA)) - low));
  const maskPacks = await encrypt(packRing(masks, slots));
  await p.channel.exchange(
    serializeCiphertexts(
      pk,
      packs.map((c, i) => add(c, maskPacks[i]!)),
    ),
  );
  return BigUint64Array.from(masks, (r) => BigInt.asUintN(64, -r));
}

/** Party 1: its shares (m + r mod 2^64); what it sees is recorded as `protocol`. */
export async function packedToSharesAtKeyServer(
  p: MpcParty,
  state: KeyServerState,
  pk: BcpPublicKey,
  count: number,
  slots: number,
  protocol: string,
): Promise<BigUint64Array> {
  const N = pk.params.N;
  if (slots > ringSlots(N)) throw new MpcChannelError(`${slots} slots do not fit a plaintext`);
  const expected = packsFor(count, slots);
  const packs = deserializeCiphertexts(await p.channel.exchange(new Uint8Array(0)), pk, expected);
  if (packs.length !== expected) throw new MpcChannelError(`expected ${expected} packs, got ${packs.length}`);
  const opened = await state.open(`${protocol}-pack`, pk, pairsOf(packs.flatMap((c) => [c.A, c.B])));
  // `unpack` takes slots per pack from N; with fewer slots per pack, read each pack alone.
  const values: bigint[] = [];
  for (let i = 0; i < opened.length; i++) {
    const used = Math.min(slots, count - i * slots);
    values.push(...unpackPack(opened[i]!, used, i * slots));
  }
  state.observe(protocol, values);
  return BigUint64Array.from(values, (v) => BigInt.asUintN(64, v));
}

/** The `used` slots of one opened pack, each in [1, 2^(slot - 1)) (guard bit clear), nothing above them. */
function unpackPack(v: bigint, used: number, first: number): bigint[] {
  const width = BigInt(RING_SLOT_BITS);
  const mask = (1n << width) - 1n;
  const high = 1n << (width - 1n);
  if (v >> (width * BigInt(used)) !== 0n) throw new ValueRangeError(first + used - 1);
  const out: bigint[] = [];
  for (let s = 0; s < used; s++, v >>= width) {
    const x = v & mask;
    if (x < 1n || x >= high) throw new ValueRangeError(first + s);
    out.push(x);
  }
  return out;
}
