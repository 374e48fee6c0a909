/**
 * A multilayer perceptron trained by mini-batch SGD in fixed point (seed 002: ReLU hidden layers,
 * the model trained by two clouds on shared data). One algorithm, written once against `TensorOps`,
 * runs on two backends: plaintext ring arithmetic with exact rounding (the reference,
 * `plainOps`), and the secret-sharing engine (`sharedOps`, mlp-shared.ts), where both servers run
 * this same code on their shares. The only difference between the two is the engine's local
 * truncation (SecureML): each truncation may differ from the rounded value by one unit in the last
 * place, so the secure weights follow the reference within a bound that grows with the number of steps
 * (docs/neural-networks.md states and tests it).
 *
 * Layers are dense, with a bias; hidden layers use ReLU, the output layer is linear and the loss
 * is the mean squared error against one-hot targets (classification) or values (regression); zero
 * hidden layers is linear regression (or a linear classifier). Initial weights and the batch order
 * come from the query's seed: public, data-independent, the same at both servers.
 */
import { createHash } from 'node:crypto';
import { ParameterError } from '../crypto/errors.js';
import * as ring from '../mpc/ring.js';
import type { RingArray } from '../mpc/ring.js';
import { standardise, validateBound } from './standardise.js';

export const MLP_FRACTION_BITS = 16;

export interface MlpConfig {
  /** Widths from input to output, e.g. [64, 32, 10]. */
  layers: number[];
  learningRate: number;
  batchSize: number;
  epochs: number;
  /** Seeds the initial weights and the batch order. */
  seed: string;
  /**
   * `mse`: squared error against the targets (regression; also classification); `softmax`: the
   * cross-entropy gradient softmax(out) - y, with the softmax approximated in fixed point
   * (`softmaxRows`), for classification.
   */
  loss?: 'mse' | 'softmax';
  /**
   * Standardise every feature on the backend before training (standardise.ts): the mean and
   * scale are computed from all records together and never opened. `bounds` are public bounds on
   * |x| per feature, from the owners' uploads.
   */
  standardise?: { bounds: number[] };
}

/** A tensor of one backend: plaintext ring values, or this party's share. */
export interface Tensor {
  readonly shape: readonly number[];
  readonly data: RingArray;
}

/** What the algorithm needs of a backend; shapes are [rows, cols], row-major. */
export interface TensorOps {
  /** Fixed-point matrix product (one truncation). */
  matmul(a: Tensor, b: Tensor): Promise<Tensor>;
  /** ReLU and its derivative [z >= 0] (0 or 1, integers). */
  relu(z: Tensor): Promise<{ out: Tensor; derivative: Tensor }>;
  /** Elementwise product with a 0/1 tensor (no truncation). */
  mask(x: Tensor, bits: Tensor): Promise<Tensor>;
  /** x * c / 2^f for a public fixed-point c (one truncation). */
  scale(x: Tensor, c: bigint): Tensor;
  /** x[i][j] * c[j] / 2^f for public fixed-point constants per column (one truncation). */
  scaleColumns(x: Tensor, c: readonly bigint[]): Tensor;
  /** Adds a public constant tensor (only one party adds it, on shares). */
  addPublic(x: Tensor, c: RingArray): Tensor;
  /** Elementwise fixed-point product (one truncation). */
  mulFixed(a: Tensor, b: Tensor): Promise<Tensor>;
  /** The largest element of each row, as [rows, 1]. */
  rowMax(x: Tensor): Promise<Tensor>;
}

export interface MlpModel {
  /** W_l as [in, out] and b_l as [1, out], fixed point. */
  weights: Tensor[];
  biases: Tensor[];
  /** With `standardise`: the map z = (x - mean) * scale applied to the inputs, [1, features] each. */
  preprocessing?: { mean: Tensor; scale: Tensor };
}

const tensor = (shape: readonly number[], data: RingArray): Tensor => ({ shape: [...shape], data });

