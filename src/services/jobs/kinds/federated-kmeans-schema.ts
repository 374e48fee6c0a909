/**
 * Federated k-means (seed 003): what a query client (or a host) asks for and what the job records.
 * The hosts keep their records; the job only adds up their encrypted statistics, so its result holds
 * no centres, sizes or assignments: the hosts learn those (docs/federated.md).
 */
import { z } from 'zod';

const partyId = z.string().min(1).max(200);

export const federatedKmeansSpec = z
  .object({
    /** The hosts' party ids (registered parties, each with its own BCP key), in the order their records are numbered. */
    hosts: z
      .array(partyId)
      .min(2)
      .max(64)
      .refine((hs) => new Set(hs).size === hs.length, 'a host is listed twice'),
    /** The feature columns every host's table must have, in order. */
    columns: z.array(z.string().min(1).max(200)).min(1).max(1000),
    k: z.number().int().min(2).max(1000),
    maxIter: z.number().int().min(1).max(10_000).default(100),
    /** Stop when every centre moves less than this (Euclidean, normalised units), like scikit-learn's `tol`. */
    tolerance: z.number().positive().finite().default(1e-4),
    /** Seed 003's private mean (`mean`, the default), also dividing by the global standard deviation (`zscore`), or none. */
    normalize: z.enum(['none', 'mean', 'zscore']).default('mean'),
    /**
     * The initial centres: row `row` of host number `host` (0-based), one per cluster, of which only
     * that host learns it is its row; or `random`: every host proposes k random rows of its own and
     * the compute server takes each cluster's from a host it draws uniformly, without seeing them.
     */
    init: z.union([z.array(z.object({ host: z.number().int().min(0), row: z.number().int().min(0) })), z.literal('random')]),
    fractionBits: z.number().int().min(0).max(52).default(16),
    /** Largest |value| a host may hold (hosts refuse to encode beyond it); bounds the bit budget. */
    maxAbs: z
      .number()
      .positive()
      .finite()
      .default(2 ** 20),
    /** How long the job waits for a host's message before it fails naming the host. */
    hostTimeoutSeconds: z.number().positive().max(86_400).default(300),
    /**
     * Differentially private totals: discrete Laplace noise from both servers (sPMDP) on the moments
     * and every iteration's sums and counts, epsilon in total (federated-kmeans-noise.ts).
     */
    epsilon: z.number().positive().max(1000).optional(),
  })
  .refine((s) => s.epsilon === undefined || s.normalize !== 'zscore', {
    message: 'differentially private z-scores are not supported yet (use normalize mean or none with epsilon)',
    path: ['epsilon'],
  })
  .refine((s) => s.init === 'random' || s.init.length === s.k, { message: 'init names one row per cluster (k of them)', path: ['init'] })
  .refine((s) => s.init === 'random' || s.init.every((i) => i.host < s.hosts.length), {
    message: 'init names a host beyond the host list',
    path: ['init'],
  });

export const federatedKmeansResult = z.object({
  iterations: z.number().int().nonnegative(),
  /** True when the centres moved less than the tolerance before the iteration limit. */
  converged: z.boolean(),
  hosts: z.number().int().min(2),
  columns: z.array(z.string()),
  normalize: z.enum(['none', 'mean', 'zscore']),
  fractionBits: z.number().int().nonnegative(),
  /** The total epsilon of the noisy totals; null: exact totals. */
  epsilon: z.number().positive().nullable(),
});

export type FederatedKMeansSpec = z.input<typeof federatedKmeansSpec>;
export type FederatedKMeansRawResult = z.infer<typeof federatedKmeansResult>;

/** What the job sends each host first: the job key its statistics are encrypted under, and its part of the spec. */
export const hostStart = z.object({
  jobKey: z.string(),
  hostIndex: z.number().int().min(0),
  columns: z.array(z.string()),
  k: z.number().int(),
  maxIter: z.number().int(),
  tolerance: z.number(),
  normalize: z.enum(['none', 'mean', 'zscore']),
  fractionBits: z.number().int(),
  maxAbs: z.number(),
  /** (cluster, local row) of the initial centres this host holds, or `random`: propose k rows of its own. */
  init: z.union([z.array(z.object({ cluster: z.number().int(), row: z.number().int() })), z.literal('random')]),
});
export type HostStart = z.infer<typeof hostStart>;

/** A host's message in a round: its encrypted vector, or its decision to stop. */
export const hostRound = z.union([
  z.object({ cts: z.string() }),
  z.object({ stop: z.literal(true), converged: z.boolean() }),
  z.object({ abort: z.string().max(500) }),
]);
export type HostRound = z.infer<typeof hostRound>;

/** A round's totals as released to one host: packs of `count` signed `slotBits`-bit slots under its key. */
export const release = z.object({
  slotBits: z.number().int().min(2).max(8192),
  count: z.number().int().min(1).max(1_000_000),
  cts: z.string(),
});
