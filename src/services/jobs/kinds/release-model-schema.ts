/**
 * Releasing a trained model to the query client that trained it, under the client's own key
 * (seed 002): instead of, or besides, the owners' joint decryption, when every owner of the
 * training data grants the client scope `model`.
 */
import { z } from 'zod';

export const releaseModelSpec = z.object({
  /** The `train` job whose model is released; this client must have run it. */
  model: z.string().min(1).max(200),
});

export const releaseModelResult = z.object({
  /**
   * Every parameter (W_1, b_1, ..., then the standardisation's mean and scale) in fixed point,
   * packed as for the owners: BCP ciphertexts under the client's key of sum_s (w_s + 2^63) 2^(66 s), base64.
   */
  model: z.string(),
  parameters: z.number().int(),
  layers: z.array(z.number().int()),
  features: z.array(z.string()),
  task: z.enum(['classification', 'regression']),
  classes: z.array(z.number()).nullable(),
  fractionBits: z.number().int(),
  standardised: z.boolean(),
});

export type ReleaseModelSpec = z.input<typeof releaseModelSpec>;
export type ReleaseModelRawResult = z.infer<typeof releaseModelResult>;
