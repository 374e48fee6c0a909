/**
 * The compute server's (CCS, Alice) side of every protocol: a transport to the key server and an
 * optional worker pool for batch encryption. Randomness comes only from `randomBelow` (node:crypto),
 * kept apart from the protocol logic.
 */
import type { BcpPublicKey } from '../crypto/bcp-keys.js';
import { Ciphertext } from '../crypto/ciphertext.js';
import { keyWire, type Pair } from '../crypto/kernels.js';
import { runProtocolKernel } from './kernels.js';
import type { WorkerPool } from '../crypto/pool.js';
import { encodeMessage, decodeMessage, ProtocolError } from './messages.js';
import type { Transport } from './transport.js';
import { z } from 'zod';

export interface ComputeSideContext {
  transport: Transport;
  pool?: WorkerPool;
  /**
   * Where the secret-sharing engine's correlated randomness comes from: a dealer process (this
   * server's endpoint and key file, its certificate pinned when https), or, when absent, OT
   * extension between the two servers (no third party).
   */
  dealer?: DealerEndpoint;
}

/** A server's link to the dealer (`ciphermine dealer start`). */
export interface DealerEndpoint {
  url: string;
  key: Uint8Array;
  fingerprint?: string;
}

/** Fresh blinding encryptions (kernel blindEncrypt: BCP times a fresh h_N^rho'). */
export async function encryptAll(ctx: ComputeSideContext, pk: BcpPublicKey, ms: readonly bigint[]): Promise<Ciphertext[]> {
  const pairs = await kernel<Pair>(ctx, 'blindEncrypt', keyWire(pk), ms);
  return pairs.map(([A, B]) => new Ciphertext(pk, A, B));
}

/** Runs a batch kernel on the pool when there is one, else here. */
export async function kernel<O>(ctx: ComputeSideContext, name: string, shared: unknown, items: readonly unknown[]): Promise<O[]> {
  return ctx.pool ? ctx.pool.map<O>(name, shared, items) : (runProtocolKernel(name, shared, items as unknown[]) as O[]);
}

export function flatten(cs: readonly Ciphertext[]): bigint[] {
  const out: bigint[] = [];
  for (const c of cs) out.push(c.A, c.B);
  return out;
}

const replySchema = z.object({ count: z.number().int().nonnegative() });

/** One round trip: ciphertexts out, ciphertexts under `replyKey` back, count checked. */
export async function roundTrip(
  ctx: ComputeSideContext,
  method: string,
  header: Record<string, unknown>,
  cs: readonly Ciphertext[],
  replyKey: BcpPublicKey,
  expected: number,
): Promise<Ciphertext[]> {
  const elementBytes = cs[0]?.publicKey.params.elementBytes ?? replyKey.params.elementBytes;
  // count is the number of items answered: half the ciphertexts sent for SM, more than sent for packs
  const body = encodeMessage({ count: expected, ...header }, flatten(cs), elementBytes);
  const reply = await ctx.transport.call(method, body);
  const { header: h, elements } = decodeMessage(reply, replySchema, () => ({
    elementBytes: replyKey.params.elementBytes,
    modulus: replyKey.params.N2,
  }));
  if (h.count !== expected || elements.length !== 2 * expected) {
    throw new ProtocolError(`key server answered ${h.count} ciphertexts, expected ${expected}`);
  }
  const out: Ciphertext[] = [];
  for (let i = 0; i < expected; i++) out.push(new Ciphertext(replyKey, elements[2 * i]!, elements[2 * i + 1]!));
  return out;
}

/** Bob's reply: ciphertexts under pk. */
export function encodeReply(pairs: readonly Pair[], elementBytes: number): Buffer {
  return encodeMessage({ count: pairs.length }, pairs.flat(), elementBytes);
}
