/**
 * SDM, secure squared distance (seed 000 Algorithm 4 with the square restored, docs/corrections.md (3.3)):
 *   Omega_ij = sum_alpha (|c_j| d_i,alpha - s_j,alpha)^2,
 * so Omega_ij / |c_j|^2 is the squared distance from record i to the centroid s_j / |c_j|.
 *
 * Restructured for one key-server ciphertext per (record, cluster) and packed decryptions:
 *   Alice: t = Enc(|c_j| d - s) by scalar steps (|c_j| is hers, docs/corrections.md (3.5)); blinds each t with
 *          c = 2^beta + r, r uniform in [0, 2^(beta + sigma)) (statistical, sigma = 40), so every
 *          blinded value v = t + c lies in [0, 2^l), l = beta + sigma + 2; packs floor((bits(N)-2)/l)
 *          of them per plaintext with one fresh encryption of the blinds per pack.
 *   Bob:   decrypts each pack once, unpacks the v, answers Enc(sum_alpha v^2) per (i, j).
 *   Alice: Omega = Enc(sum v^2) * prod_alpha t^(-2c) * Enc(-sum c^2), with exponents of l bits.
 * Bob learns the v: each within statistical distance 2^(1-sigma) of uniform on [0, 2^(beta+sigma)),
 * whatever the data (measured by the leakage test). Alice learns nothing (ciphertexts only).
 */
import { z } from 'zod';
import type { BcpPublicKey } from '../crypto/bcp-keys.js';
import { add, negate, scalarMultiply, type Ciphertext } from '../crypto/ciphertext.js';
import { randomBelow } from '../crypto/bigint.js';
import { KeyMismatchError } from '../crypto/errors.js';
import { encodeReply, type ComputeSideContext } from './round-trip.js';
import { decodeMessage, encodeMessage, fingerprint, ProtocolError } from './messages.js';
import { decodeForKey, pairsOf, type KeyServerState } from './key-server-state.js';
import { SIGMA, differenceBits, type DistanceBounds } from './bit-budget.js';
import { packCiphertexts, packCount, unpack } from './packing.js';
import { flatten } from './round-trip.js';
import { combineAll, term } from './sm.js';
import type { Pair } from '../crypto/kernels.js';

/** Checks records n x m, sums k x m and sizes k agree in shape and key; undefined when n = 0. */
export function distanceShape(
  records: readonly (readonly Ciphertext[])[],
  sums: readonly (readonly Ciphertext[])[],
  sizes: readonly bigint[],
): { k: number; m: number; pk: BcpPublicKey } | undefined {
  const k = sums.length;
  const m = sums[0]?.length ?? 0;
  if (sizes.length !== k) throw new ProtocolError('one size per cluster');
  if (records.some((r) => r.length !== m) || sums.some((s) => s.length !== m)) throw new ProtocolError('dimension mismatch');
  if (records.length === 0) return undefined;
  const pk = sums[0]![0]!.publicKey;
  if (records.some((r) => r.some((c) => !c.publicKey.equals(pk)))) throw new KeyMismatchError('distances mix public keys');
  return { k, m, pk };
}

/** records: n x m, sums: k x m, sizes: k. Returns Omega as n x k. */
export async function secureDistances(
  ctx: ComputeSideContext,
  records: readonly (readonly Ciphertext[])[],
  sums: readonly (readonly Ciphertext[])[],
  sizes: readonly bigint[],
  bounds: Pick<DistanceBounds, 'maxAbs' | 'maxCount'>,
): Promise<Ciphertext[][]> {
  const shape = distanceShape(records, sums, sizes);
  if (!shape) return [];
  const { k, m, pk } = shape;
  const beta = differenceBits({ ...bounds, dims: m });
  const slotBits = beta + SIGMA + 2;
  const negSums = sums.map((s) => s.map(negate));
  const t: Ciphertext[] = [];
  for (const d of records) {
    for (let j = 0; j < k; j++) for (let a = 0; a < m; a++) t.push(add(scalarMultiply(d[a]!, sizes[j]!), negSums[j]![a]!));
  }
  const offset = 1n << BigInt(beta);
  const blinds = t.map(() => offset + randomBelow(1n << BigInt(beta + SIGMA)));
  const packs = await packCiphertexts(ctx, pk, t, blinds, slotBits);
  const groups = records.length * k;
  const body = encodeMessage({ key: pk.fingerprint, groups, m, slotBits }, flatten(packs), pk.params.elementBytes);
  const reply = await roundTripPairs(ctx, body, pk, groups);
  const omegas = await combineAll(
    ctx,
    pk,
    reply.map((w, g) => {
      let c2 = 0n;
      const terms: Array<[bigint, bigint, bigint]> = [];
      for (let a = 0; a < m; a++) {
        const c = blinds[g * m + a]!;
        c2 += c * c;
        terms.push(term(t[g * m + a]!, -2n * c));
      }
      return { base: w, terms, t: -c2 };
    }),
  );
  const out: Ciphertext[][] = [];
  for (let i = 0; i < records.length; i++) out.push(omegas.slice(i * k, (i + 1) * k));
  return out;
}

const replySchema = z.object({ count: z.number().int().nonnegative() });

async function roundTripPairs(ctx: ComputeSideContext, body: Uint8Array, pk: BcpPublicKey, expected: number): Promise<Pair[]> {
  const { header, elements } = decodeMessage(await ctx.transport.call('square-sum', body), replySchema, () => ({
    elementBytes: pk.params.elementBytes,
    modulus: pk.params.N2,
  }));
  if (header.count !== expected || elements.length !== 2 * expected) throw new ProtocolError('malformed SDM answer');
  return pairsOf(elements);
}

const schema = z.object({
  key: fingerprint,
  groups: z.number().int().nonnegative(),
  m: z.number().int().min(1).max(100_000),
  slotBits: z.number().int().min(1).max(16_384),
});

export async function squareSumKeyServer(state: KeyServerState, body: Uint8Array): Promise<Buffer> {
  const { header, elements, pk } = decodeForKey(state, body, schema);
  const N = pk.params.N;
  const count = header.groups * header.m;
  if (elements.length !== 2 * packCount(N, header.slotBits, count)) throw new ProtocolError('pack count does not match the header');
  const v = unpack(await state.open('sdm-pack', pk, pairsOf(elements)), N, header.slotBits, count);
  state.observe('sdm', v);
  const w: bigint[] = [];
  for (let g = 0; g < header.groups; g++) {
    let acc = 0n;
    for (let a = 0; a < header.m; a++) acc += v[g * header.m + a]! ** 2n;
    w.push(acc % N);
  }
  return encodeReply(await state.seal(pk, w), pk.params.elementBytes);
}
