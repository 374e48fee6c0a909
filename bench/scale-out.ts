/**
 * `npm run bench:scale-out -- --records N --dims M --k K --iterations I --key-bits B --workers 0,1,2,4
 * --replicas R --block-records S --json` (issue 17): the same seeded k-means
 * job with its chunk tasks in the compute server's process (workers 0: the embedded default, the
 * baseline) and on 1, 2, 4 compute worker processes through BullMQ, with R key-server replicas,
 * every process separate and on loopback, PostgreSQL and Redis real. Per run: the conversion and
 * the median iteration, tasks per second, each worker's busy seconds, the key servers' CPU seconds
 * and channel bytes per iteration. Then the queue's own per-task cost, measured apart (BullMQ with a
 * no-op task, and the database write of a result), and a projection to 1,000,000 records on 10 and
 * 100 machines from the measured per-record costs. The last stdout line is one JSON object.
 */
import { mkdirSync, mkdtempSync, rmSync, copyFileSync } from 'node:fs';
import { tmpdir, cpus } from 'node:os';
import { join } from 'node:path';
import { Queue, Worker, QueueEvents } from 'bullmq';
import { FixedPointCodec, WorkerPool, backend, randomBelow, readKeyFile } from '../src/crypto/index.js';
import { HttpTransport } from '../src/protocols/index.js';
import { DataOwner } from '../src/clients/data-owner.js';
import { QueryClient } from '../src/clients/query-client.js';
import { lloyd } from '../src/analytics/kmeans-plain.js';
import { startChildServer, type ChildServer } from '../src/cli/child-server.js';
import { redisConnection } from '../src/services/jobs/bullmq-queue.js';
import { openStore } from '../src/services/store/index.js';
import { startPgCluster } from '../test/pg-cluster.js';
import { startRedis } from '../test/redis-server.js';
import { parseFlags, rng, round } from './measure.js';
import { metricTotal as metric } from '../test/prometheus.js';

const flags = parseFlags(process.argv.slice(2));
const num = (name: string, dflt: number) => Number(flags.get(name) ?? dflt);
const records = num('records', 2000);
const dims = num('dims', 2);
const k = num('k', 3);
const iterations = num('iterations', 2);
const keyBits = num('key-bits', 2048);
const replicas = num('replicas', 2);
const blockRecords = num('block-records', 250);
const workerCounts = String(flags.get('workers') ?? '0,1,2,4')
  .split(',')
  .map(Number);
const json = flags.has('json');
const log = (s: string) => json || console.error(s);

const rand = rng(20261206);
const centres = Array.from({ length: k }, () => Array.from({ length: dims }, () => (rand() - 0.5) * 160));
const rows = Array.from({ length: records }, (_, i) => centres[i % k]!.map((c) => Number((c + (rand() - 0.5) * 10).toFixed(3))));
const codec = new FixedPointCodec({ fractionBits: 16, maxAbs: 100 });
// All starts in one cluster: a poor start, so the job runs several iterations.
const init = Array.from({ length: k }, (_, j) => j * k);

const pg = await startPgCluster();
const redis = await startRedis();
const root = mkdtempSync(join(tmpdir(), 'cm-bench-scale-'));

interface Run {
  workers: number;
  conversionSeconds: number;
  perIterationSeconds: number;
  iterationsAll: number[];
  tasks: number;
  tasksPerSecond: number;
  workerBusySeconds: number[];
  /** The workers' CPU seconds per iteration (all workers together, threads included). */
  workerCpuSecondsPerIteration: number;
  keyServerCpuSecondsPerIteration: number;
  keyServerBytesPerIteration: number;
  agreesWithPlaintext: boolean;
}

let firstKeyServer: string | undefined;

