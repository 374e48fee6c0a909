/**
 * Protocols on XOR-shared, bit-sliced bits, and the comparisons built from them: the most
 * significant bit of an arithmetic share by a carry circuit (ABY's A2B with a logarithmic-depth
 * carry tree), turned back into an arithmetic share with daBits (B2A), then less-than, ReLU and its
 * derivative. Exact for every input: the sign of x read as a signed 64-bit integer, with no
 * statistical slack. Each layer of AND gates is one round for the whole tensor.
 */
import { asWords, bytesOf } from '../channel.js';
import type { MpcParty } from '../party.js';
import * as ring from '../ring.js';
import { concat, split, toPlanes, xor, type Plane, bitOf } from '../bits.js';
import { mul, share, sub, addPublic, type ArithmeticShare } from './arithmetic.js';

/** AND of XOR-shared planes, pairwise, in one round (one AND triple per bit). */
export async function and(p: MpcParty, xs: readonly Plane[], ys: readonly Plane[]): Promise<Plane[]> {
  const x = concat(xs);
  const y = concat(ys);
  const t = await p.provider.andTriple(x.length);
  const mine = new Uint32Array(2 * x.length);
  for (let i = 0; i < x.length; i++) {
    mine[i] = x[i]! ^ t.a[i]!;
    mine[x.length + i] = y[i]! ^ t.b[i]!;
  }
  const theirs = asWords(await p.channel.exchange(bytesOf(mine)), mine.length);
  const z = new Uint32Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const d = mine[i]! ^ theirs[i]!;
    const e = mine[x.length + i]! ^ theirs[x.length + i]!;
    // z = c ^ (d & b) ^ (e & a) (^ d & e at party 0) = (d ^ a) & (e ^ b) = x & y
    z[i] = t.c[i]! ^ (d & t.b[i]!) ^ (e & t.a[i]!) ^ (p.id === 0 ? d & e : 0);
  }
  return split(z, xs.length);
}

/**
 * XOR shares of the most significant bit of x_0 + x_1 mod 2^l, each party giving the l bit planes
 * of its own share. Bit l-1 of the sum is a_{l-1} ^ b_{l-1} ^ carry with a = x_0 and b = x_1; the
 * carry into it is the "generate" of bits 0..l-2 under the carry operator
 * (g, p) o (g', p') = (g ^ p g', p p'), evaluated as a balanced tree: one round for the
 * generates, then ceil(log2(l - 1)) rounds (six for Z_2^64).
 */
export async function msbOfSum(p: MpcParty, mine: readonly Plane[], circuit: CarryCircuit = 'tree'): Promise<Plane> {
  if (circuit === 'ripple') return msbOfSumRipple(p, mine);
  const l = mine.length;
  const zero = new Uint32Array(mine[0]!.length);
  // As XOR shares, a = x_0 is (x_0, 0) and b = x_1 is (0, x_1); their XOR is each party's own bits.
  const low = mine.slice(0, l - 1);
  const a = p.id === 0 ? low : low.map(() => zero);
  const b = p.id === 1 ? low : low.map(() => zero);
  let g = await and(p, a, b);
  let prop = low;
  while (g.length > 1) {
    const pairs = Math.floor(g.length / 2);
    const hiP = Array.from({ length: pairs }, (_, i) => prop[2 * i + 1]!);
    const loG = Array.from({ length: pairs }, (_, i) => g[2 * i]!);
    const loP = Array.from({ length: pairs }, (_, i) => prop[2 * i]!);
    // The lowest group's propagate is never needed again (nothing lies below it).
    const products = await and(p, [...hiP, ...hiP.slice(1)], [...loG, ...loP.slice(1)]);
    const nextG = Array.from({ length: pairs }, (_, i) => xor(g[2 * i + 1]!, products[i]!));
    const nextP = Array.from({ length: pairs }, (_, i) => (i === 0 ? zero : products[pairs + i - 1]!));
    if (g.length % 2) {
      nextG.push(g[g.length - 1]!);
      nextP.push(prop[prop.length - 1]!);
    }
    g = nextG;
    prop = nextP;
  }
  return xor(mine[l - 1]!, g[0]!);
}

