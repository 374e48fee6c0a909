/** Small BigInt helpers: sizes, byte conversion and uniform randomness from node:crypto. */
import { randomBytes } from 'node:crypto';
import { ParameterError } from './errors.js';

export function bitLength(x: bigint): number {
  if (x < 0n) x = -x;
  return x === 0n ? 0 : x.toString(2).length;
}

export function byteLength(x: bigint): number {
  return Math.ceil(bitLength(x) / 8);
}

/** Big-endian, left-padded to exactly `length` bytes. */
export function toBytes(x: bigint, length: number): Buffer {
  if (x < 0n) throw new ParameterError('cannot serialise a negative integer');
  const hex = x.toString(16);
  if (hex.length > length * 2) throw new ParameterError(`integer does not fit in ${length} bytes`);
  return Buffer.from(hex.padStart(length * 2, '0'), 'hex');
}

export function fromBytes(bytes: Uint8Array): bigint {
  if (bytes.length === 0) return 0n;
  return BigInt('0x' + Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex'));
}

/** Non-negative remainder. */
export function mod(a: bigint, m: bigint): bigint {
  const r = a % m;
  return r < 0n ? r + m : r;
}

/** Uniform in [0, bound) by rejection sampling (no modulo bias). */
export function randomBelow(bound: bigint): bigint {
  if (bound <= 0n) throw new ParameterError('bound must be positive');
  const bits = bitLength(bound - 1n);
  if (bits === 0) return 0n;
  const bytes = Math.ceil(bits / 8);
  const excess = BigInt(bytes * 8 - bits);
  for (;;) {
    const x = fromBytes(randomBytes(bytes)) >> excess;
    if (x < bound) return x;
  }
}

/** Uniform in [low, high). */
export function randomBetween(low: bigint, high: bigint): bigint {
  return low + randomBelow(high - low);
}

export function gcd(a: bigint, b: bigint): bigint {
  a = a < 0n ? -a : a;
  b = b < 0n ? -b : b;
  while (b) [a, b] = [b, a % b];
  return a;
}