/** One configuration: fresh databases and processes, the same data and job. */
async function run(workers: number): Promise<Run> {
  const dir = join(root, `w${workers}`);
  const ksDb = await pg.createDatabase();
  const csDb = await pg.createDatabase();
  const children: ChildServer[] = [];
  try {
    const ksUrls: string[] = [];
    const ksMetrics: string[] = [];
    for (let r = 0; r < replicas; r++) {
      const d = join(dir, `ks${r}`);
      // Every replica of every run uses the parameters the first made (safe primes take a while).
      const from = r > 0 ? join(dir, 'ks0') : firstKeyServer;
      if (from) {
        mkdirSync(d, { recursive: true, mode: 0o700 });
        for (const f of ['master.key', 'channel.key']) copyFileSync(join(from, f), join(d, f));
      }
      firstKeyServer ??= d;
      const ks = await startChildServer([
        'key-server',
        'start',
        '--data-dir',
        d,
        '--port',
        '0',
        '--key-bits',
        String(keyBits),
        '--database',
        ksDb,
        '--metrics-port',
        '0',
      ]);
      children.push(ks);
      ksUrls.push(ks.url);
      ksMetrics.push(ks.info.metricsUrl!);
    }
    const channelKey = join(dir, 'ks0', 'channel.key');
    const queue = workers > 0 ? ['--queue', redis.url] : [];
    const cs = await startChildServer([
      'compute-server',
      'start',
      '--data-dir',
      join(dir, 'cs'),
      '--port',
      '0',
      '--database',
      csDb,
      '--key-server',
      ksUrls.join(','),
      '--channel-key',
      channelKey,
      '--block-records',
      String(blockRecords),
      ...queue,
    ]);
    children.push(cs);
    const workerMetrics: string[] = [];
    for (let w = 0; w < workers; w++) {
      // Each worker prefers the next replica, so the replicas share the load.
      const order = ksUrls.map((_, i) => ksUrls[(i + w) % ksUrls.length]!).join(',');
      const wk = await startChildServer([
        'worker',
        'start',
        '--database',
        csDb,
        '--queue',
        redis.url,
        '--data-dir',
        join(dir, 'cs'),
        '--key-server',
        order,
        '--channel-key',
        channelKey,
        '--metrics-port',
        '0',
      ]);
      children.push(wk);
      workerMetrics.push(wk.info.metricsUrl!);
    }
    const client = await QueryClient.register(cs.url, 'bench client');
    const owner = await DataOwner.register(cs.url, 'owner');
    const pool = new WorkerPool();
    const ds = await owner.upload('data', { columns: centres[0]!.map((_, a) => `x${a}`), rows }, codec, {
      pool,
      chunkRows: Math.max(1, Math.ceil(records / 8)),
    });
    await pool.close();
    await owner.grant(ds, client.id);
    const ksCpu = async () => {
      let s = 0;
      for (const u of ksUrls)
        s += (
          JSON.parse(Buffer.from(await new HttpTransport(u, readKeyFile(channelKey)).call('stats', new Uint8Array(0))).toString()) as {
            cpuSeconds: number;
          }
        ).cpuSeconds;
      return s;
    };
    const ksBytes = async () => {
      let s = 0;
      for (const u of ksMetrics) s += await metric(u, 'ciphermine_channel_bytes_total');
      return s;
    };
    const job = await client.submitKMeans({ datasets: [ds], k, maxIter: iterations, initIndices: init });
    // The key servers' CPU and bytes over the iterations only: sampled when the conversion ends.
    const workerCpu = async () => {
      let s = 0;
      for (const u of workerMetrics) s += await metric(u, 'ciphermine_process_cpu_seconds_total');
      return s;
    };
    let atIterations: Promise<[number, number, number]> | undefined;
    const status = await client.waitFor(
      job,
      (s) => {
        if (!atIterations && s.phase === 'iterations') atIterations = Promise.all([ksCpu(), ksBytes(), workerCpu()]);
      },
      200,
    );
    const [cpu0, bytes0, wcpu0] = (await atIterations) ?? [0, 0, 0];
    if (status.state !== 'done') throw new Error(`job failed: ${status.error}`);
    const result = await client.kmeansResult(job);
    const plain = lloyd(
      rows.map((r) => codec.encodeRow(r)),
      init,
      iterations,
    );
    const its = Object.entries(status.timings)
      .filter(([n]) => n.startsWith('iteration '))
      .map(([, s]) => s);
    const sorted = [...its].sort((a, b) => a - b);
    const median = sorted.length ? sorted[Math.floor(sorted.length / 2)]! : (status.timings.iterations ?? 0);
    const blocks = Math.ceil(records / blockRecords);
    const tasks = 8 + blocks * result.iterations;
    const busy = await Promise.all(workerMetrics.map((u) => metric(u, 'ciphermine_worker_busy_seconds_total')));
    const assignCpu = (await workerCpu()) - wcpu0;
    const cpu = (await ksCpu()) - cpu0;
    const bytes = (await ksBytes()) - bytes0;
    const seconds = (status.timings.conversion ?? 0) + (status.timings.iterations ?? 0);
    log(`${workers} workers: conversion ${round(status.timings.conversion ?? 0)} s, iteration ${round(median)} s`);
    return {
      workers,
      conversionSeconds: round(status.timings.conversion ?? 0),
      perIterationSeconds: round(median),
      iterationsAll: its.map((s) => round(s)),
      tasks,
      tasksPerSecond: round(tasks / seconds),
      workerBusySeconds: busy.map((b) => round(b)),
      workerCpuSecondsPerIteration: round(assignCpu / Math.max(1, result.iterations)),
      keyServerCpuSecondsPerIteration: round(cpu / Math.max(1, result.iterations)),
      keyServerBytesPerIteration: round(bytes / Math.max(1, result.iterations)),
      agreesWithPlaintext: plain.assignments.every((j, i) => j === result.assignments[i]),
    };
  } finally {
    for (const c of children.reverse()) await c.stop();
  }
}

