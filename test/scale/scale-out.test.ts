/**
 * Scale-out (issue 17): the compute server's API node with its chunk tasks on BullMQ (a real
 * redis-server), two compute workers and two key-server replicas as separate processes, the
 * compute server's and the key servers' state in PostgreSQL (real clusters, started here). A k-means
 * job and DP queries equal their single-process answers (plaintext Lloyd, the plaintext clipped
 * sum and histogram); then a worker is SIGKILLed in the middle of a chunk and a replica in the
 * middle of an iteration, and Redis is restarted empty, and the job's result is still the same.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readKeyFile } from '../../src/crypto/index.js';
import { DataOwner } from '../../src/clients/data-owner.js';
import { QueryClient, type JobStatus } from '../../src/clients/query-client.js';
import { histogram } from '../../src/analytics/stats-plain.js';
import { startComputeServer, type ComputeServerHandle } from '../../src/services/compute-server.js';
import { startChildServer, type ChildServer } from '../../src/cli/child-server.js';
import { startPgCluster, type PgCluster } from '../pg-cluster.js';
import { startRedis, type RedisServer } from '../redis-server.js';
import { metricTotal as metric } from '../prometheus.js';
import { assertEqualsLloyd, iris, irisCodec } from './iris-lloyd.js';

const codec = irisCodec;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** This file's own PostgreSQL cluster (not the run's shared one): a test here restarts it. */
let cluster: Promise<PgCluster> | undefined;
async function database(): Promise<string> {
  cluster ??= startPgCluster().then((c) => {
    process.once('exit', () => c.stop());
    return c;
  });
  return (await cluster).createDatabase();
}

async function kill(child: ChildServer): Promise<void> {
  if (child.process.exitCode !== null || child.process.signalCode !== null) return;
  const exited = new Promise((r) => child.process.once('exit', r));
  child.process.kill('SIGKILL');
  await exited;
}

