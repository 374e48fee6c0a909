/**
 * The released model file (docs/neural-networks.md) and how it is read out of the opened packs,
 * whoever opened them: the owners jointly (model-decryption.ts) or a granted query client alone
 * (QueryClient.releaseModel).
 */
import { MODEL_OFFSET, MODEL_SLOT_BITS } from '../analytics/mlp-two-server.js';
import { ParameterError } from '../crypto/errors.js';

/** The released model: plain JSON that `ciphermine predict` reads (docs/neural-networks.md). */
export interface ModelFile {
  format: 'ciphermine-mlp/v1';
  job: string;
  layers: number[];
  features: string[];
  task: 'classification' | 'regression';
  classes: number[] | null;
  /** weights[l][i][j]: input i to unit j of layer l + 1. */
  weights: number[][][];
  biases: number[][];
  /**
   * The standardisation the model was trained with, applied to raw inputs before the first layer:
   * z_j = (x_j - mean[j]) * scale[j]. Null when the job did not standardise.
   */
  preprocessing: { mean: number[]; scale: number[] } | null;
}

/** What the job says about the model: its shape, and how its values are encoded. */
export interface ModelMeta {
  layers: number[];
  features: string[];
  task: 'classification' | 'regression';
  classes: number[] | null;
  fractionBits: number;
  parameters: number;
  standardised?: boolean;
}

/** The parameters from the opened packs: 66-bit slots holding w + 2^63. */
export function unpackModel(packs: readonly bigint[], count: number): bigint[] {
  const per = Math.ceil(count / packs.length);
  const mask = (1n << BigInt(MODEL_SLOT_BITS)) - 1n;
  const out: bigint[] = [];
  for (const p of packs) {
    let v = p < 0n ? 0n : p;
    for (let s = 0; s < per && out.length < count; s++, v >>= BigInt(MODEL_SLOT_BITS)) out.push((v & mask) - MODEL_OFFSET);
  }
  if (out.length !== count) throw new ParameterError('the model does not hold its parameters');
  return out;
}

export function modelFile(job: string, meta: ModelMeta, values: bigint[]): ModelFile {
  const scale = 2 ** meta.fractionBits;
  const weights: number[][][] = [];
  const biases: number[][] = [];
  let at = 0;
  const next = () => Number(values[at++]!) / scale;
  for (let l = 1; l < meta.layers.length; l++) {
    const [fanIn, fanOut] = [meta.layers[l - 1]!, meta.layers[l]!];
    weights.push(Array.from({ length: fanIn }, () => Array.from({ length: fanOut }, next)));
    biases.push(Array.from({ length: fanOut }, next));
  }
  const d = meta.layers[0]!;
  const preprocessing = meta.standardised ? { mean: Array.from({ length: d }, next), scale: Array.from({ length: d }, next) } : null;
  const { layers, features, task, classes } = meta;
  return { format: 'ciphermine-mlp/v1', job, layers, features, task, classes, weights, biases, preprocessing };
}
