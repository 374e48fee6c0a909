/**
 * The k-means assignment on shares (issue 16): the nearest cluster of every record, revealed to the
 * compute server (CCS, Alice) only, with the distances computed as one Beaver matrix product in
 * Z_2^l instead of homomorphically per (record, cluster). The records enter as the share the key
 * server (KMS, Bob) keeps since the conversion (protocols/inner-distances.ts): X' = x + c at Bob,
 * c at Alice, both reduced modulo 2^l.
 *
 * Per iteration, Alice forms from the encrypted sums S_j and the sizes |c_j| (which she knows), for
 * every pair q = (a, b), a < b:
 *   V_q = 2 (|c_b|^2 w_a - |c_a|^2 w_b),  w_j = -2 |c_j| S_j           (m values, homomorphically)
 *   G_q = 2 (|c_b|^2 ||S_a||^2 - |c_a|^2 ||S_b||^2) - 1                (||S||^2 by secure squares)
 * so that <x_i, V_q> + G_q = 2 (|c_b|^2 Omega_ia - |c_a|^2 Omega_ib) - 1 = Delta'_iq exactly (the
 * |c|^2 ||x||^2 terms of Omega cancel): the hidden argmin's Delta', negative iff a is at least as
 * near as b (ties to the lower index, as the plaintext reference). Then, in one engine session per
 * block of records:
 *   both: V and G become shares of Z_2^l, l = deltaBits + 1, by one blinded decryption of packs
 *         (mask uniform in [2^beta, 2^(beta + 40))); the same packs serve every block of an
 *         iteration, so Bob sees one sample of them per iteration;
 *   both: Delta' = X V + 1 G with a matrix triple (A, B, C = A B) of the dealer: E = X - A and
 *         F = V - B are opened, and Delta'_p = [p = 0] E F + E B_p + A_p F + C_p + G_p;
 *   both: the hidden argmin's one-hot circuit on Delta' (hidden-argmin.ts), opened to Alice.
 *
 * What each party sees. Bob: V + r and G + r (each within statistical distance 2^-39 of uniform
 * whatever the data), E and F (uniform in Z_2^l, masked by the dealer's A and B), the circuit's
 * openings (uniform). Alice: E, F, the openings, and the assignment (which the seed's k-means
 * reveals to her anyway). The sizes never leave Alice; only the dealer knows A, B, C, and it sees no
 * data (a dealer colluding with either server breaks privacy: provider/dealer.ts).
 *
 * Cost per record: m products of l-bit integers per pair and the comparison circuit; no public-key
 * operation at all. The `ot` provider has no wide matrix triples, so without a dealer the k-means
 * loop keeps the homomorphic distances (inner-distances.ts).
 */
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { addPlain, scalarMultiply, add, type Ciphertext } from '../crypto/ciphertext.js';
import type { BcpPublicKey } from '../crypto/bcp-keys.js';
import { bitLength, randomBelow } from '../crypto/bigint.js';
import { ParameterError } from '../crypto/errors.js';
import { deserializeCiphertexts, serializeCiphertexts } from '../crypto/serialize.js';
import { packCiphertexts, packCount, unpack } from '../protocols/packing.js';
import { secureSquare } from '../protocols/sm.js';
import type { ComputeSideContext } from '../protocols/round-trip.js';
import type { RecordShare } from '../protocols/inner-distances.js';
import { pairsOf, type KeyServerState } from '../protocols/key-server-state.js';
import { SIGMA, type DistanceBounds } from '../protocols/bit-budget.js';
import { asRing, bytesOf, MpcChannelError } from './channel.js';
import * as wide from './wide-ring.js';
import { mpcParty, type MpcParty } from './party.js';
import type { MpcEndpoint } from './server-channel.js';
import { startEngineSession } from './engine-session.js';
import { MAX_ARGMIN_CHOICES, oneHot, pairsOfClusters, revealOneHot, widths } from './hidden-argmin.js';
import { MAX_WIDE_PRODUCTS } from './provider/dealer.js';

export const NEAREST_CENTROID = 'engine.nearest-centroid';
/** Comparisons per session, as the hidden argmin's. */
const MAX_COMPARISONS = 1 << 16;

/** One iteration's centroid terms, blinded once and packed, with Alice's shares of them. */
export interface CentroidTerms {
  pk: BcpPublicKey;
  k: number;
  m: number;
  deltaBits: number;
  slotBits: number;
  /** Enc(V + r) (m x P, row-major: d P + q) then Enc(G + r) (P), packed. */
  packs: Ciphertext[];
  /** -r for the same values: Alice's shares before reduction. */
  mine: bigint[];
}

/** Bits of |V| and |G|: |w| <= 2 n * n maxAbs, so |V| <= 8 n^4 maxAbs and |G| <= 4 m n^4 maxAbs^2 + 1. */
function termBits(b: DistanceBounds): number {
  const n = BigInt(b.maxCount);
  return Math.max(bitLength(8n * n ** 4n * b.maxAbs), bitLength(4n * BigInt(b.dims) * n ** 4n * b.maxAbs * b.maxAbs + 1n));
}