describe('scale-out: compute workers and key-server replicas on BullMQ', { timeout: 600_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'cm-scale-'));
  let redis: RedisServer;
  const replicas: ChildServer[] = [];
  const workers: ChildServer[] = [];
  let cs: ComputeServerHandle;
  let owner: DataOwner;
  let client: QueryClient;
  let irisDs: string;
  let channelKey: string;
  let csDb: string;
  const queueLog: string[] = [];
  // A longer column for the DP fault test: 600 values, 24 ranges of 25.
  const wages = Array.from({ length: 600 }, (_, i) => ((i * 37) % 71) / 10);
  let wagesDs: string;
  const table = iris();
  const init = [0, 1, 2]; // a poor start: several iterations

  const startWorker = (keyServers: string) =>
    startChildServer([
      'worker',
      'start',
      '--database',
      csDb,
      '--queue',
      redis.url,
      '--data-dir',
      join(dir, 'cs'),
      '--key-server',
      keyServers,
      '--channel-key',
      channelKey,
      '--lock-ms',
      '2000',
      '--metrics-port',
      '0',
    ]);

  let ksArgs: (d: string, port?: number) => string[];

  before(async () => {
    redis = await startRedis();
    const ksDb = await database();
    csDb = await database();
    ksArgs = (d, port = 0) => [
      'key-server',
      'start',
      '--data-dir',
      d,
      '--port',
      String(port),
      '--key-bits',
      '512',
      '--workers',
      '1',
      '--database',
      ksDb,
      '--metrics-port',
      '0',
    ];
    replicas.push(await startChildServer(ksArgs(join(dir, 'ks1'))));
    // The second replica gets the first one's master key and channel key (0600 files), as an operator copies them.
    mkdirSync(join(dir, 'ks2'), { mode: 0o700 });
    for (const f of ['master.key', 'channel.key']) copyFileSync(join(dir, 'ks1', f), join(dir, 'ks2', f));
    replicas.push(await startChildServer(ksArgs(join(dir, 'ks2'))));
    channelKey = replicas[0]!.info.channelKey!;
    const [a, b] = replicas.map((r) => r.url);
    cs = await startComputeServer({
      dataDir: join(dir, 'cs'),
      database: csDb,
      queue: redis.url,
      port: 0,
      keyServerUrl: `${a},${b}`,
      channelKey: readKeyFile(channelKey),
      workers: 1,
      blockRecords: 25,
      retryForMs: 120_000,
      registrationsPerMinute: 10_000,
      unsafeNoiseControlForTests: { disabled: true },
      log: (m) => queueLog.push(m),
      metrics: { port: 0 },
    });
    // Each worker prefers another replica.
    workers.push(await startWorker(`${a},${b}`), await startWorker(`${b},${a}`));
    owner = await DataOwner.register(cs.url, 'owner');
    client = await QueryClient.register(cs.url, 'client');
    irisDs = await owner.upload('iris', table, codec, { chunkRows: 25, epsilonBudget: 100 });
    await owner.grant(irisDs, client.id);
    wagesDs = await owner.upload('wages', { columns: ['wage'], rows: wages.map((w) => [w]) }, codec, { chunkRows: 100, epsilonBudget: 100 });
    await owner.grant(wagesDs, client.id);
  });

  after(async () => {
    for (const w of workers) await w.stop();
    await cs?.close();
    for (const r of replicas) await r.stop();
    redis?.stop();
  });

  async function finished(job: string): Promise<JobStatus> {
    for (;;) {
      const s = await client.status(job);
      if (s.state === 'done' || s.state === 'failed') return s;
      await sleep(50);
    }
  }

  it('k-means on 2 workers and 2 replicas equals plaintext Lloyd, with every process doing part of it', async () => {
    const before = await Promise.all(workers.map((w) => metric(w.info.metricsUrl!, 'ciphermine_tasks_total')));
    const job = await client.submitKMeans({ datasets: [irisDs], k: 3, maxIter: 100, initIndices: init });
    const s = await finished(job);
    assert.equal(s.state, 'done', `${s.error}\n${failures()}`);
    await assertEqualsLloyd(client, job, init);
    const after = await Promise.all(workers.map((w) => metric(w.info.metricsUrl!, 'ciphermine_tasks_total')));
    // 6 conversion tasks and 6 blocks per iteration, shared by the two workers.
    for (let i = 0; i < 2; i++) assert.ok(after[i]! - before[i]! > 0, `worker ${i} ran no task`);
    for (const r of replicas)
      assert.ok((await metric(r.info.metricsUrl!, 'ciphermine_channel_requests_total')) > 0, `replica ${r.url} answered nothing`);
  });

  it('DP queries (noise off) on the workers equal the plaintext clipped sum and histogram', async () => {
    const lengths = table.rows.map((r) => codec.encode(r[0]!));
    const [lo, hi] = [5, 7];
    const sum = await client.stats({ datasets: [irisDs], column: table.columns[0]!, epsilon: 1, kind: 'sum', lo, hi });
    const clip = (x: bigint) => (x < codec.encode(lo) ? codec.encode(lo) : x > codec.encode(hi) ? codec.encode(hi) : x);
    assert.equal(sum.value, codec.decode(lengths.reduce((a, x) => a + clip(x), 0n)));
    const edges = [4, 5, 6, 7, 8];
    const hist = await client.stats({ datasets: [irisDs], column: table.columns[0]!, epsilon: 1, kind: 'histogram', edges });
    const counts = histogram(
      lengths,
      edges.map((e) => codec.encode(e)),
    ).map(Number);
    assert.deepEqual(hist.counts, counts);
  });

  it('PostgreSQL unreachable for 3 s in the middle of a job: the workers and the job back off and resume, the same result', async () => {
    const job = await client.submitKMeans({ datasets: [irisDs], k: 3, maxIter: 100, initIndices: init });
    await untilIteration(job, 1);
    await (await cluster!).restart(3000);
    const s = await finished(job);
    assert.equal(s.state, 'done', `${s.error}\n${failures()}`);
    await assertEqualsLloyd(client, job, init);
  });

  it('a worker SIGKILLed mid-chunk, a replica SIGKILLed mid-iteration and Redis restarted empty: the same result', async (t) => {
    const job = await client.submitKMeans({ datasets: [irisDs], k: 3, maxIter: 100, initIndices: init });
    // A worker in the middle of an assignment task (started, not done) dies.
    const { worker: victim, step, chunk } = await midTask(workers, job, /^assign-\d+~\w+$/);
    await kill(victim);
    // A replica dies while an iteration runs; the other carries on.
    await untilIteration(job, 2);
    await kill(replicas[0]!);
    // Redis loses every queue entry; the database still knows which chunks are done.
    await untilIteration(job, 3);
    await stepJustStarted(job); // its other tasks wait in Redis
    const readdedBefore = queueLog.filter((l) => /adding it again/.test(l)).length;
    await redis.restart();
    const s = await finished(job);
    assert.equal(s.state, 'done', `${s.error}\n${failures()}`);
    await assertEqualsLloyd(client, job, init);
    // The dead worker's task was run again by the other one.
    const survivor = workers.find((w) => w !== victim)!;
    assert.match(survivor.log(), new RegExp(`task done ${job} ${step} ${chunk}\\b`));
    const readded = queueLog.filter((l) => /adding it again/.test(l)).length - readdedBefore;
    t.diagnostic(`tasks Redis lost and added again: ${readded}`);
    assert.ok(readded > 0, 'the tasks Redis lost were added again from the database');
  });

  it('a DP query with a worker SIGKILLed mid-range and a replica SIGKILLed mid-computation: the plaintext answer', async () => {
    // The processes the last test killed come back first: a worker, and the replica on its old port.
    const [a, b] = replicas.map((r) => r.url);
    workers.splice(
      workers.findIndex((w) => w.process.exitCode !== null || w.process.signalCode !== null),
      1,
    );
    workers.push(await startWorker(`${a},${b}`));
    replicas[0] = await startChildServer(ksArgs(join(dir, 'ks1'), Number(new URL(a!).port)));
    const edges = [0, 1.5, 3, 4.5, 6, 7.5];
    const job = await client.submit('stats', { datasets: [wagesDs], column: 'wage', epsilon: 1, kind: 'histogram', edges });
    const { worker: victim } = await midTask(workers, job, /^aggregate-\w+~\w+$/);
    await kill(victim);
    // The restarted replica, which the restarted worker prefers.
    await kill(replicas[0]!);
    assert.equal((await client.status(job)).state, 'running', 'the query must still be running when the processes die');
    const s = await finished(job);
    assert.equal(s.state, 'done', `${s.error}\n${failures()}`);
    const r = await client.statsResult(job);
    const expected = histogram(
      wages.map((w) => codec.encode(w)),
      edges.map((e) => codec.encode(e)),
    ).map(Number);
    assert.deepEqual(r.counts, expected);
  });

  /** Waits until an assignment step's first tasks started and its last ones have not. */
  async function stepJustStarted(job: string): Promise<void> {
    for (const deadline = Date.now() + 120_000; Date.now() < deadline;) {
      const starts = workers.flatMap((w) => [...w.log().matchAll(new RegExp(`task start ${job} (assign-\\d+~\\w+) (\\d+)`, 'g'))]);
      const steps = new Map<string, Set<number>>();
      for (const m of starts) steps.set(m[1]!, (steps.get(m[1]!) ?? new Set()).add(Number(m[2])));
      if ([...steps.values()].some((chunks) => chunks.has(0) && !chunks.has(4) && !chunks.has(5))) return;
      await sleep(2);
    }
    throw new Error(`no assignment step of job ${job} started\n${failures()}`);
  }

  /** The workers' failed tasks and the API node's queue log, for a failure's message. */
  function failures(): string {
    const lines = workers.flatMap((w) =>
      w
        .log()
        .split('\n')
        .filter((l) => /task failed|Error|at /.test(l)),
    );
    return [...lines.slice(-60), ...queueLog.slice(-20)].join('\n');
  }

  async function untilIteration(job: string, n: number): Promise<void> {
    for (;;) {
      const s = await client.status(job);
      if (s.state !== 'running' && s.state !== 'queued') throw new Error(`job ended (${s.state}) before iteration ${n}: ${s.error}\n${failures()}`);
      if (s.progress?.unit === 'iteration' && s.progress.done >= n) return;
      await sleep(20);
    }
  }

  /** A worker in the middle of one of the job's tasks whose step matches: started, not yet done. */
  async function midTask(ws: ChildServer[], job: string, step: RegExp): Promise<{ worker: ChildServer; step: string; chunk: string }> {
    for (const deadline = Date.now() + 120_000; Date.now() < deadline;) {
      for (const worker of ws) {
        const open = new Map<string, { step: string; chunk: string }>();
        for (const m of worker.log().matchAll(/task (start|done) (\S+) (\S+) (\d+)/g)) {
          if (m[2] !== job || !step.test(m[3]!)) continue;
          if (m[1] === 'start') open.set(`${m[3]} ${m[4]}`, { step: m[3]!, chunk: m[4]! });
          else open.delete(`${m[3]} ${m[4]}`);
        }
        const first = open.values().next().value;
        if (first) return { worker, ...first };
      }
      await sleep(5);
    }
    throw new Error(`no worker ran a task of job ${job} matching ${step}\n${failures()}`);
  }
});
