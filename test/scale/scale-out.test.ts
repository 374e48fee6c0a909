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
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FixedPointCodec, readKeyFile } from '../../src/crypto/index.js';
import { parseNumericCsv } from '../../src/clients/csv.js';
import { DataOwner } from '../../src/clients/data-owner.js';
import { QueryClient, type JobStatus } from '../../src/clients/query-client.js';
import { lloyd } from '../../src/analytics/kmeans-plain.js';
import { histogram } from '../../src/analytics/stats-plain.js';
import { startComputeServer, type ComputeServerHandle } from '../../src/services/compute-server.js';
import { startChildServer, type ChildServer } from '../../src/cli/child-server.js';
import { createDatabaseIn, startPgCluster } from '../pg-cluster.js';
import { startRedis, type RedisServer } from '../redis-server.js';

const iris = () => parseNumericCsv(readFileSync(new URL('../../../data/iris.csv', import.meta.url), 'utf8'), ['label']);
const codec = new FixedPointCodec({ fractionBits: 16, maxAbs: 8 });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A PostgreSQL database: in the run's cluster (scripts/test.mjs) or in one started here. */
async function database(): Promise<string> {
  const shared = process.env.CIPHERMINE_TEST_PG_URL;
  if (shared) return createDatabaseIn(shared);
  const c = await startPgCluster();
  process.once('exit', () => c.stop());
  return c.createDatabase();
}

async function kill(child: ChildServer): Promise<void> {
  if (child.process.exitCode !== null || child.process.signalCode !== null) return;
  const exited = new Promise((r) => child.process.once('exit', r));
  child.process.kill('SIGKILL');
  await exited;
}

/** The counter's total over all label sets in a Prometheus text page. */
async function metric(url: string, name: string): Promise<number> {
  const text = await (await fetch(url)).text();
  return text
    .split('\n')
    .filter((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `))
    .reduce((a, l) => a + Number(l.split(' ').pop()), 0);
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

  before(async () => {
    redis = await startRedis();
    const ksDb = await database();
    csDb = await database();
    const ksArgs = (d: string) => [
      'key-server',
      'start',
      '--data-dir',
      d,
      '--port',
      '0',
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
    });
    // Each worker prefers another replica.
    workers.push(await startWorker(`${a},${b}`), await startWorker(`${b},${a}`));
    owner = await DataOwner.register(cs.url, 'owner');
    client = await QueryClient.register(cs.url, 'client');
    irisDs = await owner.upload('iris', table, codec, { chunkRows: 25, epsilonBudget: 100 });
    await owner.grant(irisDs, client.id);
  });

  after(async () => {
    for (const w of workers) await w.stop();
    await cs?.close();
    for (const r of replicas) await r.stop();
    redis?.stop();
  });

  async function assertEqualsLloyd(job: string): Promise<void> {
    const r = await client.kmeansResult(job);
    const plain = lloyd(
      table.rows.map((row) => codec.encodeRow(row)),
      init,
      100,
    );
    assert.deepEqual(r.assignments, plain.assignments);
    assert.deepEqual(r.sums, plain.sums);
    assert.equal(r.iterations, plain.iterations);
  }

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
    assert.equal(s.state, 'done', s.error ?? undefined);
    await assertEqualsLloyd(job);
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

  it('a worker SIGKILLed mid-chunk, a replica SIGKILLed mid-iteration and Redis restarted empty: the same result', async (t) => {
    const job = await client.submitKMeans({ datasets: [irisDs], k: 3, maxIter: 100, initIndices: init });
    // A worker in the middle of an assignment task (started, not done) dies.
    const victim = await midTask(workers, /task start \S+ assign-\d+ \d+/);
    const [, taskJob, step, chunk] = /task start (\S+) (\S+) (\d+)/.exec(lastTaskLine(victim)!)!;
    await kill(victim);
    // A replica dies while an iteration runs; the other carries on.
    await untilIteration(job, 2);
    await kill(replicas[0]!);
    // Redis loses every queue entry; the database still knows which chunks are done.
    await untilIteration(job, 3);
    await redis.restart();
    const s = await finished(job);
    assert.equal(s.state, 'done', s.error ?? undefined);
    await assertEqualsLloyd(job);
    // The dead worker's task was run again by the other one.
    const survivor = workers.find((w) => w !== victim)!;
    assert.match(survivor.log(), new RegExp(`task done ${taskJob} ${step} ${chunk}\\b`));
    t.diagnostic(`tasks Redis lost and added again: ${queueLog.filter((l) => /adding it again/.test(l)).length}`);
  });

  function lastTaskLine(w: ChildServer): string | undefined {
    return [...w.log().split('\n')].reverse().find((l) => /task (start|done)/.test(l));
  }

  async function untilIteration(job: string, n: number): Promise<void> {
    for (;;) {
      const s = await client.status(job);
      if (s.state !== 'running' && s.state !== 'queued') throw new Error(`job ended (${s.state}) before iteration ${n}: ${s.error}`);
      if (s.progress?.unit === 'iteration' && s.progress.done >= n) return;
      await sleep(20);
    }
  }

  /** The first worker whose log shows a task of this pattern started and not yet done. */
  async function midTask(ws: ChildServer[], started: RegExp): Promise<ChildServer> {
    for (;;) {
      for (const w of ws) {
        const last = lastTaskLine(w);
        if (last && started.test(last)) return w;
      }
      await sleep(5);
    }
  }
});
