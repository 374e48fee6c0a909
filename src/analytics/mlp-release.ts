/**
 * Releasing a trained model to a query client (QC) under the client's own key (seed 002, item 5's
 * alternative to the owners' joint decryption, when every owner of the training data grants it).
 * The model stayed in shares after training: the compute server (CCS) keeps its share and the key
 * server's (KMS) sealed for KMS alone (mlp-two-server.ts).
 *   1. CCS hands KMS its sealed share; KMS opens it, bound to the training session and the shape.
 *   2. Both turn their shares into Enc_QC(w) (mpc/conversion.ts): KMS encrypts its share under the
 *      client's key and CCS adds its own; no ciphertext of CCS's share reaches KMS, whose master
 *      key would open it.
 *   3. CCS packs the parameters as for the owners (66-bit slots holding w + 2^63), so the client
 *      decrypts one ciphertext per pack.
 * Neither server sees a parameter; both see the model's shape, as in training.
 */
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import type { BcpPublicKey } from '../crypto/bcp-keys.js';
import type { Ciphertext } from '../crypto/ciphertext.js';
import { ParameterError } from '../crypto/errors.js';
import { serializePublicKey } from '../crypto/serialize.js';
import type { KeyServerState } from '../protocols/key-server-state.js';
import type { ComputeSideContext } from '../protocols/round-trip.js';
import { sharesToCiphertexts, sharesToCiphertextsAtKeyServer } from '../mpc/conversion.js';
import { startEngineSession } from '../mpc/engine-session.js';
import { mpcParty } from '../mpc/party.js';
import { share } from '../mpc/primitives/arithmetic.js';
import type { MpcEndpoint } from '../mpc/server-channel.js';
import { packForOwners, parameterCount, receiveModelShare, type SharedModel } from './mlp-two-server.js';

export const RELEASE_PROGRAM = 'engine.release-model';

const Args = z.object({
  layers: z.array(z.number().int().min(1).max(4096)).min(2).max(16),
  standardised: z.boolean(),
  /** The training session the sealed share is bound to. */
  model: z.string().min(1).max(100),
  /** The query client's key fingerprint: the model is encrypted under it. */
  client: z.string().min(1).max(128),
});

export interface ReleaseRequest {
  model: SharedModel & { layers: number[]; standardised: boolean };
  client: BcpPublicKey;
}

/** The compute server's half: packs of Enc_client(w + 2^63), every parameter in release order. */
export async function releaseModelToClient(ctx: ComputeSideContext, r: ReleaseRequest): Promise<Ciphertext[]> {
  const count = parameterCount(r.model.layers, r.model.standardised);
  if (r.model.share.length !== count) throw new ParameterError('the model share does not fit the layers');
  await ctx.transport.call('register-key', serializePublicKey(r.client));
  const args: z.infer<typeof Args> = {
    layers: r.model.layers,
    standardised: r.model.standardised,
    model: r.model.session,
    client: r.client.fingerprint,
  };
  const p = await startEngineSession(ctx, RELEASE_PROGRAM, `release-${randomBytes(12).toString('hex')}`, args);
  await p.channel.exchange(r.model.keyServerShare);
  const each = await sharesToCiphertexts(p, share([count], r.model.share), r.client);
  return packForOwners(r.client, each);
}

/** The key server's half, registered on its engine endpoint. */
export function registerReleaseProgram(endpoint: MpcEndpoint, state: KeyServerState): void {
  const parse = (raw: unknown) => {
    const parsed = Args.safeParse(raw);
    if (!parsed.success) throw new ParameterError(`a model release request is malformed: ${parsed.error.issues[0]?.message}`);
    return parsed.data;
  };
  endpoint.register(
    RELEASE_PROGRAM,
    async (channel, raw, provider) => {
      const a = parse(raw);
      const client = state.key(a.client);
      const p = mpcParty(1, channel(), await provider());
      const flat = await receiveModelShare(p, state, a);
      await sharesToCiphertextsAtKeyServer(p, share([flat.length], flat), client);
    },
    (raw) => void parse(raw),
  );
}
