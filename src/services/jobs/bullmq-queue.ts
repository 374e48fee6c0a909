/**
 * Chunk tasks on Redis through BullMQ (issue 17): a step is one flow, a parent job per step with one
 * child job per chunk, and compute workers on any machine (compute-worker.ts) take the children.
 * BullMQ retries a failed child and hands the child of a worker that died (its lock expired) to
 * another worker. The truth is the database: a child carries only ids and ranges, its result is
 * stored by (job, step, chunk), and the step is done when every chunk has a result there. So a
 * Redis that lost its data (restarted without persistence) costs only the flow, which is added
 * again for the chunks still missing.
 */
import { FlowProducer, Queue, Worker, type ConnectionOptions, type Job } from 'bullmq';
import { randomBytes } from 'node:crypto';
import type { JobRow } from '../store/index.js';
import type { JobServices } from './job-kind.js';
import { isDatabaseUnavailable } from './runner.js';
import { failureError, stepResults, storeStepInputs, type FanOutOptions, type TaskFailure, type TaskQueue, type TaskRef } from './tasks.js';
import { RemoteError } from '../../protocols/index.js';

/** The queue of chunk tasks, which compute workers consume. */
export const TASK_QUEUE = 'ciphermine-tasks';
/** The queue of step parents, which the compute server's API node consumes (the fan-in). */
export const STEP_QUEUE = 'ciphermine-steps';

/** Redis connection options from a redis:// URL (BullMQ needs requests that wait out a reconnect). */
/**
 * `failFast`: for the compute server's own queue handles (not workers'), whose commands should fail
 * while Redis is away rather than wait for it, so that its wait on a step goes on from the database.
 */
export function redisConnection(url: string, opts: { failFast?: boolean } = {}): ConnectionOptions {
  const u = new URL(url);
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') throw new Error(`--queue takes a redis:// URL, not ${u.protocol}`);
  return {
    host: u.hostname,
    port: Number(u.port || 6379),
    username: u.username || undefined,
    password: u.password ? decodeURIComponent(u.password) : undefined,
    db: u.pathname.length > 1 ? Number(u.pathname.slice(1)) : 0,
    ...(u.protocol === 'rediss:' ? { tls: {} } : {}),
    ...(opts.failFast ? { maxRetriesPerRequest: 1, enableOfflineQueue: false } : { maxRetriesPerRequest: null }),
    // Reconnect for ever, at most every 2 s: a restarted Redis is picked up again.
    retryStrategy: (times: number) => Math.min(2000, 100 * times),
  };
}

export interface BullTaskQueueOptions {
  services: JobServices;
  /** For the fan-in worker (waits out Redis restarts). */
  connection: ConnectionOptions;
  /** For adding and inspecting tasks (fails while Redis is away: redisConnection's failFast). */
  failFastConnection: ConnectionOptions;
  /** Attempts per task before its failure ends the job's step (default 8). */
  attempts?: number;
  /**
   * How long a step may go without a finished task before its job treats it as an outage (no
   * worker running, Redis gone): default 10 minutes.
   */
  stallMs?: number;
  /** How often the step's results are looked for in the database (default 100 ms). */
  pollMs?: number;
  /** After how long without progress a chunk's queue entry is checked, and added again if Redis lost it (default 5 s). */
  recheckMs?: number;
  log?: (msg: string) => void;
}

/** Task data on the queue: ids only; the task's input is read from the database (tasks.ts storedTask). */
export type QueuedTask = Omit<TaskRef, 'input'>;

export const taskJobId = (ref: Pick<QueuedTask, 'job' | 'step' | 'chunk'>, epoch: string) => `${ref.job}.${ref.step}.${ref.chunk}.${epoch}`;

/** The compute server's (API node's) side: adds each step's flow and waits for its results. */
export class BullTaskQueue implements TaskQueue {
  private readonly flows: FlowProducer;
  private readonly tasks: Queue;
  private readonly fanIn: Worker;

