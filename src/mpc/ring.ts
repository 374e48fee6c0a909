/**
 * The ring Z_2^64 that arithmetic shares live in, on BigUint64Array: assignment into the array
 * reduces modulo 2^64, so every operation wraps exactly as machine arithmetic does. Fixed-point
 * reals are signed two's complement integers scaled by 2^f (f = 16 by default).
 */
import { randomBytes } from 'node:crypto';
import { ParameterError } from '../crypto/errors.js';
import { loadNativeGmp } from '../crypto/backend-gmp.js';

/**
 * The native kernel (native/gmp_addon.c) when built and not switched off: CIPHERMINE_BACKEND=js
 * forces the TypeScript code, which gives the same bits.
 */
const native = process.env.CIPHERMINE_BACKEND === 'js' ? undefined : loadNativeGmp();
export const nativeRingKernels = typeof native?.ringMatmul === 'function';

export type RingArray = BigUint64Array;

export const RING_BITS = 64;
export const DEFAULT_FRACTION_BITS = 16;

export function zeros(n: number): RingArray {
  return new BigUint64Array(n);
}

function sameLength(a: RingArray, b: RingArray): void {
  if (a.length !== b.length) throw new ParameterError(`ring arrays of ${a.length} and ${b.length} elements`);
}

/** n uniform elements from the operating system's randomness. */
export function random(n: number): RingArray {
  return new BigUint64Array(new Uint8Array(randomBytes(8 * n)).buffer, 0, n);
}

/** Below this many elements the call into the addon costs more than it saves. */
const NATIVE_ELEMENTWISE_MIN = 4096;
const nativeElementwise = typeof native?.ringElementwise === 'function';

/** a op b elementwise (0 add, 1 subtract, 2 multiply) modulo 2^64: the native kernel for large arrays. */
function elementwise(op: 0 | 1 | 2, a: RingArray, b: RingArray): RingArray {
  sameLength(a, b);
  const out = new BigUint64Array(a.length);
  if (nativeElementwise && a.length >= NATIVE_ELEMENTWISE_MIN) native!.ringElementwise!(op, a, b, out);
  else elementwiseJs(op, a, b, out);
  return out;
}

/** The TypeScript loops, bit for bit what the native kernel computes. */
export function elementwiseJs(op: 0 | 1 | 2, a: RingArray, b: RingArray, out: RingArray): void {
  if (op === 0) for (let i = 0; i < a.length; i++) out[i] = a[i]! + b[i]!;
  else if (op === 1) for (let i = 0; i < a.length; i++) out[i] = a[i]! - b[i]!;
  else for (let i = 0; i < a.length; i++) out[i] = a[i]! * b[i]!;
}

export const add = (a: RingArray, b: RingArray): RingArray => elementwise(0, a, b);
export const sub = (a: RingArray, b: RingArray): RingArray => elementwise(1, a, b);

const nativeUnary = typeof native?.ringUnary === 'function';

/**
 * A unary map of the native kernel for large arrays (0 scale by c, 1 signed shift by c, 2 the
 * shift between two negations), else `js`: a BigInt per element allocates, so the truncations of
 * a large training would otherwise spend seconds in the garbage collector.
 */
function unary(op: 0 | 1 | 2, a: RingArray, c: bigint, js: (a: RingArray, out: RingArray) => void): RingArray {
  const out = new BigUint64Array(a.length);
  if (nativeUnary && a.length >= NATIVE_ELEMENTWISE_MIN) native!.ringUnary!(op, a, c, out);
  else js(a, out);
  return out;
}

const MINUS_ONE = (1n << 64n) - 1n;

export const neg = (a: RingArray): RingArray =>
  unary(0, a, MINUS_ONE, (x, out) => {
    for (let i = 0; i < x.length; i++) out[i] = -x[i]!;
  });

/** Elementwise product modulo 2^64. */
export const mul = (a: RingArray, b: RingArray): RingArray => elementwise(2, a, b);

export const scale = (a: RingArray, c: bigint): RingArray =>
  unary(0, a, BigInt.asUintN(64, c), (x, out) => {
    for (let i = 0; i < x.length; i++) out[i] = x[i]! * c;
  });

/** (m x k) times (k x n), row-major, modulo 2^64: the native kernel when there is one. */
export function matmul(a: RingArray, b: RingArray, m: number, k: number, n: number): RingArray {
  if (a.length !== m * k || b.length !== k * n) throw new ParameterError(`matmul of ${a.length} and ${b.length} elements as ${m}x${k} by ${k}x${n}`);
  if (!nativeRingKernels) return matmulJs(a, b, m, k, n);
  const out = new BigUint64Array(m * n);
  native!.ringMatmul!(a, b, out, m, k, n);
  return out;
}

/** The TypeScript matrix product, bit for bit what the native kernel computes. */
export function matmulJs(a: RingArray, b: RingArray, m: number, k: number, n: number): RingArray {
  const out = new BigUint64Array(m * n);
  const row = new BigUint64Array(n);
  for (let i = 0; i < m; i++) {
    row.fill(0n);
    for (let t = 0; t < k; t++) {
      const x = a[i * k + t]!;
      if (x === 0n) continue;
      const off = t * n;
      for (let j = 0; j < n; j++) row[j] = row[j]! + x * b[off + j]!;
    }
    out.set(row, i * n);
  }
  return out;
}

/** The signed value of a ring element (two's complement). */
export function toSigned(x: bigint): bigint {
  return BigInt.asIntN(RING_BITS, x);
}

/** Arithmetic shift right by f of each element read as signed. */
export function shiftRightSigned(a: RingArray, f: number): RingArray {
  checkShift(f);
  const s = BigInt(f);
  return unary(1, a, s, (x, out) => {
    for (let i = 0; i < x.length; i++) out[i] = BigInt.asIntN(RING_BITS, x[i]!) >> s;
  });
}

/** -((-a) >> f) elementwise: party 1's half of the local truncation, in one pass. */
export function shiftRightSignedNegated(a: RingArray, f: number): RingArray {
  checkShift(f);
  const s = BigInt(f);
  return unary(2, a, s, (x, out) => {
    for (let i = 0; i < x.length; i++) out[i] = -(BigInt.asIntN(RING_BITS, -x[i]!) >> s);
  });
}

function checkShift(f: number): void {
  if (!Number.isInteger(f) || f < 0 || f > 63) throw new ParameterError(`a shift is 0 to 63 bits, got ${f}`);
}

/** Reals to fixed point: round(x * 2^f), refused when not finite or beyond 2^62 in magnitude. */
export function encodeFixed(xs: readonly number[], fractionBits = DEFAULT_FRACTION_BITS): RingArray {
  const out = new BigUint64Array(xs.length);
  const limit = 2 ** 62;
  for (let i = 0; i < xs.length; i++) {
    const v = Math.round(xs[i]! * 2 ** fractionBits);
    if (!Number.isFinite(v) || Math.abs(v) >= limit)
      throw new ParameterError(`value ${xs[i]} does not fit the ring with ${fractionBits} fraction bits`);
    out[i] = BigInt(v);
  }
  return out;
}

export function decodeFixed(a: RingArray, fractionBits = DEFAULT_FRACTION_BITS): number[] {
  return Array.from(a, (x) => Number(toSigned(x)) / 2 ** fractionBits);
}

export function fromBigints(xs: readonly bigint[]): RingArray {
  const out = new BigUint64Array(xs.length);
  for (let i = 0; i < xs.length; i++) out[i] = xs[i]!;
  return out;
}
