/**
 * Chunk tasks: a job step cut into parts that any compute worker may run (issue 17). A step names
 * its chunks by index; each task carries only ids and ranges (the ciphertexts it reads stay in the
 * database, in the job's blobs and the owners' chunks), and its result is stored once per
 * (job, step, chunk), so a task run twice, after a worker died half-way, cannot count twice.
 *
 * Where the tasks run is the TaskQueue's business: in this process (LocalTaskQueue, the embedded
 * default) or on BullMQ workers on any number of machines (bullmq-queue.ts). Either way the job's
 * code is the same: `ctx.fanOut(step, task, inputs)`.
 */
import { CiphermineError, deserializePublicKey, isErrorCode, type BcpPublicKey } from '../../crypto/index.js';
import { RemoteError } from '../../protocols/index.js';
import type { JobRow, Party, Store } from '../store/index.js';
import type { JobKind, JobServices } from './job-kind.js';

/** What a task handler runs against: the same services as the job, and the job's public facts. */
export interface TaskContext<S = unknown> {
  services: JobServices;
  jobId: string;
  spec: S;
  client: Party;
  /** The job key pk_c (tasks run after the job made it). */
  jobKey: BcpPublicKey;
}

/** One kind of chunk task: small JSON input (ids, ranges) in, a stored result out. */
export type TaskHandler<S = any> = (ctx: TaskContext<S>, input: any) => Promise<Buffer>;

/** The address of one chunk task. */
export interface TaskRef {
  job: string;
  step: string;
  chunk: number;
  task: string;
  input: unknown;
}

export interface FanOutOptions {
  /** Called with the number of chunks done so far, as they finish. */
  onProgress?: (done: number, total: number) => void | Promise<void>;
  /** Throws when the job must stop waiting (its server is shutting down). */
  live?: () => void;
}

/**
 * The job blob, per step, that holds the step's task name and inputs for workers: the queue carries
 * only (job, step, chunk), so what a task does comes from the compute server's database, never
 * from Redis.
 */
export const STEP_INPUTS = 'step-inputs:';

export async function storeStepInputs(store: Store, job: string, step: string, task: string, inputs: readonly unknown[]): Promise<void> {
  await store.putJobBlob(job, `${STEP_INPUTS}${step}`, [Buffer.from(JSON.stringify({ task, inputs }))]);
}

const recentInputs = new Map<string, Promise<{ task: string; inputs: unknown[] }>>();

/** The task a worker was handed by (job, step, chunk), read from the database. */
export async function storedTask(store: Store, job: string, step: string, chunk: number): Promise<TaskRef> {
  const key = `${job}/${step}`;
  let p = recentInputs.get(key);
  if (!p) {
    p = store.jobBlob(job, `${STEP_INPUTS}${step}`).then((parts) => {
      if (!parts) throw new CiphermineError('ERR_NOT_FOUND', `job ${job} has no step ${step}`);
      return JSON.parse(parts[0]!.toString()) as { task: string; inputs: unknown[] };
    });
    p.catch(() => recentInputs.delete(key));
    recentInputs.set(key, p);
    for (const k of recentInputs.keys()) if (recentInputs.size > 16) recentInputs.delete(k);
  }
  const { task, inputs } = await p;
  if (!Number.isInteger(chunk) || chunk < 0 || chunk >= inputs.length)
    throw new CiphermineError('ERR_PARAMETER', `step ${step} has no chunk ${chunk}`);
  return { job, step, chunk, task, input: inputs[chunk] };
}

/** Runs the chunk tasks of job steps and returns their results. */
export interface TaskQueue {
  /**
   * Runs every chunk of `step` that has no stored result yet (chunk i takes inputs[i]) and returns
   * all the step's results in chunk order. A failed task rejects with the task's own error.
   */
  runStep(job: JobRow, step: string, task: string, inputs: readonly unknown[], opts?: FanOutOptions): Promise<Buffer[]>;
  /** Tasks waiting for a worker and running now (the queue's depth), where the queue can tell. */
  depth?(): Promise<{ waiting: number; active: number }>;
  close(): Promise<void>;
}

/** The task handler for `task` among the kinds (tasks are named `<kind>.<name>`). */
export function taskHandler(kinds: ReadonlyMap<string, JobKind>, kindName: string, task: string): TaskHandler {
  const handler = kinds.get(kindName)?.tasks?.[task];
  if (!handler) throw new CiphermineError('ERR_PARAMETER', `job kind '${kindName}' has no task '${task}'`);
  return handler;
}

/**
 * Runs one chunk task where it was received and stores its result, unless a result is stored
 * already (a retry of a task that finished before its worker died): then it does nothing.
 */
