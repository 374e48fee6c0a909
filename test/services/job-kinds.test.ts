/**
 * The job framework on its own: a new capability is one job kind. `count-records` below is the
 * whole of one (schemas, admission, a run in checkpointed steps); the server runs it like k-means,
 * with progress, a stored result, typed errors for a bad spec or an unknown kind, and its checkpoint
 * read back on resumption.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { z } from 'zod';
import { FixedPointCodec } from '../../src/crypto/index.js';
import { DataOwner } from '../../src/clients/data-owner.js';
import { QueryClient } from '../../src/clients/query-client.js';
import { ApiError } from '../../src/clients/api.js';
import { defineJobKind, grantedDatasets } from '../../src/index.js';
import { startServices, type Services } from './services-harness.js';

// --- the whole job kind ---
const countRecords = defineJobKind({
  name: 'count-records',
  description: 'how many records the granted datasets hold (exact; for tests)',
  spec: z.object({ datasets: z.array(z.string()).min(1) }),
  result: z.object({ records: z.number().int(), resumedFrom: z.number().int() }),
  async admit({ services, client }, spec) {
    await grantedDatasets(services.store, client, spec.datasets, 'stats');
    return { spec };
  },
  async run(ctx) {
    const cp = await ctx.latestCheckpoint();
    let records = (cp?.state as { records: number } | undefined)?.records ?? 0;
    for (let i = cp?.step ?? 0; i < ctx.spec.datasets.length; i++) {
      records += (await ctx.services.store.dataset(ctx.spec.datasets[i]!))!.rows;
      await ctx.saveCheckpoint({ step: i + 1, state: { records }, data: null }, { done: i + 1, total: ctx.spec.datasets.length, unit: 'dataset' });
    }
    return { records, resumedFrom: cp?.step ?? 0 };
  },
});
// --- end of the job kind ---

describe('a job kind added by a deployment', () => {
  let s: Services;
  let client: QueryClient;
  let datasets: string[];
  before(async () => {
    s = await startServices(512, { extraJobKinds: [countRecords] });
    const owner = await DataOwner.register(s.cs.url, 'owner');
    client = await QueryClient.register(s.cs.url, 'client');
    const codec = new FixedPointCodec({ fractionBits: 4, maxAbs: 10 });
    datasets = [];
    for (const n of [3, 5]) {
      const id = await owner.upload(`d${n}`, { columns: ['x'], rows: Array.from({ length: n }, (_, i) => [i]) }, codec);
      await owner.grant(id, client.id);
      datasets.push(id);
    }
  });
  after(() => s.close());

  it('runs like any other kind: id at once, progress, a result checked against its schema', async () => {
    const job = await client.submit('count-records', { datasets });
    const st = await client.waitFor(job);
    assert.equal(st.state, 'done', st.error ?? '');
    assert.equal(st.kind, 'count-records');
    assert.deepEqual(st.progress, { done: 2, total: 2, unit: 'dataset' });
    assert.deepEqual(await client.rawResult(job, countRecords.result), { records: 8, resumedFrom: 0 });
    assert.ok((await client.jobs()).some((j) => j.id === job));
  });

  it('resumes from its checkpoint when the runner picks it up again, as a restarted server does', async () => {
    // A job interrupted after its first step: its checkpoint is there, the job is still running.
    const created = await s.cs.store.createJob(client.id, 'count-records', { datasets });
    assert.ok(created.ok);
    await s.cs.store.updateJob(created.id, { state: 'running' });
    await s.cs.store.saveCheckpoint(created.id, { step: 1, state: { records: 3 }, data: null });
    await s.cs.runner.resumeAll();
    const st = await client.waitFor(created.id);
    assert.equal(st.state, 'done', st.error ?? '');
    assert.deepEqual(await client.rawResult(created.id, countRecords.result), { records: 8, resumedFrom: 1 });
  });

  it('a bad spec, an unknown kind and a dataset without a grant are refused, and nothing is stored', async () => {
    const reject = (p: Promise<unknown>, status: number, re: RegExp) =>
      assert.rejects(p, (e: unknown) => e instanceof ApiError && e.status === status && re.test(e.message));
    await reject(client.submit('count-records', { datasets: [] }), 400, /invalid count-records spec: datasets/);
    await reject(client.submit('no-such-kind', {}), 400, /no job kind 'no-such-kind'/);
    const stranger = await QueryClient.register(s.cs.url, 'stranger');
    await reject(stranger.submit('count-records', { datasets }), 403, /not granted/);
    assert.equal((await stranger.jobs()).length, 0);
  });
});
