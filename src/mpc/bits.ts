/**
 * Bit-sliced boolean tensors: bit j of n elements is one "plane" of ceil(n / 32) words, so one
 * 32-bit operation acts on 32 elements. A 64-bit ring array becomes 64 planes.
 */
export type Plane = Uint32Array;

export const wordsFor = (n: number): number => Math.ceil(n / 32);

/** The 64 bit planes of ring elements (plane j holds bit j of every element). */
export function toPlanes(a: BigUint64Array): Plane[] {
  const n = a.length;
  const words = wordsFor(n);
  const planes = Array.from({ length: 64 }, () => new Uint32Array(words));
  const lo = new Uint32Array(a.buffer, a.byteOffset, 2 * n); // little-endian: [lo0, hi0, lo1, hi1, ...]
  for (let i = 0; i < n; i++) {
    const w = i >>> 5;
    const bit = 1 << (i & 31);
    for (let half = 0; half < 2; half++) {
      let v = lo[2 * i + half]!;
      for (let j = half * 32; v !== 0; j++, v >>>= 1) if (v & 1) planes[j]![w]! |= bit;
    }
  }
  return planes;
}

/** Bit i of a plane, as 0 or 1. */
export const bitOf = (plane: Plane, i: number): number => (plane[i >>> 5]! >>> (i & 31)) & 1;

export function xor(a: Plane, b: Plane): Plane {
  const out = new Uint32Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i]! ^ b[i]!;
  return out;
}

/** Concatenates planes into one word array (one message for a whole layer of gates). */
export function concat(planes: readonly Plane[]): Uint32Array {
  const out = new Uint32Array(planes.reduce((a, p) => a + p.length, 0));
  let at = 0;
  for (const p of planes) out.set(p, (at += p.length) - p.length);
  return out;
}

export function split(words: Uint32Array, count: number): Plane[] {
  const size = words.length / count;
  return Array.from({ length: count }, (_, i) => words.subarray(i * size, (i + 1) * size));
}
