/**
 * Secure minimum distance (seed 000's SMDM) through the engine: the nearest cluster of every record,
 * revealed to the compute server (CCS, Alice) only, with nothing else revealed to either server. It
 * replaces the running minimum over the seed's SDC, whose multiplicative blinding let the key server
 * (KMS, Bob) read log2 |Delta| off every comparison, and which showed Alice every intermediate
 * outcome of the running minimum.
 *   CCS: for every record and every pair a < b of clusters, Enc(Delta'_ab) with
 *        Delta'_ab = 2 (|c_b|^2 Omega_a - |c_a|^2 Omega_b) - 1, negative iff a is at least as near
 *        (ties to the lower index); sizes stay with Alice, since she forms the products herself.
 *   both: each Delta' becomes shares of Z_2^(l+1) by one blinded decryption (mask uniform in
 *        [2^l, 2^(l+40)), packed several to a plaintext), and its sign by the carry circuit, as XOR
 *        shares s_ab;
 *   both: cluster j wins iff it is strictly nearer than every a < j and at least as near as every
 *        b > j: onehot_j = AND_a (NOT s_aj) AND_b s_jb, an AND tree of depth ceil(log2(k - 1));
 *   KMS: sends its shares of the one-hot vectors; CCS opens them. Bob receives nothing back.
 * Cost: k (k - 1) / 2 comparisons per record (the running minimum needs k - 1) of (l + 1)-bit values.
 * Correlated randomness comes from OT extension between the two servers (no third party), or
 * from a dealer where the deployment runs one (engine-session.ts).
 */
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import type { Ciphertext } from '../crypto/ciphertext.js';
import type { BcpPublicKey } from '../crypto/bcp-keys.js';
import { randomBelow, bitLength } from '../crypto/bigint.js';
import { KeyMismatchError, ParameterError } from '../crypto/errors.js';
import { packCiphertexts, packCount, unpack } from '../protocols/packing.js';
import { combineAll, term } from '../protocols/sm.js';
import { ProtocolError } from '../protocols/messages.js';
import { pairsOf, type KeyServerState } from '../protocols/key-server-state.js';
import { deserializeCiphertexts, serializeCiphertexts } from '../crypto/serialize.js';
import type { ComputeSideContext } from '../protocols/round-trip.js';
import { asWords, bytesOf, MpcChannelError } from './channel.js';
import { bitOf, concat, wordsFor, type Plane } from './bits.js';
import * as wide from './wide-ring.js';
import { mpcParty, type MpcParty } from './party.js';
import { and, defaultCircuit, msbOfSum } from './primitives/binary.js';
import { CONVERSION_SIGMA } from './conversion.js';
import type { MpcEndpoint } from './server-channel.js';
import { startEngineSession } from './engine-session.js';

export const HIDDEN_ARGMIN = 'engine.argmin';
/** Comparisons per engine session: bounds the OT memory and the messages of one session. */
const MAX_COMPARISONS = 1 << 16;
/**
 * The most choices one argmin may have: all k(k-1)/2 pairs of one record must fit a session.
 * Jobs check it at admission (k-means k, the mode's bins), so no query fails on it later.
 */
export const MAX_ARGMIN_CHOICES = Math.floor((1 + Math.sqrt(1 + 8 * MAX_COMPARISONS)) / 2);

const Args = z.object({
  key: z.string().min(1).max(128),
  records: z.number().int().min(1).max(MAX_COMPARISONS),
  k: z.number().int().min(2).max(MAX_ARGMIN_CHOICES),
  deltaBits: z.number().int().min(1).max(16_000),
});

/** Ring width and slot width for |Delta'| < 2^deltaBits. */
export function widths(N: bigint, deltaBits: number): { ringBits: number; slotBits: number } {
  // slot: Delta' + r in (0, 2^(l + sigma + 1)), plus a guard bit that catches an overflow
  const slotBits = deltaBits + CONVERSION_SIGMA + 2;
  if (slotBits > bitLength(N) - 2) throw new ParameterError(`${deltaBits}-bit distance differences leave no room for the mask under this N`);
  return { ringBits: deltaBits + 1, slotBits };
}

