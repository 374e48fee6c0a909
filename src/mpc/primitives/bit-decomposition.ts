/**
 * A2B and B2A for whole ring elements (ABY's conversions, Demmler, Schneider and Zohner, NDSS 2015):
 * - A2B: the 64 bit planes of x = x_0 + x_1 as XOR shares, by a ripple-carry adder over the
 *   parties' own bits: sum bit j = a_j ^ b_j ^ c_j, carry c_{j+1} = maj(a_j, b_j, c_j), one AND
 *   gate and one round per bit (63 of each), the fewest gates, which is what OT-made triples cost.
 * - B2A: XOR-shared planes back to an arithmetic share, sum of 2^j b_j, each bit through a daBit in
 *   one round for all bits at once.
 */
import { asWords, bytesOf } from '../channel.js';
import type { MpcParty } from '../party.js';
import { bitOf, concat, split, toPlanes, xor, type Plane } from '../bits.js';
import { share, type ArithmeticShare } from './arithmetic.js';
import { and } from './binary.js';

/** XOR shares of every bit of x (plane j holds bit j of each element). */
export async function arithmeticToBinary(p: MpcParty, x: ArithmeticShare): Promise<Plane[]> {
  const mine = toPlanes(x.data);
  const zero = new Uint32Array(mine[0]!.length);
  const a = (j: number) => (p.id === 0 ? mine[j]! : zero);
  const b = (j: number) => (p.id === 1 ? mine[j]! : zero);
  const out: Plane[] = [];
  let carry: Plane = zero;
  for (let j = 0; j < 64; j++) {
    out.push(xor(mine[j]!, carry)); // a_j ^ b_j is each party's own bit, XOR-shared
    if (j === 63) break;
    const [t] = await and(p, [xor(a(j), carry)], [xor(b(j), carry)]);
    carry = xor(carry, t!);
  }
  return out;
}

/** XOR-shared bit planes (up to 64) of n elements to an arithmetic share of sum 2^j b_j. */
export async function binaryToArithmetic(p: MpcParty, planes: readonly Plane[], n: number): Promise<ArithmeticShare> {
  const r = await Promise.all(planes.map(() => p.provider.daBits(n)));
  const masked = concat(planes.map((plane, j) => xor(plane, r[j]!.bits)));
  const opened = split(xor(masked, asWords(await p.channel.exchange(bytesOf(masked)), masked.length)), planes.length);
  const out = new BigUint64Array(n);
  planes.forEach((_, j) => {
    const weight = 1n << BigInt(j);
    for (let i = 0; i < n; i++) {
      // b = c ^ r = c + r - 2 c r, with c public
      const c = bitOf(opened[j]!, i);
      const bit = c ? (p.id === 0 ? 1n : 0n) - r[j]!.arith[i]! : r[j]!.arith[i]!;
      out[i]! += weight * bit;
    }
  });
  return share([n], out);
}
