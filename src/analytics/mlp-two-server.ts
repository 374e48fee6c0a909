/**
 * Training on two clouds (seed 002), both halves. The data arrive secret-shared: every value m of
 * owner i is split as R (from the owner's PRG seed) and m - R; the compute server (CCS) holds
 * Enc_pk_i(m - R) and the seed travels as Enc_pk_i(seed) for the key server (KMS) alone.
 *   1. CCS sends each owner's seed ciphertext; KMS opens it with its master key and draws R.
 *   2. Enc_pk_i(m - R) becomes shares of m - R by one packed, blinded decryption
 *      (mpc/packed-conversion.ts); KMS adds R to its share: shares of m. Neither server alone ever
 *      held both shares, nor anything that opens the other's.
 *   3. Both train the MLP on their shares (analytics/mlp.ts with the engine's operations).
 *   4. The model leaves as ciphertexts under the owners' joint key pk = prod pk_i: KMS encrypts its
 *      share (and its XOR share of the carry) under pk, CCS assembles Enc_pk(w) (mpc/conversion.ts).
 *      No ciphertext of CCS's share ever reaches KMS (whose master key would open it), and KMS
 *      computes pk itself from the keys the seeds came under, so a compute server cannot name a
 *      key of its own. The owners decrypt jointly (crypto/joint-decryption.ts).
 */
import { z } from 'zod';
import type { BcpPublicKey } from '../crypto/bcp-keys.js';
import { Ciphertext } from '../crypto/ciphertext.js';
import { backend } from '../crypto/backends.js';
import { bitLength } from '../crypto/bigint.js';
import { jointPublicKey } from '../crypto/joint-decryption.js';
import { CiphermineError, ParameterError } from '../crypto/errors.js';
import { deserializeCiphertexts, serializeCiphertexts, serializePublicKey } from '../crypto/serialize.js';
import type { KeyServerState } from '../protocols/key-server-state.js';
import { encryptAll, type ComputeSideContext } from '../protocols/round-trip.js';
import { randomBytes } from 'node:crypto';
import { MpcChannelError } from '../mpc/channel.js';
import { sharesToCiphertexts, sharesToCiphertextsAtKeyServer } from '../mpc/conversion.js';
import { startEngineSession } from '../mpc/engine-session.js';
import { mpcParty, type MpcParty } from '../mpc/party.js';
import { packedToShares, packedToSharesAtKeyServer } from '../mpc/packed-conversion.js';
import { ringAt, SEED_BYTES } from '../mpc/prg.js';
import { addPublic, open, share, type ArithmeticShare } from '../mpc/primitives/arithmetic.js';
import { isNegative } from '../mpc/primitives/binary.js';
import * as ring from '../mpc/ring.js';
import type { MpcEndpoint } from '../mpc/server-channel.js';
import {
  epochLoss,
  MLP_FRACTION_BITS,
  train,
  validateConfig,
  type EpochResiduals,
  type MlpConfig,
  type MlpModel,
  type Tensor,
  type TrainProgress,
} from './mlp.js';
import { sharedOps } from './mlp-shared.js';
import { stagedTraining } from './mlp-offline.js';
import { checkLayout, joinVertical, type VerticalLayout } from './vertical-join.js';

export const TRAIN_PROGRAM = 'engine.train';

/** The released model's packing: each parameter w (|w| < 2^63) as w + 2^63 in a 66-bit slot. */
export const MODEL_SLOT_BITS = 66;
export const MODEL_OFFSET = 1n << 63n;

/** Each owner's key once (an owner with several uploads decrypts once). */
const distinct = (keys: readonly BcpPublicKey[]): BcpPublicKey[] => [...new Map(keys.map((k) => [k.fingerprint, k])).values()];

