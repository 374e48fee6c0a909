/**
 * Secure prediction (seed 002): a query client runs a model that stayed in shares at the two
 * servers on secret-shared records, and receives only the predictions, under its own key.
 */
import { z } from 'zod';

export const predictSpec = z.object({
  /** The `train` job whose model is used; this client must have run it. */
  model: z.string().min(1).max(200),
  /**
   * Secret-shared uploads (`owner upload --for prediction`, or `--for training`, whose labels are
   * ignored) with the model's feature columns, granted with scope `predict`.
   */
  datasets: z.array(z.string().min(1).max(200)).min(1).max(64),
});

export const predictResult = z.object({
  /** One BCP ciphertext per row (datasets in the order given) under the client's key: the class index, or the value in fixed point. */
  predictions: z.string(),
  rows: z.number().int(),
  task: z.enum(['classification', 'regression']),
  classes: z.array(z.number()).nullable(),
  fractionBits: z.number().int(),
});

export type PredictSpec = z.input<typeof predictSpec>;
export type PredictRawResult = z.infer<typeof predictResult>;
