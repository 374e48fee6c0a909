/**
 * What a query client sees of a job while it runs, one schema for the server's answer and the
 * client library's parse. It carries no result and no key: `GET /v1/jobs/:id/result` gives the
 * result, under the client's own key, once the job is done.
 */
import { z } from 'zod';

/**
 * A value only the job's client can read while the job runs (a training's loss per epoch): BCP
 * ciphertexts under the client's key, base64, in fixed point with `fractionBits`, named by `label`.
 */
export const jobSecretProgressSchema = z.object({
  label: z.string().max(40),
  fractionBits: z.number().int().min(0).max(62),
  values: z.string().max(100_000),
});

export const jobProgressSchema = z.object({
  done: z.number(),
  total: z.number(),
  unit: z.string(),
  /** Public words on where the job is (a training's epoch), beyond `done` of `total` units. */
  note: z.string().max(200).optional(),
  secret: jobSecretProgressSchema.optional(),
});

export const jobStatusSchema = z.object({
  id: z.string(),
  kind: z.string(),
  state: z.enum(['queued', 'running', 'done', 'failed']),
  phase: z.string(),
  progress: jobProgressSchema.nullable(),
  error: z.string().nullable(),
  errorCode: z.string().nullable(),
  createdAt: z.number(),
  startedAt: z.number().nullable(),
  updatedAt: z.number(),
  finishedAt: z.number().nullable(),
  /** Seconds per phase (and per step where a kind records them). */
  timings: z.record(z.string(), z.number()),
});

export type JobStatus = z.infer<typeof jobStatusSchema>;
export type JobProgress = z.infer<typeof jobProgressSchema>;
export type JobSecretProgress = z.infer<typeof jobSecretProgressSchema>;

export const jobSubmission = z.object({
  kind: z.string().min(1).max(100),
  spec: z.unknown(),
});