export async function runTask(services: JobServices, kinds: ReadonlyMap<string, JobKind>, ref: TaskRef): Promise<boolean> {
  const { store } = services;
  if (await store.hasTaskResult(ref.job, ref.step, ref.chunk)) return false;
  const job = await store.job(ref.job);
  if (!job) throw new CiphermineError('ERR_NOT_FOUND', `no job ${ref.job}`);
  // A job that ended (failed while its tasks waited) needs nothing more: the task is dropped.
  if (job.state === 'done' || job.state === 'failed') return false;
  if (!job.jobKey) throw new CiphermineError('ERR_CONFLICT', `job ${ref.job} has no job key yet`);
  const kind = kinds.get(job.kind);
  if (!kind) throw new CiphermineError('ERR_UNKNOWN_JOB_KIND', `no job kind '${job.kind}' in this worker`);
  const client = await store.party(job.clientId);
  if (!client) throw new CiphermineError('ERR_NOT_FOUND', `the client of job ${ref.job} is gone`);
  const ctx: TaskContext = {
    services,
    jobId: job.id,
    spec: kind.spec.parse(job.spec),
    client,
    jobKey: deserializePublicKey(job.jobKey, services.params),
  };
  const result = await taskHandler(kinds, job.kind, ref.task)(ctx, ref.input);
  return store.putTaskResult(ref.job, ref.step, ref.chunk, result);
}

/** The results of all chunks of a step, in order; throws if any is missing. */
export async function stepResults(services: JobServices, job: string, step: string, chunks: number): Promise<Buffer[]> {
  const got = await services.store.taskResults(job, step);
  return Array.from({ length: chunks }, (_, i) => {
    const r = got.get(i);
    if (!r) throw new CiphermineError('ERR_INTERNAL', `step ${step} of job ${job} has no result for chunk ${i}`);
    return r;
  });
}

/** The embedded default: the tasks run in this process, a few at a time, results stored as on workers. */
export class LocalTaskQueue implements TaskQueue {
  constructor(
    private readonly services: JobServices,
    private readonly kinds: ReadonlyMap<string, JobKind>,
    /** Tasks at once (default 2: one's round trip to the key server overlaps another's arithmetic). */
    private readonly concurrency = 2,
  ) {}

  async runStep(job: JobRow, step: string, task: string, inputs: readonly unknown[], opts: FanOutOptions = {}): Promise<Buffer[]> {
    const done = new Set(await this.services.store.taskChunksDone(job.id, step));
    const todo = inputs.map((input, chunk) => ({ job: job.id, step, chunk, task, input })).filter((t) => !done.has(t.chunk));
    let finished = done.size;
    let next = 0;
    const lane = async () => {
      while (next < todo.length) {
        opts.live?.();
        await runTask(this.services, this.kinds, todo[next++]!);
        await opts.onProgress?.(++finished, inputs.length);
      }
    };
    // Every lane ends before a failure propagates, so none keeps calling the key server behind a retry.
    const settled = await Promise.allSettled(Array.from({ length: Math.min(this.concurrency, todo.length) }, lane));
    const failed = settled.find((s) => s.status === 'rejected');
    if (failed) throw failed.reason;
    return stepResults(this.services, job.id, step, inputs.length);
  }

  async close(): Promise<void> {}
}

/** A task's failure as it crosses the queue: its code, message and status, so the job sees a typed error. */
export interface TaskFailure {
  code: string;
  message: string;
  status?: number;
  remote?: boolean;
  detail?: { index?: number };
  /** The failure would not go away on a retry (bad data, a refused request). */
  final: boolean;
}

export function describeFailure(e: unknown, final: boolean): TaskFailure {
  if (e instanceof RemoteError) return { code: e.code, message: e.message, status: e.status, remote: true, detail: e.detail, final };
  if (e instanceof CiphermineError) return { code: e.code, message: e.message, final };
  if (e instanceof TypeError && /fetch failed/.test(e.message))
    return { code: 'ERR_UNREACHABLE_KEY_SERVER', message: 'the key server is unreachable', final };
  const err = e as { code?: unknown; message?: string; cause?: { code?: string } };
  // Keep the system codes the runner's outage tests read (ECONNREFUSED, 57P01, ...).
  const code = typeof err.code === 'string' ? err.code : (err.cause?.code ?? 'ERR_INTERNAL');
  return { code, message: err.message ?? String(e), final };
}

/** The job's side: the task's error again, as the type it was on the worker. */
export function failureError(f: TaskFailure): Error {
  if (f.remote) return new RemoteError(f.code, f.message, f.status ?? 502, f.detail);
  if (isErrorCode(f.code)) return new CiphermineError(f.code, f.message);
  if (f.code === 'ERR_UNREACHABLE_KEY_SERVER') return new RemoteError('ERR_UNREACHABLE', f.message, 503);
  return Object.assign(new Error(f.message), { code: f.code });
}