/** The pairs a < b in the order both halves use. */
export function pairsOfClusters(k: number): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (let a = 0; a < k; a++) for (let b = a + 1; b < k; b++) out.push([a, b]);
  return out;
}

/** Bits [start, start + n) of a plane, as a plane of n. */
function slicePlane(plane: Plane, start: number, n: number): Plane {
  const out = new Uint32Array(wordsFor(n));
  for (let i = 0; i < n; i++) if (bitOf(plane, start + i)) out[i >>> 5]! |= 1 << (i & 31);
  return out;
}

/** NOT of an XOR-shared plane: party 0 flips its bits. */
const not = (p: MpcParty, x: Plane): Plane => (p.id === 0 ? x.map((w) => ~w >>> 0) : x);

/**
 * Both parties, from their shares of Delta' (pair-major: element q n + i is pair q of record i):
 * XOR shares of the k one-hot planes over the n records.
 */
export async function oneHot(p: MpcParty, deltas: wide.WideArray, n: number, k: number): Promise<Plane[]> {
  const signs = await msbOfSum(p, wide.planes(deltas), defaultCircuit(p));
  const pairs = pairsOfClusters(k);
  const s = pairs.map((_, q) => slicePlane(signs, q * n, n));
  let terms: Plane[][] = Array.from({ length: k }, (_, j) => pairs.flatMap(([a, b], q) => (b === j ? [not(p, s[q]!)] : a === j ? [s[q]!] : [])));
  while (terms[0]!.length > 1) {
    const half = Math.floor(terms[0]!.length / 2);
    const xs = terms.flatMap((t) => t.slice(0, half));
    const ys = terms.flatMap((t) => t.slice(half, 2 * half));
    const products = await and(p, xs, ys);
    terms = terms.map((t, j) => [...products.slice(j * half, (j + 1) * half), ...t.slice(2 * half)]);
  }
  return terms.map((t) => t[0]!);
}

/** Encrypted Delta' for every (pair, record), pair-major. */
async function distanceDifferences(
  ctx: ComputeSideContext,
  pk: BcpPublicKey,
  omegas: readonly (readonly Ciphertext[])[],
  sizes: readonly bigint[],
): Promise<Ciphertext[]> {
  const items = pairsOfClusters(sizes.length).flatMap(([a, b]) =>
    omegas.map((row) => ({
      base: [1n, 1n] as [bigint, bigint],
      terms: [term(row[a]!, 2n * sizes[b]! * sizes[b]!), term(row[b]!, -2n * sizes[a]! * sizes[a]!)],
      t: -1n,
    })),
  );
  return combineAll(ctx, pk, items);
}

/** One session: the nearest cluster of each of `omegas`' records. */
async function argminSession(
  ctx: ComputeSideContext,
  pk: BcpPublicKey,
  omegas: readonly (readonly Ciphertext[])[],
  sizes: readonly bigint[],
  deltaBits: number,
): Promise<number[]> {
  const n = omegas.length;
  const k = sizes.length;
  const { ringBits, slotBits } = widths(pk.params.N, deltaBits);
  const session = `argmin-${randomBytes(12).toString('hex')}`;
  const p = await startEngineSession(ctx, HIDDEN_ARGMIN, session, { key: pk.fingerprint, records: n, k, deltaBits });
  const deltas = await distanceDifferences(ctx, pk, omegas, sizes);
  const low = 1n << BigInt(deltaBits);
  const masks = deltas.map(() => low + randomBelow((1n << BigInt(deltaBits + CONVERSION_SIGMA)) - low));
  await p.channel.exchange(serializeCiphertexts(pk, await packCiphertexts(ctx, pk, deltas, masks, slotBits)));
  const planes = await oneHot(
    p,
    wide.fromBigints(
      ringBits,
      masks.map((r) => -r),
    ),
    n,
    k,
  );
  return revealOneHot(p, planes, n, k);
}

/**
 * Opens the one-hot planes to the compute server (party 0) alone: the key server sends its shares
 * and receives nothing back. Party 0 gets the winner of each record; party 1 gets an empty list.
 */
