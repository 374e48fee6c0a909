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
});

export const trainResult = z.object({
  /** Every parameter (W_1, b_1, W_2, b_2, ..., row-major), fixed point, BCP ciphertexts under the joint key, base64. */
  model: z.string(),
  /** The owners' joint public key, serialised, base64, and the owners in key order. */
  jointKey: z.string(),
  owners: z.array(z.string()),
  layers: z.array(z.number().int()),
  features: z.array(z.string()),
  task: z.enum(['classification', 'regression']),
  classes: z.array(z.number()).nullable(),
  fractionBits: z.number().int(),
  epochs: z.number().int(),
  /** Seconds of training per epoch (online and offline together), for the record. */
  secondsPerEpoch: z.number(),
});

export type TrainSpec = z.input<typeof trainSpec>;
export type TrainRawResult = z.infer<typeof trainResult>;
