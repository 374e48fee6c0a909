/**
 * Shares in wide rings Z_2^l (l > 64) and their exact comparison: x = x_0 + x_1 mod 2^l, and
 * [x < y] as the most significant bit of x - y by a carry circuit, exact whenever
 * |x - y| < 2^(l-1) (for 130-bit unsigned operands, l = 132). With the `ot` provider, whose cost is
 * per AND gate, the ripple circuit (l - 1 gates, l - 1 rounds) is the default; otherwise the tree
 * (about 3 l gates, ceil(log2(l - 1)) + 1 rounds).
 */
import { ParameterError } from '../../crypto/errors.js';
import { asRing, bytesOf } from '../channel.js';
import type { MpcParty } from '../party.js';
import * as wide from '../wide-ring.js';
import type { Plane } from '../bits.js';
import { msbOfSum, bitsToArithmetic, defaultCircuit, type CarryCircuit } from './binary.js';
import type { ArithmeticShare } from './arithmetic.js';

export type WideShare = wide.WideArray;

/** Splits secret integers into two uniform shares of Z_2^l (for an owner or a test). */
export function splitWide(bits: number, secret: readonly bigint[]): [WideShare, WideShare] {
  const r = wide.random(bits, secret.length);
  return [wide.sub(wide.fromBigints(bits, secret), r), r];
}

/** Both parties learn x, read as signed integers (tests, and results meant to be public). */
export async function openWide(p: MpcParty, x: WideShare): Promise<bigint[]> {
  const mine = new BigUint64Array(x.limbs.length * x.length);
  x.limbs.forEach((limb, j) => mine.set(limb, j * x.length));
  const theirs = asRing(await p.channel.exchange(bytesOf(mine)), mine.length);
  const other: WideShare = { bits: x.bits, length: x.length, limbs: x.limbs.map((_, j) => theirs.slice(j * x.length, (j + 1) * x.length)) };
  return wide.toSigned(wide.add(x, other));
}

/** XOR shares of [x < y], one bit per element. */
export async function lessThanWideBits(p: MpcParty, x: WideShare, y: WideShare, circuit?: CarryCircuit): Promise<Plane> {
  if (x.bits !== y.bits) throw new ParameterError(`cannot compare Z_2^${x.bits} with Z_2^${y.bits}`);
  return msbOfSum(p, wide.planes(wide.sub(x, y)), circuit ?? defaultCircuit(p));
}

/** [x < y] as an arithmetic share of 0 or 1 in Z_2^64, ready for products with ordinary shares. */
export async function lessThanWide(p: MpcParty, x: WideShare, y: WideShare, circuit?: CarryCircuit): Promise<ArithmeticShare> {
  return bitsToArithmetic(p, await lessThanWideBits(p, x, y, circuit), x.length);
}