/** One owner's training upload as the session sees it: its key, rows and columns (features then targets). */
export interface SharedSource {
  key: BcpPublicKey;
  seed: Ciphertext;
  rows: number;
  /** Ring elements per ciphertext (the owner's packing). */
  slots: number;
  /** Values in each stored chunk (rows x columns), in order. */
  chunkValues: number[];
  /** Each chunk's packs of Enc_pk(m - R), row-major, read one chunk at a time. */
  chunks: () => AsyncIterable<Ciphertext[]>;
}

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
  columns: z.number().int().min(2).max(10_000),
  targets: z.number().int().min(1).max(1000),
  config: z.object({
    layers: z.array(z.number().int().min(1).max(4096)).min(2).max(16),
    learningRate: z.number().positive().max(16),
    batchSize: z.number().int().min(1).max(4096),
    epochs: z.number().int().min(1).max(1000),
    seed: z.string().min(1).max(200),
    loss: z.enum(['mse', 'softmax']).optional(),
    standardise: z
      .object({
        bounds: z
          .array(
            z
              .number()
              .positive()
              .max(2 ** 20),
          )
          .max(10_000),
      })
      .optional(),
  }),
  /** The joint key's fingerprint, which KMS recomputes from the seeds' keys and compares. */
  jointKey: z.string().min(1).max(128),
  /** Names the model: the key server's sealed share is bound to it. */
  session: z.string().min(1).max(100),
  /** The query client's key fingerprint, when each epoch's loss is reported to it (encrypted under this key). */
  lossTo: z.string().min(1).max(128).optional(),
  /** Set when the sources are columns of the same records (vertical-join.ts), not rows. */
  vertical: z
    .object({
      columns: z.array(z.number().int().min(1).max(10_000)).min(2).max(64),
      targets: z.array(z.number().int().min(0).max(1000)).min(2).max(64),
      perms: z
        .array(z.array(z.number().int().min(0).max(10_000_000)).max(10_000_000))
        .min(2)
        .max(64),
    })
    .optional(),
});

/** Features [n, columns - targets] and targets [n, targets] from row-major values of all sources. */
function splitColumns(values: BigUint64Array, n: number, columns: number, targets: number): { x: Tensor; y: Tensor } {
  const d = columns - targets;
  const x = new BigUint64Array(n * d);
  const y = new BigUint64Array(n * targets);
  for (let i = 0; i < n; i++) {
    x.set(values.subarray(i * columns, i * columns + d), i * d);
    y.set(values.subarray(i * columns + d, (i + 1) * columns), i * targets);
  }
  return { x: { shape: [n, d], data: x }, y: { shape: [n, targets], data: y } };
}

const flatten = (m: MlpModel): BigUint64Array => {
  const parts = m.weights.flatMap((w, l) => [w.data, m.biases[l]!.data]);
  if (m.preprocessing) parts.push(m.preprocessing.mean.data, m.preprocessing.scale.data);
  const out = new BigUint64Array(parts.reduce((a, p) => a + p.length, 0));
  let at = 0;
  for (const p of parts) out.set(p, (at += p.length) - p.length);
  return out;
};

/** Model parameters in release order: W_1, b_1, W_2, b_2, ... (row-major), then the standardisation's mean and scale. */
export const parameterCount = (layers: readonly number[], standardised = false): number =>
  layers.slice(1).reduce((a, out, l) => a + (layers[l]! + 1) * out, 0) + (standardised ? 2 * layers[0]! : 0);

async function trainShares(
  p: MpcParty,
  values: BigUint64Array,
  n: number,
  columns: number,
  targets: number,
  config: MlpConfig,
  onBatch?: (b: TrainProgress) => void | Promise<void>,
  /** Both parties' halves of reporting an epoch's loss (shares of it, [1, 1]); absent: no report. */
  reportLoss?: (epoch: number, epochs: number, loss: ArithmeticShare) => Promise<void>,
): Promise<{ weights: BigUint64Array; offlineSeconds: number }> {
  const { x, y } = splitColumns(values, n, columns, targets);
  const { party, staged, before } = stagedTraining(p, config);
  // The loss runs on the unstaged party: its randomness is not in the training's planned stages.
  const afterEpoch = reportLoss
    ? async (e: EpochResiduals) => {
        const loss = await epochLoss(sharedOps(p), e.residual);
        await reportLoss(e.epoch, e.epochs, share([1], loss.data));
      }
    : undefined;
  const weights = flatten(await train(sharedOps(party), x, y, config, onBatch, before, afterEpoch));
  await refuseDiverged(p, weights.subarray(0, parameterCount(config.layers))); // not the standardisation's mean and scale
  return { weights, offlineSeconds: staged.counters.offlineSeconds };
}

/** No trained parameter of a sound training comes near this (healthy ones stay within a few units). */
export const DIVERGENCE_BOUND = 1024;

/**
 * A learning rate too large for the data makes the weights explode (and wrap modulo 2^64 in fixed
 * point), a model that would be garbage. Both servers count, on shares, the parameters beyond
 * +-DIVERGENCE_BOUND and open only that count (0 for every sound training; leakage.md lists it),
 * and refuse to release a model that has any.
 */
