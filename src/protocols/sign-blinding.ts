/**
 * The multiplicative sign blinding shared by SDC and the secure less-than (docs/protocols.md):
 * for an encrypted odd D' (never 0), Alice sends u = s (r D' + r') + 2^(l-1) in packed slots, with r
 * uniform in [1, 2^rho), r' in [0, r) and a fresh coin s; the sign of r D' + r' is the sign of D', so
 * Bob sees a fair coin and, from the magnitude, log2|D'| to within about one bit. Alice undoes s.
 */
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import type { BcpPublicKey } from '../crypto/bcp-keys.js';
import type { Ciphertext } from '../crypto/ciphertext.js';
import { randomBelow, randomBetween } from '../crypto/bigint.js';
import { KeyMismatchError } from '../crypto/errors.js';
import { sdcMultiplierBits } from './bit-budget.js';
import { packCiphertexts, packCount, unpack } from './packing.js';
import { combineAll, term } from './sm.js';
import { fingerprint, ProtocolError } from './messages.js';
import { decodeForKey, pairsOf, type KeyServerState } from './key-server-state.js';
import type { ComputeSideContext } from './round-trip.js';

/** D' = prod base^exponent * Enc(t), as a linear combination Alice can form by herself. */
export interface OddValue {
  terms: Array<[Ciphertext, bigint]>;
  t: bigint;
}

export interface SignBlinded {
  packs: Ciphertext[];
  slotBits: number;
  /** Bit 0 of coins[i]: s_i = -1. */
  coins: Buffer;
}

export async function blindSigns(ctx: ComputeSideContext, pk: BcpPublicKey, items: readonly OddValue[], deltaBits: number): Promise<SignBlinded> {
  if (items.some((it) => it.terms.some(([c]) => !c.publicKey.equals(pk)))) throw new KeyMismatchError('batch mixes public keys');
  const rho = sdcMultiplierBits(pk.params.N, deltaBits);
  const slotBits = rho + deltaBits + 2;
  const offset = 1n << BigInt(slotBits - 1);
  const coins = randomBytes(items.length);
  const sr = items.map((_, i) => (coins[i]! & 1 ? -1n : 1n) * randomBetween(1n, 1n << BigInt(rho)));
  const blinded = await combineAll(
    ctx,
    pk,
    items.map((it, i) => ({ base: [1n, 1n], terms: it.terms.map(([c, e]) => term(c, e * sr[i]!)), t: it.t * sr[i]! })),
  );
  // s r' + offset, with r' uniform in [0, r)
  const constants = sr.map((x) => (x < 0n ? -randomBelow(-x) : randomBelow(x)) + offset);
  return { packs: await packCiphertexts(ctx, pk, blinded, constants, slotBits), slotBits, coins };
}

/** True when D'_i < 0, given Bob's "negative" answer for slot i. */
export function unblindSign(coins: Buffer, i: number, bobSaysNegative: boolean): boolean {
  return bobSaysNegative !== Boolean(coins[i]! & 1);
}

const schema = z.object({ key: fingerprint, count: z.number().int().nonnegative(), slotBits: z.number().int().min(2).max(16_384) });

/** Bob: the signed slot values u - 2^(l-1) of a request, recorded for the leakage tests. */
export async function openSigns(state: KeyServerState, protocol: string, body: Uint8Array): Promise<{ pk: BcpPublicKey; values: bigint[] }> {
  const { header, elements, pk } = decodeForKey(state, body, schema);
  const N = pk.params.N;
  if (elements.length !== 2 * packCount(N, header.slotBits, header.count)) throw new ProtocolError('pack count does not match the header');
  const offset = 1n << BigInt(header.slotBits - 1);
  // u = s (r D' + r') + 2^(l-1) lies strictly between 2^(l-2) and 3 2^(l-2)
  const quarter = 1n << BigInt(header.slotBits - 2);
  const packs = await state.open(`${protocol}-pack`, pk, pairsOf(elements));
  const values = unpack(packs, N, header.slotBits, header.count, quarter, 3n * quarter).map((u) => u - offset);
  state.observe(
    protocol,
    values.map((x) => (x < 0n ? N + x : x)),
  );
  return { pk: pk, values };
}
