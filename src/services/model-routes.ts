/**
 * Joint decryption of a trained model by its data owners (seed 002; crypto/joint-decryption.ts).
 * The compute server only relays: each owner posts, for every other owner, its partial decryption
 * and proof sealed with AES-GCM under a key from their X25519 agreement, so the compute server
 * (which holds the model ciphertexts) never sees a partial decryption, and cannot combine them.
 * An owner takes part only in models trained on its data.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { conflict, notFound } from './http-errors.js';
import type { Party, Store } from './store/index.js';

export interface ModelRouteDeps {
  store: Store;
  auth: (req: FastifyRequest, role: Party['role']) => Promise<Party>;
  parse: <T>(schema: z.ZodType<T>, value: unknown) => T;
}

const idParam = z.object({ id: z.string().min(1).max(200) });
const partialsBody = z.object({
  partials: z
    .array(
      z.object({
        to: z.string().min(1).max(200),
        envelope: z
          .string()
          .min(1)
          .max(64 << 20),
      }),
    )
    .max(64),
});

const blobName = (from: string, to: string) => `partial:${from}:${to}`;

export function registerModelRoutes(app: FastifyInstance, deps: ModelRouteDeps): void {
  const { store, auth, parse } = deps;

  /** The finished training job, if `owner` is one of its model's owners. */
  const modelOf = async (req: FastifyRequest) => {
    const owner = await auth(req, 'owner');
    const { id } = parse(idParam, req.params);
    const job = await store.job(id);
    const result = job?.kind === 'train' && job.state === 'done' ? (job.result as { owners: string[]; model: string; jointKey: string }) : undefined;
    if (!job || job.kind !== 'train' || (result && !result.owners.includes(owner.id))) throw notFound(`no model of yours from job ${id}`);
    if (!result) throw conflict(`job ${id} is ${job.state}: no model yet`);
    return { owner, job, result };
  };

  app.get('/v1/jobs/:id/model', async (req) => {
    const { owner, job, result } = await modelOf(req);
    const owners = await Promise.all(
      [...new Set(result.owners)].map(async (id) => {
        const p = (await store.party(id))!;
        return { id, bcpPublicKey: p.bcpPublicKey.toString('base64'), x25519PublicKey: p.x25519PublicKey! };
      }),
    );
    const partials: Array<{ from: string; envelope: string }> = [];
    for (const o of owners) {
      if (o.id === owner.id) continue;
      const blob = await store.jobBlob(job.id, blobName(o.id, owner.id));
      if (blob) partials.push({ from: o.id, envelope: blob[0]!.toString('base64') });
    }
    const posted = (await store.jobBlob(job.id, `posted:${owner.id}`)) !== undefined;
    return { model: result.model, jointKey: result.jointKey, owners, partials, posted, job: job.result };
  });

  app.post('/v1/jobs/:id/partials', async (req) => {
    const { owner, job, result } = await modelOf(req);
    const { partials } = parse(partialsBody, req.body);
    const others = new Set(result.owners.filter((o) => o !== owner.id));
    if (partials.length !== others.size || partials.some((p) => !others.has(p.to)))
      throw conflict(`post one sealed partial decryption for each other owner (${[...others].join(', ')})`);
    for (const p of partials) await store.putJobBlob(job.id, blobName(owner.id, p.to), [Buffer.from(p.envelope, 'base64')]);
    await store.putJobBlob(job.id, `posted:${owner.id}`, [Buffer.alloc(0)]);
    return { posted: partials.length };
  });
}