/** Alice, once per iteration: V and G from the encrypted sums (KMS form, k x m) and the sizes. */
export async function centroidTerms(
  ctx: ComputeSideContext,
  sums: readonly (readonly Ciphertext[])[],
  sizes: readonly bigint[],
  bounds: DistanceBounds,
  deltaBits: number,
): Promise<CentroidTerms> {
  const k = sums.length;
  const m = sums[0]!.length;
  const pk = sums[0]![0]!.publicKey;
  if (k < 2 || k > MAX_ARGMIN_CHOICES || sizes.length !== k) throw new ParameterError('one size per cluster, 2 to the argmin limit');
  const squares = await secureSquare(ctx, sums.flat());
  const norms = sums.map((_, j) => squares.slice(j * m, (j + 1) * m).reduce((acc, c) => add(acc, c)));
  const w = sums.map((row, j) => row.map((c) => scalarMultiply(c, -2n * sizes[j]!)));
  const pairs = pairsOfClusters(k);
  const sq = (j: number) => 2n * sizes[j]! * sizes[j]!;
  const V = Array.from({ length: m }, (_, d) => pairs.map(([a, b]) => add(scalarMultiply(w[a]![d]!, sq(b)), scalarMultiply(w[b]![d]!, -sq(a)))));
  const G = pairs.map(([a, b]) => addPlain(add(scalarMultiply(norms[a]!, sq(b)), scalarMultiply(norms[b]!, -sq(a))), -1n));
  const values = [...V.flat(), ...G];
  const beta = termBits(bounds);
  const slotBits = beta + SIGMA + 2;
  const low = 1n << BigInt(beta);
  const masks = values.map(() => low + randomBelow((1n << BigInt(beta + SIGMA)) - low));
  const packs = await packCiphertexts(ctx, pk, values, masks, slotBits);
  return { pk, k, m, deltaBits, slotBits, packs, mine: masks.map((r) => -r) };
}

const Args = z.object({
  key: z.string().min(1).max(128),
  share: z.string().regex(/^[0-9a-f]{32}$/),
  first: z.number().int().nonnegative(),
  records: z.number().int().min(1).max(MAX_COMPARISONS),
  k: z.number().int().min(2).max(MAX_ARGMIN_CHOICES),
  m: z.number().int().min(1).max(4096),
  deltaBits: z.number().int().min(1).max(16_000),
  slotBits: z
    .number()
    .int()
    .min(SIGMA + 3)
    .max(16_384),
  provider: z.literal('dealer'),
});

/** The widest ring the dealer makes matrix triples in (provider/dealer.ts). */
const MAX_RING_BITS = 512;
/** The most centroid-term values (m P + P) one iteration sends: they travel in one message per block. */
const MAX_TERM_VALUES = 1 << 16;

/**
 * Whether an iteration with k clusters, m attributes and |Delta'| < 2^deltaBits can assign on
 * shares: a block of one record fits the dealer's products, the ring its triples, the terms one
 * message. Jobs check it before choosing the path, so none fails on it later.
 */
export function assignsOnShares(N: bigint, k: number, m: number, deltaBits: number): boolean {
  const pairs = (k * (k - 1)) / 2;
  if (k < 2 || k > MAX_ARGMIN_CHOICES || m * pairs > MAX_WIDE_PRODUCTS || m * pairs + pairs > MAX_TERM_VALUES) return false;
  try {
    return widths(N, deltaBits).ringBits <= MAX_RING_BITS;
  } catch {
    return false;
  }
}

/** Records per session: the comparisons and the dealer's products both stay bounded. */
export function recordsPerSession(k: number, m: number): number {
  const pairs = (k * (k - 1)) / 2;
  return Math.max(1, Math.min(Math.floor(MAX_COMPARISONS / pairs), Math.floor(MAX_WIDE_PRODUCTS / (m * pairs))));
}

/**
 * Both parties, from their shares of the records (n x m) and of V (m x P) and G (P): their shares
 * of Delta' pair-major (element q n + i), as the one-hot circuit takes them.
 */
async function distanceDifferences(p: MpcParty, x: wide.WideArray, v: wide.WideArray, g: wide.WideArray, n: number, m: number, pairs: number) {
  const bits = x.bits;
  const t = await p.provider.wideMatmulTriple!(bits, n, m, pairs);
  const e = wide.sub(x, t.a);
  const f = wide.sub(v, t.b);
  // One round: E's limbs then F's, each limb-major.
  const [eWords, fWords] = [wide.limbWords(e), wide.limbWords(f)];
  const sent = new BigUint64Array(eWords.length + fWords.length);
  sent.set(eWords);
  sent.set(fWords, eWords.length);
  const got = asRing(await p.channel.exchange(bytesOf(sent)), sent.length);
  const E = wide.add(e, wide.fromLimbWords(bits, n * m, got.slice(0, eWords.length)));
  const F = wide.add(f, wide.fromLimbWords(bits, m * pairs, got.slice(eWords.length)));
  let z = wide.add(wide.add(wide.matmul(E, t.b, n, m, pairs), wide.matmul(t.a, F, n, m, pairs)), t.c);
  if (p.id === 0) z = wide.add(z, wide.matmul(E, F, n, m, pairs));
  const zs = wide.toBigints(z);
  const gs = wide.toBigints(g);
  const out: bigint[] = new Array(n * pairs);
  for (let i = 0; i < n; i++) for (let q = 0; q < pairs; q++) out[q * n + i] = zs[i * pairs + q]! + gs[q]!;
  return wide.fromBigints(bits, out);
}

