/**
 * What a query client sees of a job while it runs, one schema for the server's answer and the
 * client library's parse. It carries no result and no key: `GET /v1/jobs/:id/result` gives the
 * result, under the client's own key, once the job is done.
 */
import { z } from 'zod';

export const jobProgressSchema = z.object({ done: z.number(), total: z.number(), unit: z.string() });

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

export const jobSubmission = z.object({
  kind: z.string().min(1).max(100),
  spec: z.unknown(),
});
