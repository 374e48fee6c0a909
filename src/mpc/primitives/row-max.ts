/**
 * The largest element of each row, on shares, in few rounds: every pair of a row's candidates is
 * compared at once (one batch of comparisons), each candidate's "beats every other" bit is an AND
 * tree over its c - 1 outcomes, and the one-hot winner selects the value. About 13 rounds for any
 * c <= 16 with a dealer, against 9 per level (36 for 10 classes) for the argmin tournament, for
 * c (c - 1) / 2 comparisons per row instead of c - 1: worth it where rounds cost more than gates
 * (a dealer); with `ot`, where every AND gate costs OTs, the tournament stays. Ties go to the lower
 * index, as in the tournament; the value is exact either way.
 */
import type { MpcParty } from '../party.js';
import * as ring from '../ring.js';
import { bitOf, type Plane } from '../bits.js';
import { mul, share, type ArithmeticShare } from './arithmetic.js';
import { and, bitsToArithmetic, signBit } from './binary.js';
import { argmin } from './argmin.js';

/** Rows of at most this many candidates take the all-pairs circuit. */
export const ALL_PAIRS_MAX_CANDIDATES = 16;

/** Bits [start, start + count) of a plane, as a plane of their own. */
function slice(plane: Plane, start: number, count: number): Plane {
  const out = new Uint32Array(Math.ceil(count / 32));
  for (let i = 0; i < count; i++) if (bitOf(plane, start + i)) out[i >>> 5]! |= 1 << (i & 31);
  return out;
}

/** Planes of `count` bits each, one after the other in one plane. */
function join(planes: readonly Plane[], count: number): Plane {
  const out = new Uint32Array(Math.ceil((planes.length * count) / 32));
  planes.forEach((pl, k) => {
    for (let i = 0; i < count; i++) if (bitOf(pl, i)) out[(k * count + i) >>> 5]! |= 1 << ((k * count + i) & 31);
  });
  return out;
}

/** XOR-shared NOT: party 0 flips every bit. */
const not = (p: MpcParty, x: Plane): Plane => (p.id === 0 ? x.map((w) => ~w >>> 0) : x);

/** AND of each list's planes, all lists together: ceil(log2(longest)) rounds. */
async function andAll(p: MpcParty, lists: Plane[][]): Promise<Plane[]> {
  while (lists.some((l) => l.length > 1)) {
    const xs: Plane[] = [];
    const ys: Plane[] = [];
    for (const l of lists) for (let i = 0; i + 1 < l.length; i += 2) (xs.push(l[i]!), ys.push(l[i + 1]!));
    const products = await and(p, xs, ys);
    let at = 0;
    lists = lists.map((l) => {
      const next = Array.from({ length: Math.floor(l.length / 2) }, () => products[at++]!);
      return l.length % 2 ? [...next, l[l.length - 1]!] : next;
    });
  }
  return lists.map((l) => l[0]!);
}

/** For x of shape [n, c]: shares of each row's maximum, shape [n, 1]. */
export async function rowMax(p: MpcParty, x: ArithmeticShare): Promise<ArithmeticShare> {
  const [n, c] = x.shape as [number, number];
  if (c === 1) return share([n, 1], x.data.slice());
  if (p.provider.name === 'ot' || c > ALL_PAIRS_MAX_CANDIDATES) {
    const { min } = await argmin(p, share(x.shape, ring.neg(x.data)));
    return share([n, 1], ring.neg(min.data));
  }
  const pairs: Array<[number, number]> = [];
  for (let i = 0; i < c; i++) for (let j = i + 1; j < c; j++) pairs.push([i, j]);
  // s_ij = [x_i < x_j] for i < j, pair-major: n bits per pair
  const d = new BigUint64Array(pairs.length * n);
  pairs.forEach(([i, j], q) => {
    for (let r = 0; r < n; r++) d[q * n + r] = x.data[r * c + i]! - x.data[r * c + j]!;
  });
  const signs = await signBit(p, share([d.length], d));
  const s = pairs.map((_, q) => slice(signs, q * n, n));
  // k wins if x_k >= x_j for every later j (NOT s_kj) and x_k > x_i for every earlier i (s_ik)
  const lists = Array.from({ length: c }, () => [] as Plane[]);
  pairs.forEach(([i, j], q) => {
    lists[i]!.push(not(p, s[q]!));
    lists[j]!.push(s[q]!);
  });
  const onehot = await bitsToArithmetic(p, join(await andAll(p, lists), n), c * n); // candidate-major
  const values = new BigUint64Array(c * n);
  for (let k = 0; k < c; k++) for (let r = 0; r < n; r++) values[k * n + r] = x.data[r * c + k]!;
  const picked = (await mul(p, onehot, share([c * n], values))).data;
  const out = new BigUint64Array(n);
  for (let k = 0; k < c; k++) for (let r = 0; r < n; r++) out[r] = out[r]! + picked[k * n + r]!;
  return share([n, 1], out);
}
