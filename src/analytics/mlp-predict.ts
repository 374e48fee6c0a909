/**
 * Secure prediction (seed 002, for a granted query client): a trained model that stayed in shares
 * at the two servers (the compute server, CCS, keeps its share and the key server's, sealed for
 * the key server alone) runs on records uploaded secret-shared, and only the predictions leave: the
 * class index of each row (classification, the argmax on shares) or the output value
 * (regression), as BCP ciphertexts under the query client's key. Neither server sees a record, a
 * parameter or a prediction; both see the shapes.
 *   1. CCS hands KMS its sealed share; KMS opens it (bound to the model's session and shape).
 *   2. The records become shares as for training (mlp-two-server.ts).
 *   3. Both run the standardisation the model carries and the forward pass on shares.
 *   4. The argmax (the engine's argmin tournament on -out) gives shares of the class index.
 *   5. Shares to ciphertexts under the client's key; only the client opens them.
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
import { mpcParty, type MpcParty } from '../mpc/party.js';
import { argmin } from '../mpc/primitives/argmin.js';
import { share } from '../mpc/primitives/arithmetic.js';
import * as ring from '../mpc/ring.js';
import type { MpcEndpoint } from '../mpc/server-channel.js';
import { addRow, forward, type MlpModel, type Tensor } from './mlp.js';
import { sharedOps } from './mlp-shared.js';
import {
  receiveModelShare,
  parameterCount,
  sourcesToShares,
  sourcesToSharesAtKeyServer,
  type SharedModel,
  type SharedSource,
} from './mlp-two-server.js';
import { broadcastRows } from './standardise.js';

export const PREDICT_PROGRAM = 'engine.predict';

const Args = z.object({
  sources: z
    .array(
      z.object({
        key: z.string().min(1).max(128),
        rows: z.number().int().min(1).max(10_000_000),
        slots: z.number().int().min(1).max(1000),
        chunks: z
          .array(
            z
              .number()
              .int()
              .min(1)
              .max(1 << 26),
          )
          .min(1)
          .max(1_000_000),
      }),
    )
    .min(1)
    .max(64),
  /** Columns of each upload: the model's features, then `extra` columns (labels) that are dropped. */
  columns: z.number().int().min(1).max(10_000),
  extra: z.number().int().min(0).max(1000),
  layers: z.array(z.number().int().min(1).max(4096)).min(2).max(16),
  standardised: z.boolean(),
  task: z.enum(['classification', 'regression']),
  /** The training session the sealed share is bound to. */
  model: z.string().min(1).max(100),
  /** The query client's key fingerprint: the predictions are encrypted under it. */
  client: z.string().min(1).max(128),
});
type PredictArgs = z.infer<typeof Args>;

/** The model from its parameters in release order (W_1, b_1, ..., then the standardisation). */
function unflatten(flat: BigUint64Array, layers: readonly number[], standardised: boolean): MlpModel {
  if (flat.length !== parameterCount(layers, standardised)) throw new ParameterError('the model share does not fit the layers');
  let at = 0;
  const take = (shape: number[]): Tensor => ({ shape, data: flat.slice(at, (at += shape[0]! * shape[1]!)) });
  const weights: Tensor[] = [];
  const biases: Tensor[] = [];
  for (let l = 1; l < layers.length; l++) {
    weights.push(take([layers[l - 1]!, layers[l]!]));
    biases.push(take([1, layers[l]!]));
  }
  const d = layers[0]!;
  return standardised ? { weights, biases, preprocessing: { mean: take([1, d]), scale: take([1, d]) } } : { weights, biases };
}

/** The features [n, d] of row-major values with `extra` trailing columns per row. */
function features(values: BigUint64Array, n: number, d: number, extra: number): Tensor {
  const x = new BigUint64Array(n * d);
  for (let i = 0; i < n; i++) x.set(values.subarray(i * (d + extra), i * (d + extra) + d), i * d);
  return { shape: [n, d], data: x };
}