export function validateConfig(c: MlpConfig, features: number, outputs: number): void {
  if (c.layers.length < 2 || c.layers.some((w) => !Number.isInteger(w) || w < 1 || w > 4096))
    throw new ParameterError('layers are at least an input and an output width, each 1 to 4096');
  if (c.layers[0] !== features) throw new ParameterError(`the first layer has ${c.layers[0]} inputs, the data has ${features} features`);
  if (c.layers.at(-1) !== outputs) throw new ParameterError(`the last layer has ${c.layers.at(-1)} outputs, the targets have ${outputs}`);
  if (!Number.isInteger(c.batchSize) || c.batchSize < 1 || c.batchSize > 4096) throw new ParameterError('the batch size is 1 to 4096');
  if (!Number.isInteger(c.epochs) || c.epochs < 1 || c.epochs > 1000) throw new ParameterError('epochs are 1 to 1000');
  if (!(c.learningRate > 0) || !Number.isFinite(c.learningRate) || c.learningRate > 16)
    throw new ParameterError('the learning rate must be in (0, 16]');
  if (c.standardise) {
    if (c.standardise.bounds.length !== features) throw new ParameterError(`${c.standardise.bounds.length} feature bounds for ${features} features`);
    c.standardise.bounds.forEach(validateBound);
  }
  const step = stepConstant(c);
  // lr / batch in fixed point: 0 would train nothing, silently.
  if (step === 0n)
    throw new ParameterError(`learning rate / batch size = ${c.learningRate / c.batchSize} is below the fixed point's resolution 2^-16`);
}

/** lr / batch as a fixed-point constant: the SGD step of a batch's summed gradient. */
export const stepConstant = (c: MlpConfig): bigint => BigInt(Math.round((c.learningRate / c.batchSize) * 2 ** MLP_FRACTION_BITS));

/** A deterministic stream of uniform numbers in [0, 1) from the query's seed (SHA-256 in counter mode). */
export function seededUniform(seed: string, label: string): () => number {
  let counter = 0;
  let block = Buffer.alloc(0);
  let at = 0;
  return () => {
    if (at + 6 > block.length) {
      block = createHash('sha256').update(`${label}\0${seed}\0${counter++}`).digest();
      at = 0;
    }
    const v = block.readUIntBE(at, 6) / 2 ** 48;
    at += 6;
    return v;
  };
}

/** He-uniform initial weights, zero biases, fixed point: public and the same at both servers. */
export function initialModel(c: MlpConfig): { weights: Tensor[]; biases: Tensor[] } {
  const u = seededUniform(c.seed, 'weights');
  const weights: Tensor[] = [];
  const biases: Tensor[] = [];
  for (let l = 1; l < c.layers.length; l++) {
    const [fanIn, fanOut] = [c.layers[l - 1]!, c.layers[l]!];
    const limit = Math.sqrt(6 / fanIn);
    const w = Array.from({ length: fanIn * fanOut }, () => (2 * u() - 1) * limit);
    weights.push(tensor([fanIn, fanOut], ring.encodeFixed(w, MLP_FRACTION_BITS)));
    biases.push(tensor([1, fanOut], new BigUint64Array(fanOut)));
  }
  return { weights, biases };
}

/** The batches of every epoch: a seeded shuffle, the last batch of an epoch possibly smaller. */
export function batchOrder(n: number, c: MlpConfig): number[][][] {
  const u = seededUniform(c.seed, 'batches');
  return Array.from({ length: c.epochs }, () => {
    const idx = Array.from({ length: n }, (_, i) => i);
    for (let i = n - 1; i > 0; i--) {
      const j = Math.floor(u() * (i + 1));
      [idx[i], idx[j]] = [idx[j]!, idx[i]!];
    }
    const batches: number[][] = [];
    for (let i = 0; i < n; i += c.batchSize) batches.push(idx.slice(i, i + c.batchSize));
    return batches;
  });
}

export function rowsOf(x: Tensor, rows: readonly number[]): Tensor {
  const cols = x.shape[1]!;
  const out = new BigUint64Array(rows.length * cols);
  rows.forEach((r, i) => out.set(x.data.subarray(r * cols, (r + 1) * cols), i * cols));
  return tensor([rows.length, cols], out);
}

export function transpose(x: Tensor): Tensor {
  const [r, c] = x.shape as [number, number];
  const out = new BigUint64Array(r * c);
  for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) out[j * r + i] = x.data[i * c + j]!;
  return tensor([c, r], out);
}

/** x + b with b [1, cols] added to every row (local on shares). */
export function addRow(x: Tensor, b: Tensor): Tensor {
  const [r, c] = x.shape as [number, number];
  const out = x.data.slice();
  for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) out[i * c + j] = BigInt.asUintN(64, out[i * c + j]! + b.data[j]!);
  return tensor(x.shape, out);
}

