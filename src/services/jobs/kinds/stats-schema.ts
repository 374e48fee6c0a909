/**
 * Differentially private aggregates (seed 001, PMDP and sPMDP; docs/differential-privacy.md): what a
 * query client asks for and what it gets back. Released values arrive under the client's own key.
 */
import { z } from 'zod';

export const statsKinds = ['count', 'sum', 'mean', 'histogram', 'mode'] as const;

export const statsSpec = z.object({
  datasets: z.array(z.string().min(1).max(200)).min(1).max(64),
  column: z.string().min(1).max(200),
  kind: z.enum(statsKinds),
  /** Clipping bounds in the column's units (sum, mean). */
  lo: z.number().finite().optional(),
  hi: z.number().finite().optional(),
  /** Bin edges (histogram, mode), strictly increasing. */
  edges: z.array(z.number().finite()).min(2).max(1000).optional(),
  /** Privacy loss charged to every dataset; a decimal string keeps it exact. */
  epsilon: z.union([z.string().max(40), z.number().positive().max(1e6)]),
  mechanism: z.enum(['laplace', 'gaussian']).default('laplace'),
  delta: z.number().optional(),
  mode: z.enum(['pmdp', 'spmdp']).default('pmdp'),
  /** Sample-and-aggregate blocks (mean). */
  blocks: z.number().int().optional(),
  /** Sample-and-aggregate: the public size of every block (the divisor is blocks * blockSize). */
  blockSize: z.number().int().optional(),
});

export const statsResult = z.object({
  kind: z.enum(statsKinds),
  /** Noisy values, serialised BCP ciphertexts under the query client's key, base64. */
  released: z.string(),
  fractionBits: z.number().int().nonnegative(),
  /** Sample-and-aggregate: the released value divided by this is the mean, in encoded units. */
  divisor: z.string().optional(),
  /** mode: the bin the exponential mechanism chose. */
  choice: z.number().int().nonnegative().optional(),
  epsilon: z.number(),
  mode: z.enum(['pmdp', 'spmdp']),
  /** Epsilon left on each dataset when the query finished. */
  budgetRemaining: z.record(z.string(), z.number()),
});

export type StatsSpec = z.input<typeof statsSpec>;
export type StatsRawResult = z.infer<typeof statsResult>;
