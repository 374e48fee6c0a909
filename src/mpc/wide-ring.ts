/**
 * Integer rings wider than a machine word, Z_2^l for any l: where a caller compares values larger
 * than 63 bits (k-means distance differences are about 130 bits). Elements are stored as 64-bit
 * limbs, limb i of every element in one BigUint64Array, so bit planes come out limb by limb.
 */
import { randomBytes } from 'node:crypto';
import { ParameterError } from '../crypto/errors.js';
import { toPlanes, type Plane } from './bits.js';

export interface WideArray {
  /** l: elements live in Z_2^l. */
  readonly bits: number;
  readonly length: number;
  /** ceil(l / 64) limbs, least significant first; the top limb holds only l mod 64 bits. */
  readonly limbs: readonly BigUint64Array[];
}

const limbCount = (bits: number) => Math.ceil(bits / 64);
const topMask = (bits: number) => (bits % 64 === 0 ? (1n << 64n) - 1n : (1n << BigInt(bits % 64)) - 1n);

function check(bits: number): void {
  if (!Number.isSafeInteger(bits) || bits < 2 || bits > 1024) throw new ParameterError(`a ring width is 2..1024 bits, got ${bits}`);
}

function wide(bits: number, limbs: BigUint64Array[]): WideArray {
  const top = limbs[limbs.length - 1]!;
  const mask = topMask(bits);
  for (let i = 0; i < top.length; i++) top[i]! &= mask;
  return { bits, length: top.length, limbs };
}

/** Elements from integers, reduced modulo 2^l (negative numbers wrap, two's complement). */
export function fromBigints(bits: number, xs: readonly bigint[]): WideArray {
  check(bits);
  const limbs = Array.from({ length: limbCount(bits) }, () => new BigUint64Array(xs.length));
  xs.forEach((x, i) => {
    let v = BigInt.asUintN(bits, x);
    for (const limb of limbs) {
      limb[i] = v;
      v >>= 64n;
    }
  });
  return wide(bits, limbs);
}

/** The elements as integers in [0, 2^l). */
export function toBigints(a: WideArray): bigint[] {
  return Array.from({ length: a.length }, (_, i) => a.limbs.reduceRight((v, limb) => (v << 64n) | limb[i]!, 0n));
}

/** The elements read as signed integers in [-2^(l-1), 2^(l-1)). */
export const toSigned = (a: WideArray): bigint[] => toBigints(a).map((x) => BigInt.asIntN(a.bits, x));

export function random(bits: number, n: number): WideArray {
  check(bits);
  return wide(
    bits,
    Array.from({ length: limbCount(bits) }, () => new BigUint64Array(new Uint8Array(randomBytes(8 * n)).buffer, 0, n)),
  );
}

function sameRing(a: WideArray, b: WideArray): void {
  if (a.bits !== b.bits || a.length !== b.length)
    throw new ParameterError(`Z_2^${a.bits} x ${a.length} and Z_2^${b.bits} x ${b.length} do not match`);
}

/** a + sign * b, limb by limb with carries. */
function addSigned(a: WideArray, b: WideArray, sign: 1n | -1n): WideArray {
  sameRing(a, b);
  const limbs = a.limbs.map(() => new BigUint64Array(a.length));
  for (let i = 0; i < a.length; i++) {
    let carry = 0n;
    for (let j = 0; j < limbs.length; j++) {
      const s = a.limbs[j]![i]! + sign * b.limbs[j]![i]! + carry;
      limbs[j]![i] = s; // assignment reduces modulo 2^64
      carry = s >> 64n; // -1, 0 or 1 (arithmetic shift of a negative sum borrows)
    }
  }
  return wide(a.bits, limbs);
}

export const add = (a: WideArray, b: WideArray): WideArray => addSigned(a, b, 1n);
export const sub = (a: WideArray, b: WideArray): WideArray => addSigned(a, b, -1n);

/** Elements from 64-bit limbs laid out limb-major (limb j of element i at j * n + i), top limb masked. */
export function fromLimbWords(bits: number, n: number, words: BigUint64Array): WideArray {
  check(bits);
  if (words.length !== limbCount(bits) * n) throw new ParameterError(`${words.length} limbs cannot hold ${n} elements of Z_2^${bits}`);
  return wide(
    bits,
    Array.from({ length: limbCount(bits) }, (_, j) => words.slice(j * n, (j + 1) * n)),
  );
}

/** The limbs limb-major, the inverse of fromLimbWords (for the wire). */
export function limbWords(a: WideArray): BigUint64Array {
  const out = new BigUint64Array(a.limbs.length * a.length);
  a.limbs.forEach((limb, j) => out.set(limb, j * a.length));
  return out;
}

/** The 64-bit limbs an element of Z_2^l needs. */
export const limbsOf = limbCount;

/** A (m x k) times B (k x n), row-major, in Z_2^l. */
export function matmul(a: WideArray, b: WideArray, m: number, k: number, n: number): WideArray {
  if (a.bits !== b.bits || a.length !== m * k || b.length !== k * n) throw new ParameterError('matrix shapes or rings do not match');
  const x = toBigints(a);
  const y = toBigints(b);
  const out: bigint[] = new Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let acc = 0n;
      for (let l = 0; l < k; l++) acc += x[i * k + l]! * y[l * n + j]!;
      out[i * n + j] = acc;
    }
  }
  return fromBigints(a.bits, out);
}

/** The l bit planes of the elements (plane j holds bit j of every element). */
export function planes(a: WideArray): Plane[] {
  return a.limbs.flatMap((limb) => toPlanes(limb)).slice(0, a.bits);
}
