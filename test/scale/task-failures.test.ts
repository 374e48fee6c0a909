/**
 * How a task's failure reaches its job on the queue (issue 17): a task that fails on its input ends
 * the job at once with the task's own typed error (not retried); a task that fails on an outage is
 * retried by BullMQ and the job finishes as if nothing happened. A job kind of this file's own (the
 * way a deployment adds one) runs on a real Redis, PostgreSQL and an in-process compute worker.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { CiphermineError, readKeyFile } from '../../src/crypto/index.js';
import { RemoteError } from '../../src/protocols/index.js';
import { QueryClient } from '../../src/clients/query-client.js';
import { defineJobKind } from '../../src/index.js';
import { startKeyServer, type KeyServerHandle } from '../../src/services/key-server.js';
import { startComputeServer, type ComputeServerHandle } from '../../src/services/compute-server.js';
import { startComputeWorker, type ComputeWorkerHandle } from '../../src/services/compute-worker.js';
import { startPgCluster, type PgCluster } from '../pg-cluster.js';
import { startRedis, type RedisServer } from '../redis-server.js';

/** Attempts per (job, chunk), to fail a chunk's first attempt only. */
const attempts = new Map<string, number>();

// --- the job kind: square 8 numbers in 8 tasks; `fail` says how chunk 5 fails ---
const squares = defineJobKind({
  name: 'squares',
  description: 'squares of 0..7 as chunk tasks (for tests)',
  spec: z.object({ fail: z.enum(['none', 'input', 'outage-once']) }),
  result: z.object({ squares: z.array(z.number()) }),
  async admit(_ctx, spec) {
    return { spec };
  },
  async run(ctx) {
    await ctx.jobKey(); // tasks run under a job key, as every real kind's do
    const results = await ctx.fanOut('square', 'square', [0, 1, 2, 3, 4, 5, 6, 7]);
    return { squares: results.map((b) => Number(b.toString())) };
  },
  tasks: {
    async square(ctx, x: number) {
      const key = `${ctx.jobId}/${x}`;
      attempts.set(key, (attempts.get(key) ?? 0) + 1);
      if (x === 5 && ctx.spec.fail === 'input') throw new CiphermineError('ERR_STATS_QUERY', 'chunk 5 cannot be squared');
      if (x === 5 && ctx.spec.fail === 'outage-once' && attempts.get(key) === 1)
        throw new RemoteError('ERR_UNREACHABLE', 'the key server is away', 503);
      return Buffer.from(String(x * x));
    },
  },
});
// --- end of the job kind ---

describe('task failures on the queue', { timeout: 120_000 }, () => {
  let pg: PgCluster;
  let redis: RedisServer;
  let ks: KeyServerHandle;
  let cs: ComputeServerHandle;
  let worker: ComputeWorkerHandle;
  let client: QueryClient;

  before(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cm-task-failures-'));
    pg = await startPgCluster();
    redis = await startRedis();
    ks = await startKeyServer({ dataDir: join(dir, 'ks'), port: 0, keyBits: 512, workers: 1 });
    const database = await pg.createDatabase();
    const common = { keyServerUrl: ks.url, channelKey: readKeyFile(ks.channelKeyPath), extraJobKinds: [squares] };
    cs = await startComputeServer({ ...common, dataDir: join(dir, 'cs'), database, queue: redis.url, port: 0, workers: 1 });
    worker = await startComputeWorker({ ...common, database, queue: redis.url, dataDir: join(dir, 'cs'), lockMs: 2000 });
    client = await QueryClient.register(cs.url, 'client');
  });

  after(async () => {
    await worker?.close();
    await cs?.close();
    await ks?.close();
    redis?.stop();
    pg?.stop();
  });

  it('all tasks succeed: the results in chunk order', async () => {
    const job = await client.submit('squares', { fail: 'none' });
    const s = await client.waitFor(job);
    assert.equal(s.state, 'done', s.error ?? '');
    assert.deepEqual((await client.rawResult(job, squares.result)).squares, [0, 1, 4, 9, 16, 25, 36, 49]);
  });

  it("a task that fails on its input ends the job with the task's typed error, without retries", async () => {
    const job = await client.submit('squares', { fail: 'input' });
    const s = await client.waitFor(job);
    assert.equal(s.state, 'failed');
    assert.equal(s.errorCode, 'ERR_STATS_QUERY');
    assert.match(s.error ?? '', /chunk 5 cannot be squared/);
    assert.equal(attempts.get(`${job}/5`), 1, 'a final error is not retried');
  });

  it('a task that fails on an outage is retried, and the job finishes', async () => {
    const job = await client.submit('squares', { fail: 'outage-once' });
    const s = await client.waitFor(job);
    assert.equal(s.state, 'done', s.error ?? '');
    assert.deepEqual((await client.rawResult(job, squares.result)).squares, [0, 1, 4, 9, 16, 25, 36, 49]);
    assert.equal(attempts.get(`${job}/5`), 2);
  });
});
