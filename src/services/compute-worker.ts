/**
 * A compute worker (issue 17): a process of the compute server's (CCS) side, on any machine, that
 * takes jobs' chunk tasks from BullMQ (jobs/bullmq-queue.ts) and runs them against the compute
 * server's database and the key server (or its replicas). It holds what the compute server holds
 * (its X25519 key, to open owners' AES envelopes, and the channel key) and nothing that opens data.
 * A worker killed mid-task loses nothing: BullMQ hands the task to another worker when the lock of
 * the dead one expires, and the result is stored once per (job, step, chunk).
 */
import { Worker, UnrecoverableError, type Job } from 'bullmq';
import { join } from 'node:path';
import { importAgreementPrivateKey, readKeyFile, CiphermineError } from '../crypto/index.js';
import { createProtocolPool, keyServerTransport } from '../protocols/index.js';
import { fetchParams } from './compute-server.js';
import type { DealerEndpoint } from '../protocols/round-trip.js';
import { openStore, describeLocation } from './store/index.js';
import { builtInJobKinds } from './jobs/kinds/index.js';
import type { JobKind, JobServices } from './jobs/job-kind.js';
import { isDatabaseUnavailable, isKeyServerUnavailable, isOutage } from './jobs/runner.js';
import { describeFailure, runTask, storedTask } from './jobs/tasks.js';
import { redisConnection, TASK_QUEUE, type QueuedTask } from './jobs/bullmq-queue.js';
import { ProcessMetrics, serveMetrics, type MetricsOptions } from './metrics.js';

export interface ComputeWorkerOptions {
  /** The compute server's database (a postgres:// URL, or the SQLite file of a worker on its machine). */
  database: string;
  /** The queue's redis:// URL (the compute server's --queue). */
  queue: string;
  /** The compute server's data directory, or a copy of its x25519.key (0600) in a directory of its own. */
  dataDir: string;
  /** The key server's URL, or its replicas' URLs separated by commas. */
  keyServerUrl: string;
  channelKey: Buffer;
  keyServerFingerprint?: string;
  dealer?: DealerEndpoint;
  /**
   * Tasks at once in this process (default 2, as the embedded queue: one task's round trip to the
   * key server overlaps another's arithmetic).
   */
  concurrency?: number;
  /** Worker threads for batch kernels (default 1). */
  threads?: number;
  /**
   * How long a task's lock lasts without renewal: a worker that died is noticed after about this
   * long and its task handed to another (default 30 s, BullMQ's).
   */
  lockMs?: number;
  metrics?: MetricsOptions;
  extraJobKinds?: readonly JobKind[];
  log?: (msg: string) => void;
}

export interface ComputeWorkerHandle {
  metricsUrl?: string;
  /** Tasks this process finished. */
  readonly tasksDone: number;
  close(): Promise<void>;
}

export async function startComputeWorker(opts: ComputeWorkerOptions): Promise<ComputeWorkerHandle> {
  const log = opts.log ?? (() => {});
  const store = await openStore(opts.database, { lock: false });
  const transport = keyServerTransport(opts.keyServerUrl, opts.channelKey, { fingerprint: opts.keyServerFingerprint });
  const params = await fetchParams(transport, 60_000);
  const x25519 = importAgreementPrivateKey(readKeyFile(join(opts.dataDir, 'x25519.key')));
  const pool = createProtocolPool(opts.threads ?? 1);
  const services: JobServices = { store, compute: { transport, pool, dealer: opts.dealer }, params, x25519, noise: {} };
  const kinds = new Map([...builtInJobKinds, ...(opts.extraJobKinds ?? [])].map((k) => [k.name, k]));
  const metrics = opts.metrics && new ProcessMetrics('compute-worker');
  const tasks = metrics?.counter('ciphermine_tasks_total', 'chunk tasks this worker ran, by task and outcome', ['task', 'outcome']);
  const busy = metrics?.counter('ciphermine_worker_busy_seconds_total', 'seconds this worker spent running tasks', ['task']);
  let tasksDone = 0;

  const worker = new Worker(
    TASK_QUEUE,
    async (job: Job<QueuedTask>) => {
      const ref = job.data;
      const start = performance.now();
      log(`task start ${ref.job} ${ref.step} ${ref.chunk} attempt ${job.attemptsMade + 1}`);
      try {
        // The task and its input come from the database, not from what Redis holds.
        await runTask(services, kinds, await storedTask(store, String(ref.job), String(ref.step), Number(ref.chunk)));
        tasksDone++;
        tasks?.inc({ task: ref.task, outcome: 'ok' });
        log(`task done ${ref.job} ${ref.step} ${ref.chunk}`);
      } catch (e) {
        tasks?.inc({ task: ref.task, outcome: 'error' });
        // An outage (the key server or the database away) is retried with backoff; anything else
        // (bad data, a refused request) would fail again, so the job hears of it at once.
        // The same rule as the runner's: what it would wait out, BullMQ retries.
        const transient = isOutage(e) || isKeyServerUnavailable(e) || isDatabaseUnavailable(e);
        const failure = JSON.stringify(describeFailure(e, !transient));
        log(`task failed ${ref.job} ${ref.step} ${ref.chunk}: ${e instanceof CiphermineError ? e.message : ((e as Error).stack ?? String(e))}`);
        throw transient ? new Error(failure) : new UnrecoverableError(failure);
      } finally {
        busy?.inc({ task: ref.task }, (performance.now() - start) / 1000);
      }
    },
    {
      connection: redisConnection(opts.queue),
      concurrency: opts.concurrency ?? 2,
      lockDuration: opts.lockMs ?? 30_000,
      stalledInterval: opts.lockMs ?? 30_000,
      // A task whose worker died is handed on rather than failed (its result is stored once anyway).
      maxStalledCount: 10,
    },
  );
  worker.on('error', (e) => log(`queue: ${e.message}`));
  await worker.waitUntilReady();
  const listener = metrics && (await serveMetrics(metrics, opts.metrics!.host ?? '127.0.0.1', opts.metrics!.port));
  log(`compute worker on ${describeLocation(opts.database)}, queue ${describeLocation(opts.queue)}`);
  let closing: Promise<void> | undefined;
  return {
    metricsUrl: listener?.url,
    get tasksDone() {
      return tasksDone;
    },
    close: () =>
      (closing ??= (async () => {
        await worker.close();
        await listener?.close();
        await transport.close?.();
        await pool.close();
        await store.close();
      })()),
  };
}