/** Both parties: shares of each row's prediction (class index, or the output in fixed point). */
async function predictShares(p: MpcParty, values: BigUint64Array, a: PredictArgs, flat: BigUint64Array): Promise<BigUint64Array> {
  const n = a.sources.reduce((acc, s) => acc + s.rows, 0);
  const model = unflatten(flat, a.layers, a.standardised);
  const ops = sharedOps(p);
  let x = features(values, n, a.columns - a.extra, a.extra);
  if (model.preprocessing) {
    const { mean, scale } = model.preprocessing;
    x = await ops.mulFixed(addRow(x, { shape: mean.shape, data: ring.neg(mean.data) }), broadcastRows(scale, n));
  }
  const { out } = await forward(ops, model, x);
  if (a.task === 'regression') return out.data;
  const c = out.shape[1]!;
  const { onehot } = await argmin(p, share(out.shape, ring.neg(out.data)));
  const index = new BigUint64Array(n);
  for (let i = 0; i < n; i++) for (let j = 1; j < c; j++) index[i] = BigInt.asUintN(64, index[i]! + BigInt(j) * onehot.data[i * c + j]!);
  return index;
}

export interface PredictRequest {
  model: SharedModel & { layers: number[]; standardised: boolean };
  sources: readonly SharedSource[];
  columns: number;
  /** Trailing columns of each upload that are not features (a labelled upload's targets). */
  extra: number;
  task: 'classification' | 'regression';
  client: BcpPublicKey;
}

/** The compute server's half: Enc_client(prediction) per row, rows in source order. */
export async function predictOnTwoServers(ctx: ComputeSideContext, r: PredictRequest): Promise<Ciphertext[]> {
  if (r.columns - r.extra !== r.model.layers[0])
    throw new ParameterError(`the model takes ${r.model.layers[0]} features, the data has ${r.columns - r.extra}`);
  await ctx.transport.call('register-key', serializePublicKey(r.client));
  const args: PredictArgs = {
    sources: r.sources.map((s) => ({ key: s.key.fingerprint, rows: s.rows, slots: s.slots, chunks: s.chunkValues })),
    columns: r.columns,
    extra: r.extra,
    layers: r.model.layers,
    standardised: r.model.standardised,
    task: r.task,
    model: r.model.session,
    client: r.client.fingerprint,
  };
  const p = await startEngineSession(ctx, PREDICT_PROGRAM, `predict-${randomBytes(12).toString('hex')}`, args);
  await p.channel.exchange(r.model.keyServerShare);
  const values = await sourcesToShares(ctx, p, r.sources, r.columns);
  const predictions = await predictShares(p, values, args, r.model.share);
  return sharesToCiphertexts(p, share([predictions.length], predictions), r.client);
}

/** The key server's half, registered on its engine endpoint. */
export function registerPredictProgram(endpoint: MpcEndpoint, state: KeyServerState): void {
  const parse = (raw: unknown) => {
    const parsed = Args.safeParse(raw);
    if (!parsed.success) throw new ParameterError(`a prediction request is malformed: ${parsed.error.issues[0]?.message}`);
    if (parsed.data.columns - parsed.data.extra !== parsed.data.layers[0]) throw new ParameterError('the model does not take these columns');
    return parsed.data;
  };
  endpoint.register(
    PREDICT_PROGRAM,
    async (channel, raw, provider) => {
      const a = parse(raw);
      const client = state.key(a.client);
      const keys = a.sources.map((s) => state.key(s.key));
      const p = mpcParty(1, channel(), await provider());
      const flat = await receiveModelShare(p, state, a);
      const values = await sourcesToSharesAtKeyServer(p, state, keys, a.sources, a.columns);
      const predictions = await predictShares(p, values, a, flat);
      await sharesToCiphertextsAtKeyServer(p, share([predictions.length], predictions), client);
    },
    (raw) => void parse(raw),
  );
}