async function refuseDiverged(p: MpcParty, weights: BigUint64Array): Promise<void> {
  const bound = new BigUint64Array(weights.length).fill(BigInt(DIVERGENCE_BOUND) << BigInt(MLP_FRACTION_BITS));
  const both = new BigUint64Array(2 * weights.length);
  both.set(addPublic(p, share([weights.length], weights), bound).data); // w + B < 0: w < -B
  both.set(addPublic(p, share([weights.length], ring.neg(weights)), bound).data, weights.length); // B - w < 0: w > B
  const beyond = (await isNegative(p, share([both.length], both))).data;
  const count = share([1], BigUint64Array.of(beyond.reduce((a, b) => BigInt.asUintN(64, a + b), 0n)));
  const [n] = await open(p, count);
  if (n !== 0n)
    throw new CiphermineError(
      'ERR_DIVERGED',
      `the training diverged: ${n} parameters ended beyond +-${DIVERGENCE_BOUND}, so no model is released; lower the learning rate (or standardise the features)`,
    );
}

/**
 * Packs of Enc(sum_s (w_s + 2^63) 2^(66 s)) by Horner over the ciphertexts, plus a fresh BCP
 * encryption of the offsets (which rerandomises each pack). Plain BCP throughout: the owners
 * decrypt with their own keys, which the KMS form's extra factor would defeat.
 */
export function packForOwners(pk: BcpPublicKey, cts: readonly Ciphertext[]): Ciphertext[] {
  const { N, N2 } = pk.params;
  const per = Math.floor((bitLength(N) - 2) / MODEL_SLOT_BITS);
  const be = backend();
  const shift = 1n << BigInt(MODEL_SLOT_BITS);
  const out: Ciphertext[] = [];
  for (let i = 0; i < cts.length; i += per) {
    const group = cts.slice(i, i + per);
    let [A, B] = [group[group.length - 1]!.A, group[group.length - 1]!.B];
    let offsets = MODEL_OFFSET;
    for (let s = group.length - 2; s >= 0; s--) {
      A = be.modMul(be.modPow(A, shift, N2), group[s]!.A, N2);
      B = be.modMul(be.modPow(B, shift, N2), group[s]!.B, N2);
      offsets = (offsets << BigInt(MODEL_SLOT_BITS)) + MODEL_OFFSET;
    }
    const fresh = pk.encrypt(offsets);
    out.push(new Ciphertext(pk, be.modMul(A, fresh.A, N2), be.modMul(B, fresh.B, N2)));
  }
  return out;
}

/** One epoch's loss as the query client will read it: Enc_client(loss), fixed point (MLP_FRACTION_BITS). */
export interface EpochLoss {
  epoch: number;
  epochs: number;
  loss: Ciphertext;
}

/** What the compute server's half is told besides the data and the configuration. */
export interface TrainingOptions {
  onBatch?: (b: TrainProgress) => void | Promise<void>;
  vertical?: VerticalLayout;
  /** Report each epoch's loss under this key (the query client's), to `onEpoch`. */
  lossTo?: BcpPublicKey;
  onEpoch?: (e: EpochLoss) => void | Promise<void>;
}

export interface TwoServerTraining {
  /** Packs of Enc_jointKey(w + 2^63), MODEL_SLOT_BITS to a slot, every parameter in release order. */
  model: Ciphertext[];
  jointKey: BcpPublicKey;
  /** Seconds of the training loop at the compute server, and the part its provider spent making correlated randomness. */
  trainingSeconds: number;
  offlineSeconds: number;
  /** The part of `trainingSeconds` spent computing and encrypting the epochs' losses for the client. */
  lossSeconds: number;
  /** The model as it stays shared: this server's share, and the key server's sealed for itself. */
  shared: SharedModel;
}

/** A trained model kept in shares for `predict` (mlp-predict.ts). */
export interface SharedModel {
  /** The training session, to which the key server's sealed share is bound. */
  session: string;
  /** The compute server's share of every parameter, in release order. */
  share: BigUint64Array;
  /** The key server's share, AES-GCM under a key only it derives. */
  keyServerShare: Uint8Array;
}

