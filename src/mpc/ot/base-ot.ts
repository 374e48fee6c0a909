/**
 * Base oblivious transfers: the "simplest OT" of Chou and Orlandi (LATINCRYPT 2015) over
 * ristretto255 (@noble/curves), semi-honest. The sender draws a and sends A = aG; for choice c the
 * receiver draws b and sends B = bG + cA; the sender's keys are H(aB) and H(a(B - A)), the
 * receiver's is H(bA) = the one it chose. Under CDH in the random-oracle model the sender learns
 * nothing of c and the receiver nothing of the other key.
 *
 * Both servers run one batch of 128 in each direction at once (each is the OT sender of one
 * extension and the receiver of the other), in two rounds. The keys seed IKNP's PRGs.
 */
import { createHash, randomBytes } from 'node:crypto';
import { ristretto255 } from '@noble/curves/ed25519.js';
import { MpcChannelError, type PartyChannel } from '../channel.js';

const Point = ristretto255.Point;
type RPoint = InstanceType<typeof Point>;
const ORDER = Point.Fn.ORDER;
const POINT_BYTES = 32;
export const BASE_OTS = 128;
export const BASE_KEY_BYTES = 16;

function randomScalar(): bigint {
  // 512 bits reduced modulo the 253-bit group order: statistically uniform, never zero in practice.
  const s = BigInt('0x' + randomBytes(64).toString('hex')) % ORDER;
  return s === 0n ? 1n : s;
}

function point(bytes: Uint8Array, what: string): RPoint {
  let p: RPoint;
  try {
    p = Point.fromBytes(bytes);
  } catch {
    throw new MpcChannelError(`the other party's ${what} is not a ristretto255 point`);
  }
  if (p.equals(Point.ZERO)) throw new MpcChannelError(`the other party's ${what} is the identity`);
  return p;
}

function key(index: number, a: RPoint, b: RPoint, shared: RPoint): Buffer {
  const h = createHash('sha256').update('ciphermine base OT v1');
  h.update(Buffer.from(Uint32Array.of(index).buffer))
    .update(a.toBytes())
    .update(b.toBytes())
    .update(shared.toBytes());
  return h.digest().subarray(0, BASE_KEY_BYTES);
}

export interface BaseOtResult {
  /** As sender: both keys of each of the 128 OTs. */
  sent: Array<[Buffer, Buffer]>;
  /** As receiver: the chosen key of each OT. */
  received: Buffer[];
}

/**
 * One batch of 128 base OTs each way: this party sends 128 key pairs and receives 128 keys by
 * `choices` (one bit per OT, bit i of byte i >> 3, LSB first).
 */
export async function baseOts(channel: PartyChannel, choices: Uint8Array): Promise<BaseOtResult> {
  const a = randomScalar();
  const A = Point.BASE.multiply(a);
  const theirA = point(asPoints(await channel.exchange(A.toBytes()), 1)[0]!, 'base-OT sender key');
  const bs = Array.from({ length: BASE_OTS }, randomScalar);
  const Bs = bs.map((b, i) => {
    const bG = Point.BASE.multiply(b);
    return (choices[i >>> 3]! >>> (i & 7)) & 1 ? bG.add(theirA) : bG;
  });
  const mine = new Uint8Array(BASE_OTS * POINT_BYTES);
  Bs.forEach((B, i) => mine.set(B.toBytes(), i * POINT_BYTES));
  const theirBs = asPoints(await channel.exchange(mine), BASE_OTS).map((b, i) => point(b, `base-OT choice ${i}`));
  const sent = theirBs.map((B, i): [Buffer, Buffer] => [key(i, A, B, B.multiply(a)), key(i, A, B, B.subtract(A).multiply(a))]);
  const received = bs.map((b, i) => key(i, theirA, Bs[i]!, theirA.multiply(b)));
  return { sent, received };
}

function asPoints(message: Uint8Array, n: number): Uint8Array[] {
  if (message.length !== n * POINT_BYTES) throw new MpcChannelError(`expected ${n} points (${n * POINT_BYTES} bytes), got ${message.length} bytes`);
  return Array.from({ length: n }, (_, i) => message.subarray(i * POINT_BYTES, (i + 1) * POINT_BYTES));
}
