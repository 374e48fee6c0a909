/**
 * Secure less-than on ciphertexts that hides magnitudes: Enc([x < c]) for encrypted x and public
 * thresholds c, through the engine. It replaces the seed-style comparison (SDC's multiplicative
 * blinding), which let the key server (KMS) read log2 |x - c| off every comparison.
 *   CCS: [[x - c]] becomes shares (one blinded decryption, conversion.ts, 40-bit statistical mask);
 *   both: the sign of the shares by the carry circuit, as XOR shares b_0 ^ b_1 (exact);
 *   KMS: sends Enc(b_1) under the ciphertexts' key; CCS: Enc(b) = Enc(b_1) or 1 - Enc(b_1) by b_0.
 * The key server sees x - c + r with r 40 bits wider than |x - c|, and masked openings; the compute
 * server sees ciphertexts and masked openings. Neither learns the outcome or the magnitude.
 * Correlated randomness comes from OT extension between the two servers (no third party), or
 * from a dealer where the deployment runs one (engine-session.ts).
 */
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { add, addPlain, negate, rerandomize, Ciphertext } from '../crypto/ciphertext.js';
import { ParameterError } from '../crypto/errors.js';
import { comparisonKey } from '../protocols/secure-less-than.js';
import { deserializeCiphertexts, serializeCiphertexts } from '../crypto/serialize.js';
import { encryptAll, type ComputeSideContext } from '../protocols/round-trip.js';
import type { KeyServerState } from '../protocols/key-server-state.js';
import { bitOf } from './bits.js';
import { ciphertextsToShares, ciphertextsToSharesAtKeyServer } from './conversion.js';
import { mpcParty } from './party.js';
import { signBit } from './primitives/binary.js';
import { MpcChannelError } from './channel.js';
import type { MpcEndpoint } from './server-channel.js';
import { startEngineSession } from './engine-session.js';

export const HIDDEN_LESS_THAN = 'engine.lt';
/** |x - c| must stay below 2^62 so the sign in Z_2^64 is exact after the mask is removed. */
export const MAX_COMPARISON_BITS = 62;
/**
 * Comparisons per session: a batch of 2048-bit ciphertexts (1 KB each) stays at 16 MB a message,
 * and the key server's decryptions of one batch take well under the engine's round timeout.
 */
const MAX_BATCH = 1 << 14;

const Args = z.object({
  key: z.string().min(1).max(128),
  count: z.number().int().min(1).max(MAX_BATCH),
  valueBits: z.number().int().min(1).max(MAX_COMPARISON_BITS),
});

/** The compute server's half; `valueBits` bounds |x - c|. */
export async function hiddenLessThan(
  ctx: ComputeSideContext,
  xs: readonly Ciphertext[],
  thresholds: readonly bigint[],
  valueBits: number,
): Promise<Ciphertext[]> {
  if (valueBits > MAX_COMPARISON_BITS)
    throw new ParameterError(`comparisons of values up to 2^${valueBits} exceed the engine's ${MAX_COMPARISON_BITS} bits`);
  const pk = comparisonKey(xs, thresholds);
  if (!pk) return [];
  const out: Ciphertext[] = [];
  for (let at = 0; at < xs.length; at += MAX_BATCH) {
    const part = xs.slice(at, at + MAX_BATCH);
    const session = `lt-${randomBytes(12).toString('hex')}`;
    const p = await startEngineSession(ctx, HIDDEN_LESS_THAN, session, { key: pk.fingerprint, count: part.length, valueBits });
    const diffs = part.map((x, i) => addPlain(x, -thresholds[at + i]!));
    // Masks go out as blinding encryptions (fresh h_N^rho'): inputs may be KMS-form elements.
    const shares = await ciphertextsToShares(p, diffs, pk, valueBits, (ms) => encryptAll(ctx, pk, ms));
    const sign = await signBit(p, shares);
    const theirs = deserializeCiphertexts(await p.channel.exchange(new Uint8Array(0)), pk, part.length);
    if (theirs.length !== part.length) throw new MpcChannelError(`expected ${part.length} outcome ciphertexts, got ${theirs.length}`);
    theirs.forEach((e, i) => out.push(rerandomize(bitOf(sign, i) ? add(pk.trivial(1n), negate(e)) : e)));
  }
  return out;
}

/** The key server's half, registered on its engine endpoint. */
export function registerHiddenLessThan(endpoint: MpcEndpoint, state: KeyServerState): void {
  const sessionOf = (raw: unknown) => {
    const parsed = Args.safeParse(raw);
    if (!parsed.success) throw new ParameterError(`a hidden comparison request is malformed: ${parsed.error.issues[0]?.message}`);
    return { count: parsed.data.count, pk: state.key(parsed.data.key) };
  };
  endpoint.register(
    HIDDEN_LESS_THAN,
    async (channel, raw, provider) => {
      const { count, pk } = sessionOf(raw);
      const p = mpcParty(1, channel(), await provider());
      const decryptor = {
        decryptBatch: (cts: readonly Ciphertext[]) =>
          state.open(
            HIDDEN_LESS_THAN,
            pk,
            cts.map((c) => [c.A, c.B]),
          ),
      };
      const shares = await ciphertextsToSharesAtKeyServer(p, decryptor, pk, count);
      const sign = await signBit(p, shares);
      const pairs = await state.seal(
        pk,
        Array.from({ length: count }, (_, i) => BigInt(bitOf(sign, i))),
      );
      await p.channel.exchange(
        serializeCiphertexts(
          pk,
          pairs.map(([A, B]) => new Ciphertext(pk, A, B)),
        ),
      );
    },
    (raw) => void sessionOf(raw),
  );
}