/**
 * How the carry is computed: `tree` in about 3 l AND gates and log2(l) + 1 rounds; `ripple` in
 * l - 1 gates and as many rounds. Gates are what an OT-based provider pays for, rounds what a
 * network pays for: ripple suits `ot` on a short link, tree suits a dealer.
 */
export type CarryCircuit = 'tree' | 'ripple';

/**
 * The same bit by a ripple of majorities, one AND gate per bit:
 * c_{i+1} = maj(a_i, b_i, c_i) = c_i ^ ((a_i ^ c_i) & (b_i ^ c_i)).
 */
async function msbOfSumRipple(p: MpcParty, mine: readonly Plane[]): Promise<Plane> {
  const l = mine.length;
  const zero = new Uint32Array(mine[0]!.length);
  // Shares of a_i: party 0 holds a_i, party 1 zero; of b_i: the other way round.
  const a = (i: number) => (p.id === 0 ? mine[i]! : zero);
  const b = (i: number) => (p.id === 1 ? mine[i]! : zero);
  let carry: Plane = zero;
  for (let i = 0; i < l - 1; i++) {
    const [t] = await and(p, [xor(a(i), carry)], [xor(b(i), carry)]);
    carry = xor(carry, t!);
  }
  return xor(mine[l - 1]!, carry);
}

/** Fewer gates where gates cost OTs (the `ot` provider); fewer rounds otherwise. */
export const defaultCircuit = (p: MpcParty): CarryCircuit => (p.provider.name === 'ot' ? 'ripple' : 'tree');

/** XOR shares of the sign bit of x (bit 63 of x_0 + x_1), by the provider's cheaper circuit. */
export const signBit = (p: MpcParty, x: ArithmeticShare, circuit: CarryCircuit = defaultCircuit(p)): Promise<Plane> =>
  msbOfSum(p, toPlanes(x.data), circuit);

/** XOR-shared bits (one per element) to arithmetic shares of 0 or 1, with daBits: one round. */
export async function bitsToArithmetic(p: MpcParty, bits: Plane, n: number): Promise<ArithmeticShare> {
  const r = await p.provider.daBits(n);
  const masked = xor(bits, r.bits);
  const theirs = asWords(await p.channel.exchange(bytesOf(masked)), masked.length);
  const c = xor(masked, theirs); // bit ^ r, public
  const out = new BigUint64Array(n);
  for (let i = 0; i < n; i++) {
    const ci = bitOf(c, i);
    // bit = c ^ r = c + r - 2 c r
    out[i] = ci ? (p.id === 0 ? 1n : 0n) - r.arith[i]! : r.arith[i]!;
  }
  return share([n], out);
}

/** [x < 0] as an arithmetic share of 0 or 1, for x read as a signed 64-bit integer. */
export async function isNegative(p: MpcParty, x: ArithmeticShare): Promise<ArithmeticShare> {
  const s = await bitsToArithmetic(p, await signBit(p, x), x.data.length);
  return share(x.shape, s.data);
}

/** [x < y], exact whenever x - y does not overflow (|x - y| < 2^63). */
export const lessThan = (p: MpcParty, x: ArithmeticShare, y: ArithmeticShare): Promise<ArithmeticShare> => isNegative(p, sub(x, y));

/** ReLU'(x) = [x >= 0] as a share of 0 or 1. */
export async function reluDerivative(p: MpcParty, x: ArithmeticShare): Promise<ArithmeticShare> {
  const neg = await isNegative(p, x);
  return addPublic(p, share(x.shape, ring.neg(neg.data)), new BigUint64Array(x.data.length).fill(1n));
}

/** ReLU(x) = x [x >= 0]: a comparison and one product. Works on fixed point as is (no truncation). */
export async function relu(p: MpcParty, x: ArithmeticShare): Promise<ArithmeticShare> {
  return mul(p, x, await reluDerivative(p, x));
}
