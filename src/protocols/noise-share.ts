/**
 * sPMDP noise from the key server (seed 001): the key server samples its share of the noise for
 * each released value and answers it encrypted under the job key, so the compute server adds it
 * without learning it; the compute server adds its own share, so neither knows the total. The noise
 * parameters travel as exact rationals.
 */
import { z } from 'zod';
import type { BcpPublicKey } from '../crypto/bcp-keys.js';
import { Ciphertext } from '../crypto/ciphertext.js';
import { mod } from '../crypto/bigint.js';
import { encodeReply, type ComputeSideContext } from './round-trip.js';
import { decodeMessage, encodeMessage, fingerprint, ProtocolError } from './messages.js';
import { decodeForKey, pairsOf, type KeyServerState } from './key-server-state.js';
import { boundedGumbel, sampleShare, type NoiseSpec } from '../crypto/noise/mechanisms.js';
import { rational, toNumber, type Rational } from '../crypto/noise/rational.js';

/** Fraction bits of the Gumbel noise of the exponential mechanism (the mode's scores). */
export const GUMBEL_FRACTION_BITS = 16;

export async function keyServerNoiseShares(ctx: ComputeSideContext, pk: BcpPublicKey, spec: NoiseSpec, count: number): Promise<Ciphertext[]> {
  return request(ctx, pk, spec.kind, spec.param, count);
}

/**
 * The exponential mechanism's noise, all of it from the key server: `count` Gumbel variates of
 * scale `scale` in fixed point (GUMBEL_FRACTION_BITS), encrypted under `pk`. The compute server,
 * which learns the chosen index, never knows the noise; the key server, which knows it, never
 * learns the counts nor the choice.
 */
export async function keyServerGumbel(ctx: ComputeSideContext, pk: BcpPublicKey, scale: Rational, count: number): Promise<Ciphertext[]> {
  return request(ctx, pk, 'gumbel', scale, count);
}

async function request(ctx: ComputeSideContext, pk: BcpPublicKey, kind: string, param: Rational, count: number): Promise<Ciphertext[]> {
  const header = { key: pk.fingerprint, count, kind, num: param.num.toString(), den: param.den.toString() };
  const reply = await ctx.transport.call('noise-share', encodeMessage(header, [], pk.params.elementBytes));
  const { header: h, elements } = decodeMessage(reply, z.object({ count: z.number().int() }), () => ({
    elementBytes: pk.params.elementBytes,
    modulus: pk.params.N2,
  }));
  if (h.count !== count || elements.length !== 2 * count) throw new ProtocolError('malformed noise-share answer');
  return pairsOf(elements).map(([A, B]) => new Ciphertext(pk, A, B));
}

/**
 * The mode's Gumbel noise is reproducible per job key (and scale): the compute server sees the
 * chosen bin, and a rerun after a failure must not give it a second, independent draw.
 */
function gumbelNoise(state: KeyServerState, pk: BcpPublicKey, scale: Rational, count: number): bigint[] {
  const u = state.jobUniform(pk, `gumbel ${scale.num}/${scale.den}`);
  return Array.from({ length: count }, () => boundedGumbel(toNumber(scale), GUMBEL_FRACTION_BITS, u));
}

const schema = z.object({
  key: fingerprint,
  count: z.number().int().min(0).max(100_000),
  kind: z.enum(['laplace', 'gaussian', 'gumbel']),
  num: z.string().regex(/^[1-9]\d{0,300}$/),
  den: z.string().regex(/^[1-9]\d{0,300}$/),
});

export async function noiseShareKeyServer(state: KeyServerState, body: Uint8Array): Promise<Buffer> {
  const { header, elements, pk } = decodeForKey(state, body, schema);
  if (elements.length !== 0) throw new ProtocolError('noise-share takes no ciphertexts');
  const param = rational(BigInt(header.num), BigInt(header.den));
  const kind = header.kind;
  const shares =
    kind === 'gumbel' ? gumbelNoise(state, pk, param, header.count) : Array.from({ length: header.count }, () => sampleShare({ kind, param }, 1));
  state.observe('noise-share', shares);
  return encodeReply(
    await state.seal(
      pk,
      shares.map((s) => mod(s, pk.params.N)),
    ),
    pk.params.elementBytes,
  );
}
