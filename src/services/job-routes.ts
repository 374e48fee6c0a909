/**
 * The compute server's job API, the same for every job kind: submit (an id at once, 202), follow
 * (status with phase, progress and timings), list, and fetch the result when done. A query client
 * sees only its own jobs; another client's job is answered 404, as if it did not exist.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { conflict, notFound } from './http-errors.js';
import { jobStatusSchema, jobSubmission, type JobStatus } from './jobs/job-status.js';
import type { JobRunner } from './jobs/runner.js';
import type { JobRow, Party, Store } from './store/index.js';

export interface JobRouteDeps {
  store: Store;
  runner: JobRunner;
  auth: (req: FastifyRequest, role: Party['role']) => Promise<Party>;
  parse: <T>(schema: z.ZodType<T>, value: unknown) => T;
}

const idParam = z.object({ id: z.string().min(1).max(200) });
const listQuery = z.object({ limit: z.coerce.number().int().min(1).max(1000).default(100) });

/** An allowlist: the schema keeps only the status fields, whatever the row gains later. */
function statusOf(job: JobRow): JobStatus {
  return jobStatusSchema.parse(job);
}

export function registerJobRoutes(app: FastifyInstance, deps: JobRouteDeps): void {
  const { store, runner, auth, parse } = deps;

  const ownJob = async (req: FastifyRequest): Promise<JobRow> => {
    const client = await auth(req, 'client');
    const { id } = parse(idParam, req.params);
    const job = await store.job(id);
    if (!job || job.clientId !== client.id) throw notFound(`no job ${id}`);
    return job;
  };

  app.get('/v1/job-kinds', async () => ({ kinds: runner.kindNames() }));

  app.post('/v1/jobs', async (req, reply) => {
    const client = await auth(req, 'client');
    const { kind, spec } = parse(jobSubmission, req.body);
    const id = await runner.submit(client, kind, spec);
    reply.status(202);
    return { id, kind };
  });

  app.get('/v1/jobs', async (req) => {
    const client = await auth(req, 'client');
    const { limit } = parse(listQuery, req.query);
    return { jobs: (await store.jobsOf(client.id, limit)).map(statusOf) };
  });

  app.get('/v1/jobs/:id', async (req) => statusOf(await ownJob(req)));

  app.get('/v1/jobs/:id/result', async (req) => {
    const job = await ownJob(req);
    if (job.state === 'failed') throw conflict(`the job failed: ${job.error}`);
    if (job.state !== 'done') throw conflict(`the job is ${job.state}`);
    return { kind: job.kind, result: job.result };
  });
}