/** Column sums [1, cols] (local on shares). */
export function sumRows(x: Tensor): Tensor {
  const [r, c] = x.shape as [number, number];
  const out = new BigUint64Array(c);
  for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) out[j] = BigInt.asUintN(64, out[j]! + x.data[i * c + j]!);
  return tensor([1, c], out);
}

const sub = (a: Tensor, b: Tensor): Tensor => tensor(a.shape, ring.sub(a.data, b.data));

/** Each row of x [r, c] with the row's value of v [r, 1] (broadcast), combined by op. */
function perRow(x: Tensor, v: Tensor, op: (a: bigint, b: bigint) => bigint): Tensor {
  const [r, c] = x.shape as [number, number];
  const out = new BigUint64Array(r * c);
  for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) out[i * c + j] = BigInt.asUintN(64, op(x.data[i * c + j]!, v.data[i]!));
  return tensor(x.shape, out);
}

function rowSums(x: Tensor): Tensor {
  const [r, c] = x.shape as [number, number];
  const out = new BigUint64Array(r);
  for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) out[i] = BigInt.asUintN(64, out[i]! + x.data[i * c + j]!);
  return tensor([r, 1], out);
}

/** x[i][j] * c[j] in the ring, without truncation (local on shares). */
export function columnProduct(x: Tensor, c: readonly bigint[]): RingArray {
  const [r, cols] = x.shape as [number, number];
  if (c.length !== cols) throw new ParameterError(`${c.length} column constants for ${cols} columns`);
  const out = new BigUint64Array(r * cols);
  for (let i = 0; i < r; i++) for (let j = 0; j < cols; j++) out[i * cols + j] = x.data[i * cols + j]! * c[j]!;
  return out;
}

export const fixed = (v: number, n: number): RingArray => ring.encodeFixed(new Array<number>(n).fill(v), MLP_FRACTION_BITS);
const zerosLike = (x: Tensor): Tensor => tensor(x.shape, new BigUint64Array(x.data.length));

/** Squarings in exp(x) ~ (1 + x / 2^8)^(2^8), and Newton steps of the reciprocal. */
export const EXP_SQUARINGS = 8;
export const RECIPROCAL_STEPS = 8;

/**
 * Softmax of each row in fixed point, by operations that exist on shares (CrypTen's approach):
 * subtract the row maximum (so every input is <= 0 and the row sum lies in [1, c]), exp by the
 * limit (1 + x / 256)^256 (8 squarings; exact in the limit, about 1 / 256 relative error in the
 * exponent for x near 0, and valid for x >= -256), the row sum's reciprocal by 8 Newton steps
 * y <- y (2 - s y) from y = 1 / (c + 1) (converges for s in (0, 2 (c + 1)); error below 2^-16
 * after 8 steps for c <= 16 classes... and within 2^-10 up to c = 1000), then the product.
 */
export async function softmaxRows(ops: TensorOps, z: Tensor): Promise<Tensor> {
  const [r, c] = z.shape as [number, number];
  const x = perRow(z, await ops.rowMax(z), (a, m) => a - m);
  let t = ops.addPublic(ops.scale(x, 1n << BigInt(MLP_FRACTION_BITS - EXP_SQUARINGS)), fixed(1, x.data.length));
  for (let k = 0; k < EXP_SQUARINGS; k++) t = await ops.mulFixed(t, t);
  const s = rowSums(t);
  let y = ops.addPublic(zerosLike(s), fixed(1 / (c + 1), r));
  for (let k = 0; k < RECIPROCAL_STEPS; k++) {
    const sy = await ops.mulFixed(s, y);
    y = await ops.mulFixed(y, ops.addPublic(tensor(sy.shape, ring.neg(sy.data)), fixed(2, r)));
  }
  const yRows = perRow(zerosLike(t), y, (_, v) => v);
  return ops.mulFixed(t, yRows);
}

/** The forward pass: each layer's input and the ReLU derivatives of the hidden layers. */
export async function forward(ops: TensorOps, m: MlpModel, x: Tensor): Promise<{ inputs: Tensor[]; derivatives: Tensor[]; out: Tensor }> {
  const inputs: Tensor[] = [];
  const derivatives: Tensor[] = [];
  let a = x;
  for (let l = 0; l < m.weights.length; l++) {
    inputs.push(a);
    const z = addRow(await ops.matmul(a, m.weights[l]!), m.biases[l]!);
    if (l === m.weights.length - 1) return { inputs, derivatives, out: z };
    const r = await ops.relu(z);
    derivatives.push(r.derivative);
    a = r.out;
  }
  throw new ParameterError('a model has at least one layer');
}

