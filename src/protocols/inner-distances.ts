/**
 * Secure distances from shared records: the k-means iteration's replacement for SDM (seed 000
 * Algorithm 4) at scale. Same output role: for every (record i, cluster j) an encryption of
 *   phi_ij = -2 |c_j| <x_i, s_j> + ||s_j||^2 = Omega_ij - |c_j|^2 ||x_i||^2,
 * and SDC's Delta = |c_b|^2 Omega_a - |c_a|^2 Omega_b equals |c_b|^2 phi_a - |c_a|^2 phi_b exactly
 * (the ||x_i||^2 terms cancel), so SMDM runs unchanged on phi.
 *
 * Shares. Once per job the key server keeps X'_i = x_i + c_i, each value statistically blinded
 * (c = 2^v + r, r uniform in [0, 2^(v + sigma)), sigma = 40): the values it decrypted while
 * converting the job's data anyway (sct.ts `sctBounded` with a share), or after a restart a fresh
 * `share` round. The compute server keeps c.
 *
 * Per iteration, Alice (compute server) blinds w_j = -2 |c_j| s_j and s_j (KMS-form ciphertexts)
 * once, w' = w + t, s' = s + u (statistical, one decryption per pack), and sends the same packs with
 * every chunk of records; per chunk:
 *   Bob:   z_ij = <X'_i, w'_j> and ||s'_j||^2 in the clear, answers KMS-form encryptions.
 *   Alice: sigma_j = Enc(||s'_j||^2) * prod_d Enc(s_jd)^(-2 u_jd) * Enc(-||u_j||^2)
 *          phi_ij  = Enc(z_ij) * prod_d Enc(x_id)^(-t_jd) * prod_d Enc(w_jd)^(-c_id) * Enc(-<c_i, t_j>) * sigma_j
 *          (z = <x, w> + <x, t> + <c, w> + <c, t>): one multi-exponentiation of 2m short exponents.
 *
 * What each party learns. Bob: X' once per job, and w', s' per iteration, each value within statistical
 * distance 2^(1-sigma) of uniform whatever the data (leakage test); z and ||s'||^2 are functions of
 * those. Nothing about sizes or assignments. Alice: only fresh KMS-form encryptions (DCR). Against
 * SDM, Bob decrypts 2km values per chunk instead of m per (record, cluster), and every ciphertext
 * of the iteration is one group element (kms-paillier.ts).
 */
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { Ciphertext, negate, scalarMultiply } from '../crypto/ciphertext.js';
import { bitLength, randomBelow } from '../crypto/bigint.js';
import { flatten, kernel, type ComputeSideContext } from './round-trip.js';
import { decodeMessage, encodeMessage, fingerprint, MAX_ELEMENTS, ProtocolError } from './messages.js';
import type { BcpPublicKey } from '../crypto/bcp-keys.js';
import { decodeForKey, pairsOf, type KeyServerState } from './key-server-state.js';
import { SIGMA, type DistanceBounds } from './bit-budget.js';
import { packCiphertexts, packCount, unpack } from './packing.js';
import { combineAll, term } from './sm.js';
import { distanceShape } from './sdm.js';
import type { Pair } from '../crypto/kernels.js';

/** The compute server's half of a share: which set at the key server, and its blinds c. */
export interface RecordShare {
  id: string;
  /** c for record i, attribute d at i * m + d. */
  blinds: bigint[];
}

export function newShareId(): string {
  return randomBytes(16).toString('hex');
}

/** c = 2^v + r, r uniform in [0, 2^(v + sigma)): X' = x + c lies in (0, 2^(v + sigma + 1)) when |x| < 2^v. */
export function shareBlind(valueBits: number): bigint {
  return (1n << BigInt(valueBits)) + randomBelow(1n << BigInt(valueBits + SIGMA));
}

export function shareSlotBits(valueBits: number): number {
  return valueBits + SIGMA + 2;
}

function assertKmsForm(cs: readonly Ciphertext[]): void {
  if (cs.some((c) => c.A !== 1n)) throw new ProtocolError('shared-record distances need KMS-form ciphertexts');
}

const SHARE_BATCH = 4096;