/** The compute server's half. */
export async function trainOnTwoServers(
  ctx: ComputeSideContext,
  sources: readonly SharedSource[],
  columns: number,
  targets: number,
  config: MlpConfig,
  o: TrainingOptions = {},
): Promise<TwoServerTraining> {
  const { vertical, lossTo } = o;
  validateConfig(config, columns - targets, targets);
  if (vertical)
    checkLayout(
      vertical,
      sources.map((s) => s.rows),
      columns,
      targets,
    );
  const jointKey = jointPublicKey(distinct(sources.map((s) => s.key)));
  await ctx.transport.call('register-key', serializePublicKey(jointKey));
  if (lossTo) await ctx.transport.call('register-key', serializePublicKey(lossTo));
  const session = `train-${randomBytes(12).toString('hex')}`;
  const args = {
    sources: sources.map((s) => ({ key: s.key.fingerprint, rows: s.rows, slots: s.slots, chunks: s.chunkValues })),
    columns,
    targets,
    config,
    jointKey: jointKey.fingerprint,
    session,
    lossTo: lossTo?.fingerprint,
    vertical,
  };
  const p = await startEngineSession(ctx, TRAIN_PROGRAM, session, args);
  const n = vertical ? vertical.perms[0]!.length : sources.reduce((a, s) => a + s.rows, 0);
  const values = vertical
    ? joinVertical(await eachSource(sources, (s, i) => sourcesToShares(ctx, p, [s], vertical.columns[i]!)), vertical)
    : await sourcesToShares(ctx, p, sources, columns);
  const started = performance.now();
  let lossSeconds = 0;
  const report = lossTo
    ? async (epoch: number, epochs: number, loss: ArithmeticShare) => {
        const t = performance.now();
        const [ct] = await sharesToCiphertexts(p, loss, lossTo);
        lossSeconds += (performance.now() - t) / 1000;
        await o.onEpoch?.({ epoch, epochs, loss: ct! });
      }
    : undefined;
  const { weights, offlineSeconds } = await trainShares(p, values, n, columns, targets, config, o.onBatch, report);
  const trainingSeconds = (performance.now() - started) / 1000;
  const each = await sharesToCiphertexts(p, share([weights.length], weights), jointKey);
  // Packed, MODEL_SLOT_BITS to a slot with 2^63 added, so the owners' partial decryptions (one
  // full-length exponentiation each) are one per pack instead of one per parameter.
  const model = packForOwners(jointKey, each);
  // The model also stays shared for `predict`: this server keeps its share, and keeps the key
  // server's sealed under a key only the key server holds.
  const keyServerShare = await p.channel.exchange(new Uint8Array(0));
  return { model, jointKey, trainingSeconds, offlineSeconds, lossSeconds, shared: { session, share: weights, keyServerShare } };
}

/**
 * Party 0's half of turning the sources into shares of their values (all rows, row-major): the
 * seeds to the key server, then each chunk's packs by the packed conversion.
 */
export async function sourcesToShares(
  ctx: ComputeSideContext,
  p: MpcParty,
  sources: readonly SharedSource[],
  columns: number,
): Promise<BigUint64Array> {
  for (const s of sources) await p.channel.exchange(serializeCiphertexts(s.key, [s.seed]));
  const values = new BigUint64Array(sources.reduce((a, s) => a + s.rows, 0) * columns);
  let at = 0;
  for (const s of sources) {
    if (s.chunkValues.reduce((acc, c) => acc + c, 0) !== s.rows * columns)
      throw new ParameterError(`a source's chunks do not hold ${s.rows} rows of ${columns}`);
    let c = 0;
    for await (const packs of s.chunks()) {
      const count = s.chunkValues[c++]!;
      values.set(await packedToShares(p, packs, count, s.slots, s.key, (ms) => encryptAll(ctx, s.key, ms)), at);
      at += count;
    }
  }
  return values;
}

/** Party 1's half: opens each seed, adds R to its share of m - R. */
export async function sourcesToSharesAtKeyServer(
  p: MpcParty,
  state: KeyServerState,
  keys: readonly BcpPublicKey[],
  sources: ReadonlyArray<{ rows: number; slots: number; chunks: readonly number[] }>,
  columns: number,
): Promise<BigUint64Array> {
  const seeds: Uint8Array[] = [];
  for (const pk of keys) {
    const [ct] = deserializeCiphertexts(await p.channel.exchange(new Uint8Array(0)), pk, 1);
    if (!ct) throw new MpcChannelError('expected a seed ciphertext');
    const [v] = await state.open('train-seed', pk, [[ct.A, ct.B]]);
    seeds.push(Buffer.from(v!.toString(16).padStart(2 * SEED_BYTES, '0'), 'hex'));
  }
  const values = new BigUint64Array(sources.reduce((acc, s) => acc + s.rows, 0) * columns);
  let at = 0;
  for (let i = 0; i < keys.length; i++) {
    const src = sources[i]!;
    if (src.chunks.reduce((acc, c) => acc + c, 0) !== src.rows * columns) throw new MpcChannelError('the chunks do not hold the rows');
    let first = 0;
    for (const count of src.chunks) {
      const mine = await packedToSharesAtKeyServer(p, state, keys[i]!, count, src.slots, 'train-data');
      values.set(ring.add(mine, ringAt(seeds[i]!, first, count)), at);
      at += count;
      first += count;
    }
  }
  return values;
}