  constructor(private readonly o: BullTaskQueueOptions) {
    this.flows = new FlowProducer({ connection: o.failFastConnection });
    this.tasks = new Queue(TASK_QUEUE, { connection: o.failFastConnection });
    // The parent of a step runs when all its children did: it checks the results are all stored.
    this.fanIn = new Worker(
      STEP_QUEUE,
      async (job: Job<{ job: string; step: string; chunks: number }>) => {
        const done = await o.services.store.taskChunksDone(job.data.job, job.data.step);
        return { chunks: job.data.chunks, stored: new Set(done).size };
      },
      { connection: o.connection, concurrency: 4 },
    );
    for (const c of [this.flows, this.tasks, this.fanIn] as Array<{ on(e: 'error', f: (e: Error) => void): unknown }>)
      c.on('error', (e) => o.log?.(`queue: ${e.message}`));
  }

  async runStep(job: JobRow, step: string, task: string, inputs: readonly unknown[], opts: FanOutOptions = {}): Promise<Buffer[]> {
    const { store } = this.o.services;
    // What each task does is stored here; the queue carries only (job, step, chunk).
    const refs: QueuedTask[] = inputs.map((_, chunk) => ({ job: job.id, step, chunk, task }));
    let done = new Set(await store.taskChunksDone(job.id, step));
    if (done.size < inputs.length) await storeStepInputs(store, job.id, step, task, inputs);
    // A fresh epoch per call: ids of an earlier call's failed children do not block this one's.
    const epoch = randomBytes(6).toString('hex');
    let flowAdded = false;
    let lastProgress = Date.now();
    let lastCheck = Date.now();
    let progressAt = Date.now();
    let reported = done.size;
    while (done.size < inputs.length) {
      opts.live?.();
      // Redis away (restarting): the flow is added when it answers again.
      if (!flowAdded)
        flowAdded = !!(await this.whileRedisAnswers(async () => {
          await this.addFlow(
            job.id,
            step,
            refs.filter((r) => !done.has(r.chunk)),
            inputs.length,
            epoch,
          );
          return true;
        }));
      await new Promise((r) => setTimeout(r, this.o.pollMs ?? 100));
      const now = await this.chunksDone(job.id, step);
      if (!now) continue; // the database is away for a moment: the workers back off too
      if (now.size > done.size) lastProgress = progressAt = Date.now();
      done = now;
      if (Date.now() - progressAt > (this.o.stallMs ?? 600_000))
        throw new RemoteError(
          'ERR_UNREACHABLE',
          `no compute worker finished a task of step ${step} for ${Math.round((Date.now() - progressAt) / 1000)} s`,
          503,
        );
      if (done.size !== reported) await opts.onProgress?.((reported = done.size), inputs.length);
      // Redis away (restarting) only delays these checks: the database says what is done.
      const missing = refs.filter((r) => !done.has(r.chunk));
      if (Date.now() - lastProgress > (this.o.recheckMs ?? 5000)) {
        await this.whileRedisAnswers(() => this.recheck(missing, epoch));
        lastProgress = Date.now();
      }
      if (Date.now() - lastCheck > 1000) {
        const failed = await this.whileRedisAnswers(() => this.failedTask(missing, epoch));
        if (failed) throw failureError(failed);
        lastCheck = Date.now();
      }
    }
    return stepResults(this.o.services, job.id, step, inputs.length);
  }

  /** Runs a check against Redis; a Redis that does not answer (restarting) is logged, not fatal. */
  private async whileRedisAnswers<T>(check: () => Promise<T>): Promise<T | undefined> {
    try {
      return await check();
    } catch (e) {
      this.o.log?.(`queue: Redis did not answer (${(e as Error).message}); the step goes on from the database`);
      return undefined;
    }
  }