/** The queue's own cost per task: BullMQ with a no-op processor, and the database write of a result. */
async function queueOverhead(): Promise<{ bullmqMsPerTask: number; resultWriteMs: number }> {
  const connection = redisConnection(redis.url);
  const name = 'bench-noop';
  const q = new Queue(name, { connection });
  const events = new QueueEvents(name, { connection });
  await events.waitUntilReady();
  const n = 500;
  let completed = 0;
  let allDone: () => void = () => {};
  const finished = new Promise<void>((r) => (allDone = r));
  const w = new Worker(name, async () => 'ok', { connection, concurrency: 1 });
  w.on('completed', () => ++completed === n && allDone());
  await w.waitUntilReady();
  const start = performance.now();
  await q.addBulk(Array.from({ length: n }, (_, i) => ({ name: 'noop', data: { i } })));
  await finished;
  const bullmqMsPerTask = (performance.now() - start) / n;
  await w.close();
  await events.close();
  await q.close();
  const store = await openStore(await pg.createDatabase(), { lock: false });
  const party = await store.addParty('client', 'bench', Buffer.from([1]), null);
  const created = await store.createJob(party.id, 'kmeans', {});
  const jobId = (created as { id: string }).id;
  const payload = Buffer.alloc(2 * blockRecords);
  const s2 = performance.now();
  for (let i = 0; i < n; i++) await store.putTaskResult(jobId, 'bench', i, payload);
  const resultWriteMs = (performance.now() - s2) / n;
  await store.close();
  return { bullmqMsPerTask: round(bullmqMsPerTask), resultWriteMs: round(resultWriteMs) };
}

/** Baselines in the same run: plaintext Lloyd per iteration, and the raw modexp floor at these sizes. */
function baselines(): { plaintextPerIterationMs: number; modexpFloorMs: number } {
  const t = performance.now();
  const plain = lloyd(
    rows.map((r) => codec.encodeRow(r)),
    init,
    iterations,
  );
  const plaintextPerIterationMs = (performance.now() - t) / plain.iterations;
  const N = (1n << BigInt(keyBits - 1)) | 1n;
  const s = performance.now();
  for (let i = 0; i < 20; i++) backend().modPow(randomBelow(N * N), randomBelow(N), N * N);
  return { plaintextPerIterationMs: round(plaintextPerIterationMs), modexpFloorMs: round((performance.now() - s) / 20) };
}

try {
  const runs: Run[] = [];
  for (const w of workerCounts) runs.push(await run(w));
  const overhead = await queueOverhead();
  const base = baselines();
  const one = runs.find((r) => r.workers === 1) ?? runs[0]!;
  // Measured per record and iteration: a worker's busy time, and the key servers' CPU.
  const workerSecondsPerRecord = one.workerCpuSecondsPerIteration / records;
  const ksSecondsPerRecord = one.keyServerCpuSecondsPerIteration / records;
  const bytesPerRecord = one.keyServerBytesPerIteration / records;
  const projection = [10, 100].map((machines) => {
    const n = 1_000_000;
    const cores = 2 * machines;
    // Cores split between workers and key-server replicas in proportion to their measured CPU.
    const ksShare = ksSecondsPerRecord / (ksSecondsPerRecord + workerSecondsPerRecord);
    const ksCores = Math.max(1, Math.round(cores * ksShare));
    const workerCores = Math.max(1, cores - ksCores);
    return {
      machines,
      records: n,
      workerCores,
      keyServerCores: ksCores,
      iterationSeconds: round(Math.max((n * workerSecondsPerRecord) / workerCores, (n * ksSecondsPerRecord) / ksCores)),
      keyServerGigabytesPerIteration: round((n * bytesPerRecord) / 1e9),
      tasksPerIteration: Math.ceil(n / blockRecords),
      // The API node's load per iteration: one result row written and one poll per task (queue and database).
      taskResultsPerSecond: round(Math.ceil(n / blockRecords) / Math.max((n * workerSecondsPerRecord) / workerCores, 1e-9)),
    };
  });
  console.log(
    JSON.stringify({
      records,
      dims,
      k,
      keyBits,
      provider: 'ot',
      replicas,
      blockRecords,
      iterations,
      machineCores: cpus().length,
      ...base,
      runs,
      queue: overhead,
      perRecordPerIteration: {
        workerCpuSeconds: round(workerSecondsPerRecord),
        keyServerCpuSeconds: round(ksSecondsPerRecord),
        keyServerBytes: round(bytesPerRecord),
      },
      projection,
      date: new Date().toISOString(),
    }),
  );
} finally {
  redis.stop();
  pg.stop();
  rmSync(root, { recursive: true, force: true });
}
process.exit(0);