/** One SGD step on a batch: gradients of the squared error, W -= (lr / batch) dW. */
export async function step(
  ops: TensorOps,
  m: MlpModel,
  x: Tensor,
  y: Tensor,
  stepC: bigint,
  loss: MlpConfig['loss'] = 'mse',
  /** Receives the batch's output residual (prediction minus target), for the epoch's loss. */
  residual?: (r: Tensor) => void,
): Promise<MlpModel> {
  const { inputs, derivatives, out } = await forward(ops, m, x);
  // The output gradient, summed over the batch: out - y for the squared error (its half), or
  // softmax(out) - y for the cross-entropy.
  let delta = sub(loss === 'softmax' ? await softmaxRows(ops, out) : out, y);
  residual?.(delta);
  const weights = [...m.weights];
  const biases = [...m.biases];
  for (let l = m.weights.length - 1; l >= 0; l--) {
    const gradW = await ops.matmul(transpose(inputs[l]!), delta);
    const gradB = sumRows(delta);
    if (l > 0) delta = await ops.mask(await ops.matmul(delta, transpose(m.weights[l]!)), derivatives[l - 1]!);
    weights[l] = sub(m.weights[l]!, ops.scale(gradW, stepC));
    biases[l] = sub(m.biases[l]!, ops.scale(gradB, stepC));
  }
  return { weights, biases };
}

export interface TrainProgress {
  epoch: number;
  batch: number;
  batches: number;
}

/** One finished epoch: every row's output residual in the order the batches ran, [n, outputs]. */
export interface EpochResiduals {
  epoch: number;
  epochs: number;
  residual: Tensor;
}

/** The loss report divides its sum of squares by 2^(2 LOSS_PRESCALE_BITS) first, so it stays far from 2^63. */
const LOSS_PRESCALE_BITS = 4;

/**
 * The epoch's loss as the progress display shows it: the mean over rows of the squared residual,
 * sum_j (p_j - y_j)^2 (the squared error; with softmax, of the probabilities, the Brier score: the
 * cross-entropy needs a logarithm the engine does not have). One product of [1, n t] by [n t, 1],
 * so one truncation; residuals are scaled by 2^-4 first so the sum before truncation stays below
 * 2^(32 - 8 + log2(n t)) units, far from the 2^63 where the engine's truncation could fail.
 */
export async function epochLoss(ops: TensorOps, residual: Tensor): Promise<Tensor> {
  const rows = residual.shape[0]!;
  const k = residual.data.length;
  const r = ops.scale(tensor([1, k], residual.data), 1n << BigInt(MLP_FRACTION_BITS - LOSS_PRESCALE_BITS));
  const sum = await ops.matmul(r, transpose(r));
  return ops.scale(sum, BigInt(Math.round((2 ** (2 * LOSS_PRESCALE_BITS) / rows) * 2 ** MLP_FRACTION_BITS)));
}

/** Trains from the seeded start; x is [n, features], y is [n, outputs], both fixed point. */
export async function train(
  ops: TensorOps,
  x: Tensor,
  y: Tensor,
  c: MlpConfig,
  onBatch?: (p: TrainProgress) => void | Promise<void>,
  /**
   * Called before every batch with the sizes of the batches still to run, this one first, so a
   * backend can obtain the correlated randomness of many steps ahead (mlp-offline.ts).
   */
  beforeBatch?: (upcoming: readonly number[]) => Promise<void>,
  /** Called after every epoch with its residuals (the caller decides whether and how to report a loss). */
  afterEpoch?: (e: EpochResiduals) => Promise<void>,
): Promise<MlpModel> {
  validateConfig(c, x.shape[1]!, y.shape[1]!);
  const pre = c.standardise ? await standardise(ops, x, c.standardise.bounds) : undefined;
  if (pre) x = pre.z;
  const start = initialModel(c);
  // The public start enters the backend (on shares: party 0 holds it, party 1 zeros).
  let m: MlpModel = {
    weights: start.weights.map((w) => ops.addPublic(tensor(w.shape, new BigUint64Array(w.data.length)), w.data)),
    biases: start.biases.map((b) => ops.addPublic(tensor(b.shape, new BigUint64Array(b.data.length)), b.data)),
  };
  const stepC = stepConstant(c);
  const order = batchOrder(x.shape[0]!, c);
  const sizes = order.flat().map((rows) => rows.length);
  let done = 0;
  const t = y.shape[1]!;
  for (let e = 0; e < order.length; e++) {
    const residuals = afterEpoch ? new BigUint64Array(x.shape[0]! * t) : undefined;
    let at = 0;
    const keep = residuals ? (r: Tensor) => void residuals.set(r.data, (at += r.data.length) - r.data.length) : undefined;
    for (let b = 0; b < order[e]!.length; b++) {
      const rows = order[e]![b]!;
      await beforeBatch?.(sizes.slice(done++));
      m = await step(ops, m, rowsOf(x, rows), rowsOf(y, rows), stepC, c.loss, keep);
      await onBatch?.({ epoch: e + 1, batch: b + 1, batches: order[e]!.length });
    }
    if (residuals) await afterEpoch!({ epoch: e + 1, epochs: order.length, residual: tensor([at / t, t], residuals.subarray(0, at)) });
  }
  return pre ? { ...m, preprocessing: { mean: pre.mean, scale: pre.scale } } : m;
}

