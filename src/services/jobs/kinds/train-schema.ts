/**
 * Neural-network training on two clouds (seed 002): what a query client asks for and what the job
 * returns. The model comes back as ciphertexts under the data owners' joint key; the owners decrypt
 * it together (`ciphermine owner decrypt-model`), each with its own key.
 */
import { z } from 'zod';

export const trainSpec = z.object({
  /** Granted training uploads (`owner upload --for training`), with the same columns and classes. */
  datasets: z.array(z.string().min(1).max(200)).min(1).max(64),
  /** Widths from input to output, e.g. [64, 32, 10]; hidden layers use ReLU. */
  layers: z.array(z.number().int().min(1).max(4096)).min(2).max(16),
  epochs: z.number().int().min(1).max(1000).default(10),
  batchSize: z.number().int().min(1).max(4096).default(64),
  learningRate: z.number().positive().max(16).default(0.5),
  /** Seeds the initial weights and the batch order: the same seed gives the same training. */
  seed: z.string().min(1).max(200).default('ciphermine'),
  /** `softmax` (cross-entropy, classification only) or `mse`; default: softmax for classification, mse for regression. */
  loss: z.enum(['mse', 'softmax']).optional(),
  /**
   * Standardise every feature (global mean and standard deviation over all owners' records) on
   * shares before training; neither server sees the mean or the scale, which leave with the model.
   */
  standardise: z.boolean().default(false),
  /**
   * The engine's correlated randomness: `dealer` (the deployment's dealer process; refused if the
   * servers run none) or `ot` (the two servers alone). Default: the servers' configuration.
   */
  provider: z.enum(['dealer', 'ot']).optional(),
  /**
   * Report each epoch's loss to this client, encrypted under its key (in the job's progress and
   * result); neither server sees it. Costs one product and one conversion per epoch.
   */
  reportLoss: z.boolean().default(true),
});

export const trainResult = z.object({
  /**
   * Every parameter (W_1, b_1, W_2, b_2, ..., row-major) in fixed point, packed: BCP ciphertexts
   * under the joint key of sum_s (w_s + 2^63) 2^(66 s), base64.
   */
  model: z.string(),
  parameters: z.number().int(),
  /** The owners' joint public key, serialised, base64, and the owners in key order. */
  jointKey: z.string(),
  owners: z.array(z.string()),
  layers: z.array(z.number().int()),
  features: z.array(z.string()),
  task: z.enum(['classification', 'regression']),
  classes: z.array(z.number()).nullable(),
  fractionBits: z.number().int(),
  epochs: z.number().int(),
  loss: z.enum(['mse', 'softmax']),
  /** Seconds per epoch at the compute server: the online part, and the provider's offline part. */
  secondsPerEpoch: z.number(),
  offlineSecondsPerEpoch: z.number(),
  /** Seconds per epoch spent on the loss report (not in `secondsPerEpoch`). */
  lossSecondsPerEpoch: z.number().default(0),
  /**
   * Each epoch's training loss (mean squared residual per row; for softmax, of the probabilities),
   * BCP ciphertexts under the client's key, fixed point; absent when `reportLoss` was off.
   */
  losses: z.string().optional(),
  provider: z.enum(['dealer', 'ot']),
  /** Whether the model ends with the standardisation's mean and scale (one per feature each). */
  standardised: z.boolean().default(false),
});

export type TrainSpec = z.input<typeof trainSpec>;
export type TrainRawResult = z.infer<typeof trainResult>;