  /** The chunks with results, or undefined while the database is briefly unreachable (for up to a minute). */
  private async chunksDone(job: string, step: string): Promise<Set<number> | undefined> {
    try {
      const done = new Set(await this.o.services.store.taskChunksDone(job, step));
      this.dbAwaySince = undefined;
      return done;
    } catch (e) {
      if (!isDatabaseUnavailable(e)) throw e;
      this.dbAwaySince ??= Date.now();
      if (Date.now() - this.dbAwaySince > 60_000) throw e;
      return undefined;
    }
  }

  private dbAwaySince: number | undefined;

  private async addFlow(job: string, step: string, refs: readonly QueuedTask[], chunks: number, epoch: string): Promise<void> {
    await this.flows.add({
      name: `${step}`,
      queueName: STEP_QUEUE,
      data: { job, step, chunks },
      opts: { jobId: `${job}.${step}.${epoch}`, removeOnComplete: 100, removeOnFail: 100 },
      children: refs.map((ref) => ({
        name: ref.task,
        queueName: TASK_QUEUE,
        data: ref,
        opts: {
          jobId: taskJobId(ref, epoch),
          attempts: this.o.attempts ?? 8,
          backoff: { type: 'exponential', delay: 250 },
          removeOnComplete: 1000,
          removeOnFail: 1000,
          // A failed child must not hold the parent for ever: the job's poll sees the failure.
          ignoreDependencyOnFailure: true,
        },
      })),
    });
  }

  /** Chunks the queue no longer has (Redis restarted without its data) are added again, on their own. */
  private async recheck(refs: readonly QueuedTask[], epoch: string): Promise<void> {
    for (const ref of refs) {
      const id = taskJobId(ref, epoch);
      const queued = await this.tasks.getJob(id);
      // Failed for a reason a retry may cure (a worker that stalled too often): try again.
      if (queued && (await queued.getState()) === 'failed' && !parseFailure(queued.failedReason).final) await queued.retry('failed');
      if (queued) continue;
      this.o.log?.(`queue: task ${id} is not in Redis any more; adding it again`);
      await this.tasks.add(ref.task, ref, { jobId: id, attempts: this.o.attempts ?? 8, backoff: { type: 'exponential', delay: 250 } });
    }
  }

  /** A child that failed for good (its attempts spent, or a final error): its failure ends the step. */
  private async failedTask(refs: readonly QueuedTask[], epoch: string): Promise<TaskFailure | undefined> {
    // One look at the queue's failed tasks (the last thousand kept), not one call per missing chunk.
    const mine = new Map(refs.map((r) => [taskJobId(r, epoch), r]));
    for (const queued of await this.tasks.getFailed(0, 999)) {
      const ref = queued.id === undefined ? undefined : mine.get(queued.id);
      if (!ref || !queued.failedReason) continue;
      const exhausted = queued.attemptsMade >= (queued.opts.attempts ?? 1);
      const f = parseFailure(queued.failedReason);
      if (!(exhausted || f.final)) continue;
      // The result may have been stored by an earlier attempt after all.
      if (await this.o.services.store.hasTaskResult(ref.job, ref.step, ref.chunk)) continue;
      if ((await queued.getState()) !== 'failed') continue;
      return f;
    }
    return undefined;
  }

  async depth(): Promise<{ waiting: number; active: number }> {
    const c = await this.tasks.getJobCounts('waiting', 'delayed', 'prioritized', 'active');
    return { waiting: (c.waiting ?? 0) + (c.delayed ?? 0) + (c.prioritized ?? 0), active: c.active ?? 0 };
  }

  async close(): Promise<void> {
    await this.fanIn.close();
    await this.flows.close();
    await this.tasks.close();
  }
}

export function parseFailure(reason: string): TaskFailure {
  try {
    const f = JSON.parse(reason) as TaskFailure;
    if (typeof f.code === 'string' && typeof f.message === 'string') return f;
  } catch {
    // not ours: a stalled job's reason from BullMQ itself
  }
  return { code: 'ERR_INTERNAL', message: reason, final: false };
}
