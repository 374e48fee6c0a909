/**
 * k-means under multiple keys (seed 000): what a query client (QC) asks for and what it gets back.
 * The centroid sums arrive under the client's own BCP key; the sizes and assignments in the clear,
 * as the seed releases them (docs/protocols.md lists what each party learns).
 */
import { z } from 'zod';

const datasetId = z.string().min(1).max(200);

export const kmeansSpec = z.object({
  /** Granted datasets, in order; records are numbered across them in this order. */
  datasets: z.array(datasetId).min(1).max(64),
  k: z.number().int().min(2).max(1000),
  maxIter: z.number().int().min(1).max(10_000).default(100),
  /** 0-based records used as the initial centroids (default: the first k). */
  initIndices: z.array(z.number().int().min(0)).optional(),
  /**
   * SMDM's comparisons: `hidden` (the engine's argmin; the key server sees only masked values) or
   * `multiplicative`, the seed's SDC, kept only as an explicit opt-in: its key server reads
   * log2 |Delta| of every comparison to within about one bit (docs/leakage.md).
   */
  comparison: z.enum(['hidden', 'multiplicative']).default('hidden'),
});

export const kmeansResult = z.object({
  /** k x m centroid sums, serialised BCP ciphertexts under the query client's key, base64. */
  sums: z.string(),
  /** Cluster sizes, decimal. */
  sizes: z.array(z.string().regex(/^\d+$/)),
  /** Cluster of each record. */
  assignments: z.array(z.number().int().nonnegative()),
  iterations: z.number().int().nonnegative(),
  converged: z.boolean(),
  columns: z.array(z.string()),
  fractionBits: z.number().int().nonnegative(),
});

export type KMeansSpec = z.input<typeof kmeansSpec>;
export type KMeansRawResult = z.infer<typeof kmeansResult>;
