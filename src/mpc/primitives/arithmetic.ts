/**
 * Protocols on additive shares over Z_2^64: x = x_0 + x_1 mod 2^64, party i holding x_i. Linear
 * operations are local; a product costs one Beaver triple and one round (Beaver 1991), a matrix
 * product one matrix triple and one round (SecureML, Mohassel and Zhang 2017, section 4.1); every
 * call handles a whole tensor in one message.
 */
import { ParameterError } from '../../crypto/errors.js';
import { asRing, bytesOf } from '../channel.js';
import type { MpcParty } from '../party.js';
import * as ring from '../ring.js';
import { Prg } from '../prg.js';
import type { RingArray } from '../ring.js';

/** This party's share of a tensor, with its shape (row-major). */
export interface ArithmeticShare {
  readonly shape: readonly number[];
  readonly data: RingArray;
}

export function sizeOf(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

export function share(shape: readonly number[], data: RingArray): ArithmeticShare {
  if (data.length !== sizeOf(shape)) throw new ParameterError(`${data.length} elements do not make a tensor of shape [${shape}]`);
  return { shape: [...shape], data };
}

/**
 * Splits a secret tensor into two shares (x - r, r) with r uniform: for a data owner or a test. Each
 * share alone is uniform in Z_2^64, whatever x is.
 */
export function splitSecret(shape: readonly number[], secret: RingArray): [ArithmeticShare, ArithmeticShare] {
  const r = Prg.fresh().prg.ring(secret.length);
  return [share(shape, ring.sub(secret, r)), share(shape, r)];
}

function sameShape(x: ArithmeticShare, y: ArithmeticShare): void {
  if (x.shape.join('x') !== y.shape.join('x')) throw new ParameterError(`shapes [${x.shape}] and [${y.shape}] differ`);
}

export const add = (x: ArithmeticShare, y: ArithmeticShare): ArithmeticShare => (sameShape(x, y), share(x.shape, ring.add(x.data, y.data)));
export const sub = (x: ArithmeticShare, y: ArithmeticShare): ArithmeticShare => (sameShape(x, y), share(x.shape, ring.sub(x.data, y.data)));

/** x + c for a public c: only party 0 adds it. */
export function addPublic(p: MpcParty, x: ArithmeticShare, c: RingArray): ArithmeticShare {
  return share(x.shape, p.id === 0 ? ring.add(x.data, c) : x.data.slice());
}

/** c * x for a public integer c (no truncation). */
export const mulPublic = (x: ArithmeticShare, c: bigint): ArithmeticShare => share(x.shape, ring.scale(x.data, c));

/** Both parties learn x. */
export async function open(p: MpcParty, x: ArithmeticShare): Promise<RingArray> {
  const theirs = asRing(await p.channel.exchange(bytesOf(x.data)), x.data.length);
  return ring.add(x.data, theirs);
}

/** Only party `to` learns x; the other learns nothing (it sends, and receives an empty message). */
export async function openTo(p: MpcParty, x: ArithmeticShare, to: 0 | 1): Promise<RingArray | undefined> {
  const reply = await p.channel.exchange(p.id === to ? new Uint8Array(0) : bytesOf(x.data));
  return p.id === to ? ring.add(x.data, asRing(reply, x.data.length)) : undefined;
}

/** Opens several tensors in one round. */
async function openMany(p: MpcParty, xs: readonly RingArray[]): Promise<RingArray[]> {
  const total = xs.reduce((a, x) => a + x.length, 0);
  const mine = new BigUint64Array(total);
  let at = 0;
  for (const x of xs) mine.set(x, (at += x.length) - x.length);
  const both = ring.add(mine, asRing(await p.channel.exchange(bytesOf(mine)), total));
  at = 0;
  return xs.map((x) => both.subarray((at += x.length) - x.length, at));
}

/** Elementwise product of two shared tensors (integers: no truncation). One triple, one round. */
export async function mul(p: MpcParty, x: ArithmeticShare, y: ArithmeticShare): Promise<ArithmeticShare> {
  sameShape(x, y);
  const t = await p.provider.triple(x.data.length);
  const [d, e] = await openMany(p, [ring.sub(x.data, t.a), ring.sub(y.data, t.b)]);
  // z = c + d b + e a (+ d e at party 0) = (d + a)(e + b) = x y
  let z = ring.add(t.c, ring.add(ring.mul(d!, t.b), ring.mul(e!, t.a)));
  if (p.id === 0) z = ring.add(z, ring.mul(d!, e!));
  return share(x.shape, z);
}

/** (m x k) times (k x n) of shared matrices. One matrix triple, one round. */
export async function matmul(p: MpcParty, x: ArithmeticShare, y: ArithmeticShare): Promise<ArithmeticShare> {
  const [m, k] = x.shape as [number, number];
  const [k2, n] = y.shape as [number, number];
  if (x.shape.length !== 2 || y.shape.length !== 2 || k !== k2) throw new ParameterError(`cannot multiply [${x.shape}] by [${y.shape}]`);
  const t = await p.provider.matmulTriple(m, k, n);
  const [d, e] = await openMany(p, [ring.sub(x.data, t.a), ring.sub(y.data, t.b)]);
  // Z = C + D B + A E + D E; party 0 folds its D E into D (B_0 + E): two products per party.
  const right = p.id === 0 ? ring.add(t.b, e!) : t.b;
  return share([m, n], ring.add(t.c, ring.add(ring.matmul(d!, right, m, k, n), ring.matmul(t.a, e!, m, k, n))));
}

/**
 * Divides by 2^f without interaction (SecureML's local truncation, Theorem 1): party 0 shifts its
 * share, party 1 negates, shifts and negates back. For |x| < 2^lx the result is floor(x / 2^f) or
 * one more (an error of at most one unit in the last place), except with probability at most
 * 2^(lx + 1 - 64) per element, where it is wrong by about 2^(64 - f).
 */
export function truncate(p: MpcParty, x: ArithmeticShare, f = p.fractionBits): ArithmeticShare {
  return share(x.shape, p.id === 0 ? ring.shiftRightSigned(x.data, f) : ring.shiftRightSignedNegated(x.data, f));
}

/** Fixed-point product: the integer product, then truncation by the fraction bits. */
export async function mulFixed(p: MpcParty, x: ArithmeticShare, y: ArithmeticShare): Promise<ArithmeticShare> {
  return truncate(p, await mul(p, x, y));
}

export async function matmulFixed(p: MpcParty, x: ArithmeticShare, y: ArithmeticShare): Promise<ArithmeticShare> {
  return truncate(p, await matmul(p, x, y));
}