export async function revealOneHot(p: MpcParty, planes: Plane[], n: number, k: number): Promise<number[]> {
  if (p.id === 1) {
    await p.channel.exchange(bytesOf(concat(planes)));
    return [];
  }
  const theirs = asWords(await p.channel.exchange(new Uint8Array(0)), wordsFor(n) * k);
  const mine = concat(planes);
  return Array.from({ length: n }, (_, i) => {
    const winners: number[] = [];
    for (let j = 0; j < k; j++) if (bitOf(mine.subarray(j * wordsFor(n)), i) !== bitOf(theirs.subarray(j * wordsFor(n)), i)) winners.push(j);
    if (winners.length !== 1) throw new MpcChannelError(`the argmin of record ${i} opened to ${winners.length} clusters`);
    return winners[0]!;
  });
}

/**
 * The compute server's half. omegas: n x k encrypted distances (SDM's Omega_j = || |c_j| x - S_j ||^2),
 * sizes: the k cluster sizes; |Delta'| < 2^deltaBits. Returns the nearest cluster per record, ties
 * to the lower index (as the plaintext reference).
 */
export async function hiddenArgmin(
  ctx: ComputeSideContext,
  omegas: readonly (readonly Ciphertext[])[],
  sizes: readonly bigint[],
  deltaBits: number,
): Promise<number[]> {
  const k = sizes.length;
  if (omegas.length === 0) return [];
  if (omegas.some((row) => row.length !== k)) throw new ProtocolError('one distance per cluster');
  if (k === 1) return omegas.map(() => 0);
  if (k > MAX_ARGMIN_CHOICES) throw new ParameterError(`a hidden argmin chooses among at most ${MAX_ARGMIN_CHOICES}`);
  const pk = omegas[0]![0]!.publicKey;
  if (omegas.some((row) => row.some((c) => !c.publicKey.equals(pk)))) throw new KeyMismatchError('batch mixes public keys');
  widths(pk.params.N, deltaBits);
  const perSession = Math.max(1, Math.floor(MAX_COMPARISONS / ((k * (k - 1)) / 2)));
  const out: number[] = [];
  for (let at = 0; at < omegas.length; at += perSession) {
    out.push(...(await argminSession(ctx, pk, omegas.slice(at, at + perSession), sizes, deltaBits)));
  }
  return out;
}

/** The start's arguments, checked against the key server's keys before the session opens. */
function sessionOf(state: KeyServerState, raw: unknown) {
  const parsed = Args.safeParse(raw);
  if (!parsed.success) throw new ParameterError(`a hidden argmin request is malformed: ${parsed.error.issues[0]?.message}`);
  const { key, records: n, k, deltaBits } = parsed.data;
  const count = (n * k * (k - 1)) / 2;
  if (count > MAX_COMPARISONS) throw new ParameterError(`a hidden argmin session holds at most ${MAX_COMPARISONS} comparisons`);
  const pk = state.key(key);
  return { pk, n, k, count, ...widths(pk.params.N, deltaBits) };
}

/** The key server's half, registered on its engine endpoint. What it sees is recorded as `engine.argmin`. */
export function registerHiddenArgmin(endpoint: MpcEndpoint, state: KeyServerState): void {
  endpoint.register(
    HIDDEN_ARGMIN,
    async (channel, raw, provider) => {
      const { pk, n, k, count, ringBits, slotBits } = sessionOf(state, raw);
      const N = pk.params.N;
      const p = mpcParty(1, channel(), await provider());
      const packs = deserializeCiphertexts(await p.channel.exchange(new Uint8Array(0)), pk, packCount(N, slotBits, count));
      if (packs.length !== packCount(N, slotBits, count)) throw new MpcChannelError('pack count does not match the session');
      const opened = await state.open(`${HIDDEN_ARGMIN}-pack`, pk, pairsOf(packs.flatMap((c) => [c.A, c.B])));
      // Delta' + r lies in (0, 2^(slotBits - 1)); anything else is a malformed request.
      const values = unpack(opened, N, slotBits, count, 1n, 1n << BigInt(slotBits - 1));
      state.observe(HIDDEN_ARGMIN, values);
      await revealOneHot(p, await oneHot(p, wide.fromBigints(ringBits, values), n, k), n, k);
    },
    (raw) => void sessionOf(state, raw),
  );
}
