/**
 * The participants' side of job mailboxes (jobs/mailbox.ts): an authenticated participant of a job
 * (a party its kind names, e.g. a federated job's hosts) polls for the messages addressed to it,
 * with the job's state, and posts its own. Anyone else is answered 404, as if the job did not exist.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { conflict, notFound, badRequest } from './http-errors.js';
import type { JobRunner } from './jobs/runner.js';
import { MAX_MESSAGE_BYTES } from './jobs/mailbox.js';
import type { JobRow, Party, Store } from './store/index.js';

export interface MailboxRouteDeps {
  store: Store;
  runner: JobRunner;
  auth: (req: FastifyRequest) => Promise<Party>;
  parse: <T>(schema: z.ZodType<T>, value: unknown) => T;
}

const idParam = z.object({ id: z.string().min(1).max(200) });
const readQuery = z.object({ after: z.coerce.number().int().min(0).default(0) });
const postBody = z.object({
  topic: z.string().regex(/^[a-z0-9-]{1,40}$/, 'a topic is 1 to 40 of a-z, 0-9 and -'),
  data: z
    .string()
    .max(Math.ceil((MAX_MESSAGE_BYTES * 4) / 3) + 4)
    .regex(/^[A-Za-z0-9+/]*={0,2}$/, 'data is base64'),
});

export function registerMailboxRoutes(app: FastifyInstance, deps: MailboxRouteDeps): void {
  const { store, runner, auth, parse } = deps;

  const participantOf = async (req: FastifyRequest): Promise<{ party: Party; job: JobRow }> => {
    const party = await auth(req);
    const { id } = parse(idParam, req.params);
    const job = await store.job(id);
    const kind = job && runner.kind(job.kind);
    const members = kind?.participants?.(kind.spec.parse(job!.spec)) ?? [];
    if (!job || !members.includes(party.id)) throw notFound(`no job ${id}`);
    return { party, job };
  };

  app.get('/v1/jobs/:id/mailbox', async (req) => {
    const { party, job } = await participantOf(req);
    const { after } = parse(readQuery, req.query);
    const box = runner.mailboxes.of(job.id);
    const messages = box.read(party.id, after);
    return {
      epoch: box.epoch,
      state: job.state,
      phase: job.phase,
      error: job.error ?? null,
      errorCode: job.errorCode ?? null,
      messages: messages.map((m) => ({ seq: m.seq, topic: m.topic, data: m.data.toString('base64') })),
    };
  });

  app.post('/v1/jobs/:id/mailbox', async (req) => {
    const { party, job } = await participantOf(req);
    if (job.state === 'done' || job.state === 'failed') throw conflict(`the job is ${job.state}`);
    const { topic, data } = parse(postBody, req.body);
    const bytes = Buffer.from(data, 'base64');
    if (bytes.length > MAX_MESSAGE_BYTES) throw badRequest(`a message holds at most ${MAX_MESSAGE_BYTES} bytes`);
    return { accepted: runner.mailboxes.of(job.id).post(party.id, topic, bytes) };
  });
}