/** A fresh share of KMS-form records (after a restart of either server): one decryption per pack. */
export async function shareRecords(ctx: ComputeSideContext, records: readonly (readonly Ciphertext[])[], valueBits: number): Promise<RecordShare> {
  const flat = records.flat();
  assertKmsForm(flat);
  const pk = flat[0]!.publicKey;
  const share: RecordShare = { id: newShareId(), blinds: flat.map(() => shareBlind(valueBits)) };
  const slotBits = shareSlotBits(valueBits);
  for (let i = 0; i < flat.length; i += SHARE_BATCH) {
    const cs = flat.slice(i, i + SHARE_BATCH);
    const packs = await packCiphertexts(ctx, pk, cs, share.blinds.slice(i, i + SHARE_BATCH), slotBits);
    const header = { key: pk.fingerprint, share: share.id, offset: i, count: cs.length, slotBits };
    await ctx.transport.call('share', encodeMessage(header, flatten(packs), pk.params.elementBytes));
  }
  return share;
}

const shareId = z.string().regex(/^[0-9a-f]{32}$/);
/** Slots narrower than the blinding would carry no statistically hidden value: refused. */
export const slotBitsSchema = z
  .number()
  .int()
  .min(SIGMA + 3)
  .max(16_384);

const shareSchema = z.object({
  key: fingerprint,
  share: shareId,
  offset: z.number().int().nonnegative(),
  count: z.number().int().nonnegative().max(MAX_ELEMENTS),
  slotBits: slotBitsSchema,
  perPack: z.number().int().min(1).max(4096).optional(),
});

export async function shareKeyServer(state: KeyServerState, body: Uint8Array): Promise<Buffer> {
  const { header, elements, pk } = decodeForKey(state, body, shareSchema);
  state.requireJobKey(pk);
  const N = pk.params.N;
  if (elements.length !== 2 * packCount(N, header.slotBits, header.count, header.perPack))
    throw new ProtocolError('pack count does not match the header');
  const values = unpack(
    await state.open('share-pack', pk, pairsOf(elements)),
    N,
    header.slotBits,
    header.count,
    undefined,
    undefined,
    header.perPack,
  );
  state.observe('share', values);
  await state.shares.put(header.share, pk.fingerprint, header.offset, values);
  return Buffer.alloc(0);
}

/** Bits of the blinded w = -2 |c| s and s values: |w| <= 2 n * n maxAbs. */
function centroidBits(b: Pick<DistanceBounds, 'maxAbs' | 'maxCount'>): number {
  const n = BigInt(b.maxCount);
  return bitLength(2n * n * n * b.maxAbs);
}

/**
 * One iteration's centroids, blinded once and packed: every chunk of the iteration sends the same
 * packs, so the key server sees one sample of w + t and s + u per iteration whatever the chunking.
 */
export interface BlindedCentroids {
  sums: readonly (readonly Ciphertext[])[];
  w: Ciphertext[][];
  t: bigint[][];
  u: bigint[][];
  packs: Ciphertext[];
  slotBits: number;
}

/** sums: KMS form, k x m; sizes: k. */
export async function blindCentroids(
  ctx: ComputeSideContext,
  sums: readonly (readonly Ciphertext[])[],
  sizes: readonly bigint[],
  bounds: Pick<DistanceBounds, 'maxAbs' | 'maxCount'>,
): Promise<BlindedCentroids> {
  if (sums.length === 0 || sizes.length !== sums.length) throw new ProtocolError('one size per cluster');
  assertKmsForm(sums.flat());
  const pk = sums[0]![0]!.publicKey;
  const beta = centroidBits(bounds);
  const slotBits = beta + SIGMA + 2;
  const w = sums.map((s, j) => s.map((c) => scalarMultiply(c, -2n * sizes[j]!)));
  const blind = () => (1n << BigInt(beta)) + randomBelow(1n << BigInt(beta + SIGMA));
  const t = w.map((row) => row.map(blind));
  const u = sums.map((row) => row.map(blind));
  const packs = await packCiphertexts(ctx, pk, [...w.flat(), ...sums.flat()], [...t.flat(), ...u.flat()], slotBits);
  return { sums, w, t, u, packs, slotBits };
}