/** Runs f on each source in turn (the parties' messages must keep one order). */
async function eachSource<S, T>(sources: readonly S[], f: (s: S, i: number) => Promise<T>): Promise<T[]> {
  const out: T[] = [];
  for (let i = 0; i < sources.length; i++) out.push(await f(sources[i]!, i));
  return out;
}

/** What the key server's sealed model share is bound to: the session and the model's shape. */
export const modelShareContext = (session: string, layers: readonly number[], standardised: boolean): string =>
  `model share\0${session}\0${layers.join(',')}\0${standardised ? 'standardised' : 'raw'}`;

/**
 * The key server's side of a job on a kept model (predict, release): receives its sealed share
 * from the compute server and opens it, bound to the training session and the shape, so a share
 * sealed for another model, or cut to another shape, does not open.
 */
export async function receiveModelShare(
  p: MpcParty,
  state: KeyServerState,
  m: { model: string; layers: readonly number[]; standardised: boolean },
): Promise<BigUint64Array> {
  const sealed = await p.channel.exchange(new Uint8Array(0));
  const bytes = state.unsealForSelf(modelShareContext(m.model, m.layers, m.standardised), sealed);
  if (bytes.length !== 8 * parameterCount(m.layers, m.standardised)) throw new MpcChannelError('the sealed model share does not fit the layers');
  return new BigUint64Array(Uint8Array.from(bytes).buffer);
}

/** The key server's half, registered on its engine endpoint. */
export function registerTrainingProgram(endpoint: MpcEndpoint, state: KeyServerState): void {
  const parse = (raw: unknown) => {
    const parsed = Args.safeParse(raw);
    if (!parsed.success) throw new ParameterError(`a training request is malformed: ${parsed.error.issues[0]?.message}`);
    const a = parsed.data;
    validateConfig(a.config, a.columns - a.targets, a.targets);
    if (a.vertical)
      checkLayout(
        a.vertical,
        a.sources.map((s) => s.rows),
        a.columns,
        a.targets,
      );
    return { ...a, keys: a.sources.map((s) => state.key(s.key)) };
  };
  endpoint.register(
    TRAIN_PROGRAM,
    async (channel, raw, provider) => {
      const a = parse(raw);
      const p = mpcParty(1, channel(), await provider());
      // The owners' keys make the joint key, not the request.
      const jointKey = jointPublicKey(distinct(a.keys));
      if (jointKey.fingerprint !== a.jointKey) throw new MpcChannelError('the model key is not the joint key of the data owners');
      // 1-2. the seeds, then shares of m - R, plus R
      const v = a.vertical;
      const n = v ? v.perms[0]!.length : a.sources.reduce((acc, s) => acc + s.rows, 0);
      const values = v
        ? joinVertical(await eachSource(a.sources, (s, i) => sourcesToSharesAtKeyServer(p, state, [a.keys[i]!], [s], v.columns[i]!)), v)
        : await sourcesToSharesAtKeyServer(p, state, a.keys, a.sources, a.columns);
      // 3. training, 4. release under the joint key
      // The client's key, when it asked for the losses: this server's share of each goes out under it.
      const lossTo = a.lossTo === undefined ? undefined : state.key(a.lossTo);
      const report = lossTo ? (_e: number, _n: number, loss: ArithmeticShare) => sharesToCiphertextsAtKeyServer(p, loss, lossTo) : undefined;
      const { weights } = await trainShares(p, values, n, a.columns, a.targets, a.config, undefined, report);
      await sharesToCiphertextsAtKeyServer(p, share([weights.length], weights), state.key(jointKey.fingerprint));
      // 5. this share, sealed for this key server alone, kept by the compute server for `predict`
      const context = modelShareContext(a.session, a.config.layers, !!a.config.standardise);
      await p.channel.exchange(state.sealForSelf(context, new Uint8Array(weights.buffer, weights.byteOffset, weights.byteLength)));
    },
    (raw) => void parse(raw),
  );
}