/**
 * Division by 2^f rounded to the nearest: the engine's local truncation returns floor(x / 2^f) or
 * one more, with probability equal to the dropped fraction, so its expected value is x / 2^f; a
 * rounded reference has no bias against it, where a floored one drifts by half a unit per product.
 */
const roundFixed = (x: RingArray): RingArray =>
  ring.shiftRightSigned(
    x.map((v) => BigInt.asUintN(64, v + (1n << BigInt(MLP_FRACTION_BITS - 1)))),
    MLP_FRACTION_BITS,
  );

/** The plaintext reference backend: ring arithmetic, every product rounded to the nearest unit of 2^-16. */
export const plainOps: TensorOps = {
  async matmul(a, b) {
    const [m, k] = a.shape as [number, number];
    const n = b.shape[1]!;
    if (b.shape[0] !== k) throw new ParameterError(`cannot multiply [${a.shape}] by [${b.shape}]`);
    return tensor([m, n], roundFixed(ring.matmul(a.data, b.data, m, k, n)));
  },
  async relu(z) {
    const derivative = z.data.map((v) => (BigInt.asIntN(64, v) >= 0n ? 1n : 0n));
    return { out: tensor(z.shape, ring.mul(z.data, derivative)), derivative: tensor(z.shape, derivative) };
  },
  async mask(x, bits) {
    return tensor(x.shape, ring.mul(x.data, bits.data));
  },
  scale(x, c) {
    return tensor(x.shape, roundFixed(ring.scale(x.data, c)));
  },
  scaleColumns(x, c) {
    return tensor(x.shape, roundFixed(columnProduct(x, c)));
  },
  addPublic(x, c) {
    return tensor(x.shape, ring.add(x.data, c));
  },
  async mulFixed(a, b) {
    return tensor(a.shape, roundFixed(ring.mul(a.data, b.data)));
  },
  async rowMax(x) {
    const [r, c] = x.shape as [number, number];
    const out = new BigUint64Array(r);
    for (let i = 0; i < r; i++) {
      let m = BigInt.asIntN(64, x.data[i * c]!);
      for (let j = 1; j < c; j++) if (BigInt.asIntN(64, x.data[i * c + j]!) > m) m = BigInt.asIntN(64, x.data[i * c + j]!);
      out[i] = BigInt.asUintN(64, m);
    }
    return tensor([r, 1], out);
  },
};

/** A released model's parameters as reals; `preprocessing` is the standardisation it was trained with. */
export interface RealModel {
  weights: number[][][];
  biases: number[][];
  preprocessing?: { mean: number[]; scale: number[] } | null;
}

/** Scores of the output layer for plaintext inputs (reals in, reals out), for a released model. */
export function predictScores(model: RealModel, rows: readonly number[][]): number[][] {
  const pre = model.preprocessing;
  return rows.map((raw) => {
    let a = pre ? raw.map((v, j) => (v - pre.mean[j]!) * pre.scale[j]!) : raw;
    model.weights.forEach((w, l) => {
      const z = model.biases[l]!.map((b, j) => a.reduce((s, v, i) => s + v * w[i]![j]!, b));
      a = l === model.weights.length - 1 ? z : z.map((v) => (v >= 0 ? v : 0));
    });
    return a;
  });
}

export const argmax = (xs: readonly number[]): number => xs.reduce((best, v, i) => (v > xs[best]! ? i : best), 0);
