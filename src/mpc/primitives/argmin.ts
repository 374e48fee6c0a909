/**
 * Argmin over k candidates per row, as a shared one-hot vector and the shared minimum: a balanced
 * tournament (ceil(log2 k) levels; each level one batched comparison and one batched product for
 * the whole tensor), ties going to the lower index as in plaintext argmin. Exact whenever the
 * differences of compared values stay below 2^63 in magnitude. This is the k-means assignment
 * step (seed 000's SMDM) on shares.
 */
import { ParameterError } from '../../crypto/errors.js';
import type { MpcParty } from '../party.js';
import * as ring from '../ring.js';
import { mul, share, type ArithmeticShare } from './arithmetic.js';
import { lessThan } from './binary.js';

interface Group {
  /** The group's current minimum, one per row. */
  value: BigUint64Array;
  /** Its one-hot vector over the group's candidates, candidate-major: onehot[c] has one entry per row. */
  onehot: BigUint64Array[];
}

/** Picks the smaller of groups a (lower indices) and b for every row, in one comparison and one product. */
async function playLevel(p: MpcParty, pairs: Array<[Group, Group]>, n: number): Promise<Group[]> {
  const concat = (xs: BigUint64Array[]) => {
    const out = new BigUint64Array(xs.length * n);
    xs.forEach((x, i) => out.set(x, i * n));
    return out;
  };
  const bv = share([pairs.length * n], concat(pairs.map(([, b]) => b.value)));
  const av = share([pairs.length * n], concat(pairs.map(([a]) => a.value)));
  const bWins = (await lessThan(p, bv, av)).data; // strict: a tie keeps the lower index
  // One product for everything: b (bv - av) for the values, b * onehot_b and b * onehot_a for the vectors.
  const left: BigUint64Array[] = [];
  const right: BigUint64Array[] = [];
  pairs.forEach(([a, b], i) => {
    const bit = bWins.subarray(i * n, (i + 1) * n);
    left.push(bit, ...a.onehot.map(() => bit), ...b.onehot.map(() => bit));
    right.push(ring.sub(b.value, a.value), ...a.onehot, ...b.onehot);
  });
  const products = (await mul(p, share([left.length * n], concat(left)), share([right.length * n], concat(right)))).data;
  let at = 0;
  const next = () => products.subarray(at * n, ++at * n);
  return pairs.map(([a, b]) => {
    const value = ring.add(a.value, next());
    const aKeep = a.onehot.map((oh) => ring.sub(oh, next())); // onehot_a (1 - b)
    const bTake = b.onehot.map(() => next().slice()); // onehot_b b
    return { value, onehot: [...aKeep, ...bTake] };
  });
}

/**
 * For x of shape [n, k]: shares of the one-hot argmin (shape [n, k]) and of the minimum (shape [n]).
 */
export async function argmin(p: MpcParty, x: ArithmeticShare): Promise<{ onehot: ArithmeticShare; min: ArithmeticShare }> {
  if (x.shape.length !== 2 || x.shape[1]! < 1) throw new ParameterError(`argmin needs a [rows, candidates] tensor, got [${x.shape}]`);
  const [n, k] = x.shape as [number, number];
  const one = new BigUint64Array(n).fill(p.id === 0 ? 1n : 0n); // the public 1, shared as (1, 0)
  let groups: Group[] = Array.from({ length: k }, (_, c) => ({
    value: BigUint64Array.from({ length: n }, (_, r) => x.data[r * k + c]!),
    onehot: [one],
  }));
  while (groups.length > 1) {
    const pairs: Array<[Group, Group]> = [];
    for (let i = 0; i + 1 < groups.length; i += 2) pairs.push([groups[i]!, groups[i + 1]!]);
    const winners = await playLevel(p, pairs, n);
    groups = groups.length % 2 ? [...winners, groups[groups.length - 1]!] : winners;
  }
  const g = groups[0]!;
  const onehot = new BigUint64Array(n * k);
  for (let r = 0; r < n; r++) for (let c = 0; c < k; c++) onehot[r * k + c] = g.onehot[c]![r]!;
  return { onehot: share([n, k], onehot), min: share([n], g.value) };
}