/** phi for records [first, first + records.length) of the share, as KMS-form ciphertexts (n x k). */
export async function innerDistances(
  ctx: ComputeSideContext,
  share: RecordShare,
  first: number,
  records: readonly (readonly Ciphertext[])[],
  centroids: BlindedCentroids,
): Promise<Ciphertext[][]> {
  const { sums, w, t, u } = centroids;
  const shape = distanceShape(
    records,
    sums,
    w.map(() => 0n),
  );
  if (!shape) return [];
  const { k, m, pk } = shape;
  assertKmsForm(records.flat());
  const N = pk.params.N;
  const N2 = pk.params.N2;
  const header = { key: pk.fingerprint, share: share.id, first, count: records.length, k, m, slotBits: centroids.slotBits };
  const reply = await ctx.transport.call('inner', encodeMessage(header, flatten(centroids.packs), pk.params.elementBytes));
  const expected = records.length * k + k;
  const { header: h, elements } = decodeMessage(reply, replySchema, () => ({ elementBytes: pk.params.elementBytes, modulus: N2 }));
  if (h.count !== expected || elements.length !== expected) throw new ProtocolError('malformed distance answer');

  const sigmaReply = elements.slice(records.length * k);
  const sigma = await combineAll(
    ctx,
    pk,
    sigmaReply.map((c, j) => ({
      base: [1n, c] as Pair,
      terms: sums[j]!.map((s, d) => term(s, -2n * u[j]![d]!)),
      t: -u[j]!.reduce((acc, x) => acc + x * x, 0n),
    })),
  );
  const shared = { N, wInv: w.map((row) => row.map((c) => negate(c).B)), t, sigma: sigma.map((c) => c.B) };
  const items = records.map((r, i) => ({
    z: elements.slice(i * k, (i + 1) * k),
    x: r.map((c) => c.B),
    c: share.blinds.slice((first + i) * m, (first + i + 1) * m),
  }));
  if (items.some((it) => it.c.length !== m))
    throw new ProtocolError(`records [${first}, ${first + records.length}) outside the share (${share.blinds.length / m} records of ${m} values)`);
  const phis = await kernel<bigint[]>(ctx, 'innerUnblind', shared, items);
  return phis.map((row) => row.map((B) => new Ciphertext(pk, 1n, B)));
}

/** Tells the key server a job no longer needs its share (best effort: it is bounded anyway). */
export async function dropShare(ctx: ComputeSideContext, pk: BcpPublicKey, id: string): Promise<void> {
  await ctx.transport.call('share-drop', encodeMessage({ key: pk.fingerprint, share: id }, [], pk.params.elementBytes));
}

const dropSchema = z.object({ key: fingerprint, share: shareId });

export async function dropShareKeyServer(state: KeyServerState, body: Uint8Array): Promise<Buffer> {
  const { header, pk } = decodeForKey(state, body, dropSchema);
  state.requireJobKey(pk);
  await state.shares.drop(header.share);
  return Buffer.alloc(0);
}

const replySchema = z.object({ count: z.number().int().nonnegative() });

const innerSchema = z
  .object({
    key: fingerprint,
    share: shareId,
    first: z.number().int().nonnegative(),
    count: z.number().int().nonnegative(),
    k: z.number().int().min(1),
    m: z.number().int().min(1),
    slotBits: slotBitsSchema,
  })
  // The answer (count k + k elements) must fit one message, and the work stays bounded with it.
  .refine((h) => h.count * h.k + h.k <= MAX_ELEMENTS && h.count * h.k * h.m <= 1 << 22, 'distance request too large');

export async function innerKeyServer(state: KeyServerState, body: Uint8Array): Promise<Buffer> {
  const { header, elements, pk } = decodeForKey(state, body, innerSchema);
  state.requireJobKey(pk);
  const { k, m, count, first, slotBits } = header;
  const N = pk.params.N;
  const values = 2 * k * m;
  if (elements.length !== 2 * packCount(N, slotBits, values)) throw new ProtocolError('pack count does not match the header');
  const x = await state.shares.get(header.share, pk.fingerprint, first * m, count * m);
  const opened = unpack(await state.open('inner-pack', pk, pairsOf(elements)), N, slotBits, values);
  state.observe('inner', opened);
  const w = opened.slice(0, k * m);
  const s = opened.slice(k * m);
  const out: bigint[] = [];
  for (let i = 0; i < count; i++) {
    for (let j = 0; j < k; j++) {
      let acc = 0n;
      for (let d = 0; d < m; d++) acc += x[i * m + d]! * w[j * m + d]!;
      out.push(acc % N);
    }
  }
  for (let j = 0; j < k; j++) {
    let acc = 0n;
    for (let d = 0; d < m; d++) acc += s[j * m + d]! ** 2n;
    out.push(acc % N);
  }
  const sealed = await state.sealKms(pk, out);
  return encodeMessage(
    { count: sealed.length },
    sealed.map(([, c]) => c),
    pk.params.elementBytes,
  );
}