/** Both parties, from their shares: the one-hot planes of the nearest cluster of n records. */
async function nearest(p: MpcParty, records: bigint[], terms: bigint[], n: number, k: number, m: number, ringBits: number): Promise<number[]> {
  const pairs = (k * (k - 1)) / 2;
  const x = wide.fromBigints(ringBits, records);
  const v = wide.fromBigints(ringBits, terms.slice(0, m * pairs));
  const g = wide.fromBigints(ringBits, terms.slice(m * pairs));
  const deltas = await distanceDifferences(p, x, v, g, n, m, pairs);
  return revealOneHot(p, await oneHot(p, deltas, n, k), n, k);
}

/**
 * The compute server's half: the nearest cluster of records [first, first + count) of the share,
 * ties to the lower index. Needs a dealer (ctx.dealer).
 */
export async function nearestCentroids(
  ctx: ComputeSideContext,
  share: RecordShare,
  first: number,
  count: number,
  terms: CentroidTerms,
): Promise<number[]> {
  if (!ctx.dealer) throw new ParameterError('the assignment on shares needs the dealer provider');
  const { pk, k, m, deltaBits, slotBits } = terms;
  const { ringBits } = widths(pk.params.N, deltaBits);
  const per = recordsPerSession(k, m);
  const out: number[] = [];
  for (let at = first; at < first + count; at += per) {
    const n = Math.min(per, first + count - at);
    const blinds = share.blinds.slice(at * m, (at + n) * m);
    if (blinds.length !== n * m) throw new ParameterError('records outside the share');
    const session = `nearest-${randomBytes(12).toString('hex')}`;
    const args = { key: pk.fingerprint, share: share.id, first: at, records: n, k, m, deltaBits, slotBits };
    const p = await startEngineSession(ctx, NEAREST_CENTROID, session, args);
    await p.channel.exchange(serializeCiphertexts(pk, terms.packs));
    out.push(
      ...(await nearest(
        p,
        blinds.map((c) => -c),
        terms.mine,
        n,
        k,
        m,
        ringBits,
      )),
    );
  }
  return out;
}

/** The start's arguments, checked against the key server's keys and shares before the session opens. */
async function sessionOf(state: KeyServerState, raw: unknown) {
  const parsed = Args.safeParse(raw);
  if (!parsed.success) throw new ParameterError(`a nearest-centroid request is malformed: ${parsed.error.issues[0]?.message}`);
  const a = parsed.data;
  const pairs = (a.k * (a.k - 1)) / 2;
  if (a.records > recordsPerSession(a.k, a.m) || a.records * a.m * pairs > MAX_WIDE_PRODUCTS)
    throw new ParameterError(`a nearest-centroid session holds at most ${recordsPerSession(a.k, a.m)} records`);
  const pk = state.key(a.key);
  state.requireJobKey(pk);
  if (!assignsOnShares(pk.params.N, a.k, a.m, a.deltaBits)) throw new ParameterError('these centroid terms do not fit an assignment on shares');
  const { ringBits } = widths(pk.params.N, a.deltaBits);
  // An unknown share (a restarted key server) fails the start, so the compute server shares again.
  const records = await state.shares.get(a.share, pk.fingerprint, a.first * a.m, a.records * a.m);
  return { ...a, pk, pairs, ringBits, records, values: a.m * pairs + pairs };
}

/** The key server's half, registered on its engine endpoint. What it opens is recorded as `engine.nearest-centroid`. */
export function registerNearestCentroid(endpoint: MpcEndpoint, state: KeyServerState): void {
  endpoint.register(
    NEAREST_CENTROID,
    async (channel, raw, provider) => {
      const s = await sessionOf(state, raw);
      const N = s.pk.params.N;
      const p = mpcParty(1, channel(), await provider());
      if (!p.provider.wideMatmulTriple) throw new MpcChannelError('this provider has no wide matrix triples');
      const expected = packCount(N, s.slotBits, s.values);
      const packs = deserializeCiphertexts(await p.channel.exchange(new Uint8Array(0)), s.pk, expected);
      if (packs.length !== expected) throw new MpcChannelError('pack count does not match the session');
      const opened = await state.open(`${NEAREST_CENTROID}-pack`, s.pk, pairsOf(packs.flatMap((c) => [c.A, c.B])));
      // V + r and G + r lie in (0, 2^(slotBits - 1)); anything else is a malformed request.
      const terms = unpack(opened, N, s.slotBits, s.values, 1n, 1n << BigInt(s.slotBits - 1));
      state.observe(NEAREST_CENTROID, terms);
      await nearest(p, s.records, terms, s.records.length / s.m, s.k, s.m, s.ringBits);
    },
    async (raw) => void (await sessionOf(state, raw)),
  );
}
