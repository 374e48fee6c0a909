/**
 * Ciphertexts of ring elements to arithmetic shares, packed: the compute server (CCS, party 0)
 * adds masks r uniform in [2^64, 2^104) as the constants of packs of floor((bits(N) - 2) / 106)
 * values (protocols/packing.ts; a pack is rerandomised by a fresh encryption), the key server
 * (KMS, party 1) decrypts each pack once with its master key and keeps every slot's m + r modulo
 * 2^64, the compute server keeps -r. For values that are ring elements (0 <= m < 2^64), such as
 * a training upload's m - R shares. The key server sees m + r, within 2^-40 of r alone; one
 * decryption per pack instead of one per value.
 */
import type { BcpPublicKey } from '../crypto/bcp-keys.js';
import type { Ciphertext } from '../crypto/ciphertext.js';
import { randomBelow } from '../crypto/bigint.js';
import { deserializeCiphertexts, serializeCiphertexts } from '../crypto/serialize.js';
import { packCiphertexts, packCount, unpack } from '../protocols/packing.js';
import { pairsOf, type KeyServerState } from '../protocols/key-server-state.js';
import type { ComputeSideContext } from '../protocols/round-trip.js';
import { MpcChannelError } from './channel.js';
import { CONVERSION_SIGMA } from './conversion.js';
import type { MpcParty } from './party.js';

const VALUE_BITS = 64;
/** A slot: m + r < 2^105, and a guard bit. */
export const RING_SLOT_BITS = VALUE_BITS + CONVERSION_SIGMA + 2;
/** Values per session message: packs of 2048-bit ciphertexts stay well under the message cap. */
export const MAX_PACKED_VALUES = 1 << 18;

/** Party 0: its shares (-r) of the plaintexts of `cts`, all under `pk`. */
export async function packedToShares(ctx: ComputeSideContext, p: MpcParty, cts: readonly Ciphertext[], pk: BcpPublicKey): Promise<BigUint64Array> {
  const out = new BigUint64Array(cts.length);
  for (let at = 0; at < cts.length; at += MAX_PACKED_VALUES) {
    const part = cts.slice(at, at + MAX_PACKED_VALUES);
    const low = 1n << BigInt(VALUE_BITS);
    const masks = part.map(() => low + randomBelow((1n << BigInt(VALUE_BITS + CONVERSION_SIGMA)) - low));
    const packs = await packCiphertexts(ctx, pk, part, masks, RING_SLOT_BITS);
    await p.channel.exchange(serializeCiphertexts(pk, packs));
    masks.forEach((r, i) => (out[at + i] = BigInt.asUintN(64, -r)));
  }
  return out;
}

/** Party 1: its shares (m + r mod 2^64) of `count` values under `pk`; what it sees is recorded as `protocol`. */
export async function packedToSharesAtKeyServer(
  p: MpcParty,
  state: KeyServerState,
  pk: BcpPublicKey,
  count: number,
  protocol: string,
): Promise<BigUint64Array> {
  const N = pk.params.N;
  const out = new BigUint64Array(count);
  for (let at = 0; at < count; at += MAX_PACKED_VALUES) {
    const n = Math.min(MAX_PACKED_VALUES, count - at);
    const expected = packCount(N, RING_SLOT_BITS, n);
    const packs = deserializeCiphertexts(await p.channel.exchange(new Uint8Array(0)), pk, expected);
    if (packs.length !== expected) throw new MpcChannelError(`expected ${expected} packs, got ${packs.length}`);
    const opened = await state.open(`${protocol}-pack`, pk, pairsOf(packs.flatMap((c) => [c.A, c.B])));
    const values = unpack(opened, N, RING_SLOT_BITS, n, 1n, 1n << BigInt(RING_SLOT_BITS - 1));
    state.observe(protocol, values);
    values.forEach((v, i) => (out[at + i] = BigInt.asUintN(64, v)));
  }
  return out;
}
