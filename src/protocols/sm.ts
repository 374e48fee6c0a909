/**
 * SM, secure multiplication, and the secure square (seed 000 section 4.1; docs/protocols.md).
 *   SM:     Alice sends Enc(M1 + r1), Enc(M2 + r2); Bob answers Enc((M1 + r1)(M2 + r2));
 *           Enc(M1 M2) = Enc(L) * Enc(M1)^(-r2) * Enc(M2)^(-r1) * Enc(-r1 r2).
 *   Square: Alice sends Enc(M + r); Bob answers Enc((M + r)^2);
 *           Enc(M^2) = Enc(L) * Enc(M)^(-2r) * Enc(-r^2): one decryption instead of two.
 * r, r1, r2 are uniform in Z_N (perfect blinding): Bob sees uniform values whatever M is. A product by
 * a number Alice knows is a scalar exponentiation and never comes here (docs/corrections.md.5).
 */
import { z } from 'zod';
import type { BcpPublicKey } from '../crypto/bcp-keys.js';
import { add, Ciphertext } from '../crypto/ciphertext.js';
import type { Pair } from '../crypto/kernels.js';
import type { CombineItem } from './kernels.js';
import { mod, randomBelow } from '../crypto/bigint.js';
import { KeyMismatchError } from '../crypto/errors.js';
import { encryptAll, kernel, roundTrip, encodeReply, type ComputeSideContext } from './round-trip.js';
import { fingerprint, ProtocolError } from './messages.js';
import { decodeForKey, pairsOf, type KeyServerState } from './key-server-state.js';

function keyOf(cs: readonly Ciphertext[]): BcpPublicKey {
  const pk = cs[0]!.publicKey;
  if (cs.some((c) => !c.publicKey.equals(pk))) throw new KeyMismatchError('batch mixes public keys');
  return pk;
}

/** Enc(a_i * b_i) for each pair. */
export async function secureMultiply(ctx: ComputeSideContext, a: readonly Ciphertext[], b: readonly Ciphertext[]): Promise<Ciphertext[]> {
  if (a.length !== b.length) throw new ProtocolError('SM needs two batches of equal length');
  if (a.length === 0) return [];
  const pk = keyOf([...a, ...b]);
  const N = pk.params.N;
  const r1 = a.map(() => randomBelow(N));
  const r2 = a.map(() => randomBelow(N));
  const masks = await encryptAll(ctx, pk, [...r1, ...r2]);
  const out: Ciphertext[] = [];
  a.forEach((c, i) => out.push(add(c, masks[i]!), add(b[i]!, masks[a.length + i]!)));
  const L = await roundTrip(ctx, 'mul', { key: pk.fingerprint }, out, pk, a.length);
  return combineAll(
    ctx,
    pk,
    L.map((l, i) => ({
      base: [l.A, l.B] as Pair,
      terms: [term(a[i]!, mod(-r2[i]!, N)), term(b[i]!, mod(-r1[i]!, N))],
      t: mod(-r1[i]! * r2[i]!, N),
    })),
  );
}

export function term(c: Ciphertext, e: bigint): [bigint, bigint, bigint] {
  return [c.A, c.B, e];
}

/** Enc(L) * prod c_i^(e_i) * Enc(t), on the worker pool when there is one. */
export async function combineAll(ctx: ComputeSideContext, pk: BcpPublicKey, items: CombineItem[]): Promise<Ciphertext[]> {
  const pairs = await kernel<Pair>(ctx, 'combine', { N: pk.params.N }, items);
  return pairs.map(([A, B]) => new Ciphertext(pk, A, B));
}

/** Enc(m_i^2) for each ciphertext. */
export async function secureSquare(ctx: ComputeSideContext, cs: readonly Ciphertext[]): Promise<Ciphertext[]> {
  if (cs.length === 0) return [];
  const pk = keyOf(cs);
  const N = pk.params.N;
  const rs = cs.map(() => randomBelow(N));
  const masks = await encryptAll(ctx, pk, rs);
  const L = await roundTrip(
    ctx,
    'square',
    { key: pk.fingerprint },
    cs.map((c, i) => add(c, masks[i]!)),
    pk,
    cs.length,
  );
  return combineAll(
    ctx,
    pk,
    L.map((l, i) => ({
      base: [l.A, l.B] as Pair,
      terms: [term(cs[i]!, mod(-2n * rs[i]!, N))],
      t: mod(-rs[i]! * rs[i]!, N),
    })),
  );
}

const schema = z.object({ key: fingerprint, count: z.number().int().nonnegative() });

async function productsKeyServer(state: KeyServerState, body: Uint8Array, protocol: 'mul' | 'square'): Promise<Buffer> {
  const { header, elements, pk } = decodeForKey(state, body, schema);
  const per = protocol === 'mul' ? 4 : 2;
  if (elements.length !== per * header.count) throw new ProtocolError('element count does not match the header');
  const N = pk.params.N;
  const v = await state.open(protocol, pk, pairsOf(elements));
  const L = protocol === 'mul' ? Array.from({ length: header.count }, (_, i) => (v[2 * i]! * v[2 * i + 1]!) % N) : v.map((x) => (x * x) % N);
  return encodeReply(await state.seal(pk, L), pk.params.elementBytes);
}

export const mulKeyServer = (s: KeyServerState, b: Uint8Array) => productsKeyServer(s, b, 'mul');
export const squareKeyServer = (s: KeyServerState, b: Uint8Array) => productsKeyServer(s, b, 'square');
