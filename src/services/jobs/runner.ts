/**
 * The one job runner of the compute server (CCS): admits a job of any kind, runs it in the
 * background, records phases, progress, timings and failures in the store, and resumes every
 * unfinished job when the server starts again. While the key server (KMS) is unreachable a job
 * waits and retries from its last checkpoint; any other failure ends the job with the reason.
 */
import type { ProcessMetrics } from '../metrics.js';
import { CiphermineError, deserializePublicKey, type BcpPublicKey } from '../../crypto/index.js';
import { RemoteError } from '../../protocols/index.js';
import { HttpError, badRequest, notFound } from '../http-errors.js';
import type { JobRow, Party } from '../store/index.js';
import type { JobContext, JobKind, JobServices } from './job-kind.js';
import { datasetsOf, KeyRegistrar } from './key-registration.js';
import { Mailboxes } from './mailbox.js';
import { LocalTaskQueue, STEP_INPUTS, type TaskQueue } from './tasks.js';
import { createHash } from 'node:crypto';

/** True when an error means "the key server is down or restarting", not "the request was bad". */
export function isKeyServerUnavailable(e: unknown): boolean {
  if (e instanceof RemoteError) return e.status >= 500 && e.status !== 502;
  const err = e as { message?: string; cause?: { code?: string } };
  return e instanceof TypeError && (/fetch failed/.test(err.message ?? '') || !!err.cause?.code);
}

/**
 * True for a database that is briefly away (PostgreSQL restarting or refusing connections, SQLite
 * busy): the job waits and retries like for the key server, rather than failing with its budget spent.
 */
export function isDatabaseUnavailable(e: unknown): boolean {
  const code = String((e as { code?: unknown }).code ?? '');
  return (
    /^(ECONNREFUSED|ECONNRESET|ETIMEDOUT|57P0[123]|08\w{3}|SQLITE_BUSY|SQLITE_LOCKED)$/.test(code) ||
    // A connection the server ended under a transaction fails its rollback with "not queryable".
    /Connection terminated|not queryable|Client was closed/.test((e as Error).message ?? '')
  );
}

/**
 * A failure no input can cause: the key server could not be reached at all (a key server that
 * answers 500 might have failed on the data) or the database was away.
 */
/** The job blob that marks a charge as past refunding (JobContext.keepCharge). */
const CHARGE_KEPT = 'charge-kept';

export function isOutage(e: unknown): boolean {
  if (e instanceof RemoteError) return e.code === 'ERR_UNREACHABLE' || e.code === 'ERR_SESSION_LOST';
  return (isKeyServerUnavailable(e) && !(e instanceof RemoteError)) || isDatabaseUnavailable(e);
}

/** Thrown inside a job when its server is shutting down: the job stays unfinished and resumes. */
class JobInterrupted extends Error {}

export interface JobRunnerOptions {
  services: JobServices;
  kinds: readonly JobKind[];
  /** How long a job waits for an unreachable key server or database before it fails. */
  retryForMs?: number;
  /** Jobs run at once; more wait in state queued (default 2: one per core of a small server). */
  slots?: number;
  log?: (msg: string) => void;
  /** Phase seconds, ended jobs, queue depth (services/metrics.ts). */
  metrics?: ProcessMetrics;
  /** Where chunk tasks run: given a runner's kinds, the queue (default: in this process). */
  tasks?: (kinds: ReadonlyMap<string, JobKind>) => TaskQueue;
}

export class JobRunner {
  private readonly running = new Map<string, Promise<void>>();
  private readonly waiting: string[] = [];
  private readonly kinds: Map<string, JobKind>;
  /** When each running job last finished a step, so a later outage gets a fresh retry window. */
  private readonly lastStep = new Map<string, number>();
  private stopped = false;
  private readonly keys: KeyRegistrar;
  /** Jobs' mailboxes to their outside participants (mailbox-routes.ts serves the other side). */
  readonly mailboxes = new Mailboxes();
  /** Where this runner's jobs run their chunk tasks. */
  readonly tasks: TaskQueue;

  constructor(private readonly o: JobRunnerOptions) {
    this.kinds = new Map(o.kinds.map((k) => [k.name, k]));
    this.tasks = o.tasks ? o.tasks(this.kinds) : new LocalTaskQueue(o.services, this.kinds);
    this.keys = new KeyRegistrar(o.services);
    o.metrics?.gauge('ciphermine_jobs_running', 'jobs running in this process', () => this.running.size);
    o.metrics?.gauge('ciphermine_jobs_waiting', 'jobs queued for a free slot (queue depth)', () => this.waiting.length);
  }

  kindNames(): Array<{ name: string; description: string }> {
    return [...this.kinds.values()].map((k) => ({ name: k.name, description: k.description }));
  }

  kind(name: string): JobKind {
    const k = this.kinds.get(name);
    if (!k) throw new HttpError('ERR_UNKNOWN_JOB_KIND', `no job kind '${name}' (this server runs ${[...this.kinds.keys()].join(', ')})`);
    return k;
  }

  /** Validates, admits (charging any privacy budget with the job's creation) and starts a job. */
  async submit(client: Party, kindName: string, rawSpec: unknown): Promise<string> {
    const kind = this.kind(kindName);
    const parsed = kind.spec.safeParse(rawSpec);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw badRequest(`invalid ${kind.name} spec: ${issue?.path.join('.') || 'spec'}: ${issue?.message ?? 'invalid'}`);
    }
    const { spec, charge } = await kind.admit({ services: this.o.services, client }, parsed.data);
    const created = await this.o.services.store.createJob(client.id, kind.name, spec, charge);
    if (!created.ok) {
      const d = created.dataset;
      const left = d.epsilonBudgetMicro === null ? 0 : (d.epsilonBudgetMicro - d.epsilonSpentMicro) / 1e6;
      const deltaLeft = (d.deltaBudgetPico - d.deltaSpentPico) / 1e12;
      const deltaShort = (charge!.deltaPico ?? 0) > d.deltaBudgetPico - d.deltaSpentPico;
      throw new HttpError(
        'ERR_PRIVACY_BUDGET_EXCEEDED',
        deltaShort
          ? `dataset ${d.id} has delta budget ${deltaLeft} left, the query needs ${charge!.deltaPico! / 1e12}`
          : `dataset ${d.id} has privacy budget ${left} left, the query needs ${charge!.epsilonMicro / 1e6}`,
      );
    }
    this.start(created.id);
    return created.id;
  }

  /** Runs the job now if a slot is free, else queues it (first come, first served). */
  start(jobId: string): void {
    if (this.running.has(jobId) || this.waiting.includes(jobId) || this.stopped) return;
    if (this.running.size >= (this.o.slots ?? 2)) {
      this.waiting.push(jobId);
      return;
    }
    const p = this.runWithRetry(jobId).finally(() => {
      this.running.delete(jobId);
      this.lastStep.delete(jobId);
      if (this.mailboxes.has(jobId)) this.mailboxes.retire(jobId);
      const next = this.waiting.shift();
      if (next) this.start(next);
    });
    this.running.set(jobId, p);
  }

  async resumeAll(): Promise<void> {
    for (const id of await this.o.services.store.unfinishedJobs()) this.start(id);
  }

  /** Interrupts running jobs at their next step; they stay unfinished and resume on restart. */
  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.allSettled(this.running.values());
    await this.tasks.close();
  }

  private async runWithRetry(jobId: string): Promise<void> {
    const { store } = this.o.services;
    let waitingSince: number | undefined;
    for (;;) {
      try {
        await this.run(jobId);
        return;
      } catch (e) {
        if (this.stopped || e instanceof JobInterrupted) return;
        const keyServer = isKeyServerUnavailable(e);
        if (keyServer || isDatabaseUnavailable(e)) {
          // A step finished since the last outage began: this is a new outage with a full window.
          if (waitingSince !== undefined && (this.lastStep.get(jobId) ?? 0) > waitingSince) waitingSince = undefined;
          waitingSince ??= Date.now();
          if (Date.now() - waitingSince < (this.o.retryForMs ?? 300_000)) {
            const what = keyServer ? 'the key server' : 'the database';
            await store.updateJob(jobId, { phase: `waiting for ${what}` }).catch(() => undefined);
            this.o.log?.(`job ${jobId}: ${what} unreachable, retrying from the last checkpoint`);
            await new Promise((r) => setTimeout(r, 500));
            continue;
          }
        }
        await this.fail(jobId, e, isOutage(e));
        return;
      }
    }
  }

  /**
   * Ends a job with its reason. Typed errors (bad data, a refused budget) carry messages meant for
   * the client; anything else is a bug or an outage whose details (hosts, SQL) stay in the log.
   *
   * `outage`: the job failed because the key server or the database stayed away past the retry
   * window, which no query client can cause and which says nothing about the data, so its privacy
   * budget goes back. Any other failure keeps its charge: it may depend on the data (a value
   * outside its declared range, a bug on some input), and a free failure that depends on the data
   * is a free question about it, asked as often as the client likes (the timings of a failed job
   * grow with the record count).
   */
  private async fail(jobId: string, e: unknown, outage: boolean): Promise<void> {
    const typed = e instanceof CiphermineError && e.code !== 'ERR_INTERNAL';
    const code = typed ? e.code : 'ERR_INTERNAL';
    const message = typed ? e.message : 'internal error (details in the compute server log)';
    this.o.log?.(`job ${jobId} failed: ${e instanceof Error ? (typed ? e.message : e.stack) : String(e)}`);
    for (;;) {
      try {
        await this.o.services.store.updateJob(jobId, { state: 'failed', phase: 'failed', error: message, errorCode: code, finishedAt: Date.now() });
        const kept = outage && (await this.o.services.store.jobBlob(jobId, CHARGE_KEPT)) !== undefined;
        if (outage && !kept && (await this.o.services.store.refundJob(jobId))) this.o.log?.(`job ${jobId}: privacy budget refunded (an outage)`);
        const kind = (await this.o.services.store.job(jobId).catch(() => undefined))?.kind ?? 'unknown';
        this.o.metrics?.jobsEnded.inc({ kind, state: 'failed' });
        return;
      } catch {
        // The database is away too: keep trying, or the job would show running forever.
        if (this.stopped) return;
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
  }

  private async run(jobId: string): Promise<void> {
    const { store } = this.o.services;
    const job = await store.job(jobId);
    if (!job || job.state === 'done' || job.state === 'failed') return;
    const kind = this.kind(job.kind);
    const client = await store.party(job.clientId);
    if (!client) throw notFound(`the client of job ${jobId} is gone`);
    await store.updateJob(jobId, { state: 'running', startedAt: job.startedAt ?? Date.now() });
    await this.keys.forJob(client, datasetsOf(job.spec));
    const result = kind.result.parse(await kind.run(this.context(job, kind, client)));
    await store.updateJob(jobId, { state: 'done', phase: 'done', finishedAt: Date.now(), result });
    this.o.metrics?.jobsEnded.inc({ kind: job.kind, state: 'done' });
  }

  private context(job: JobRow, kind: JobKind, client: Party): JobContext<unknown> {
    const { services, metrics } = this.o;
    const { store } = services;
    const self = this;
    const live = () => {
      if (this.stopped) throw new JobInterrupted();
    };
    const stepDone = () => this.lastStep.set(job.id, Date.now());
    const box = this.mailboxes.of(job.id);
    let jobKey: BcpPublicKey | undefined = job.jobKey ? deserializePublicKey(job.jobKey, services.params) : undefined;
    const time = async (name: string, seconds: number) => {
      const timings = (await store.job(job.id))!.timings;
      timings[name] = (timings[name] ?? 0) + seconds;
      await store.updateJob(job.id, { timings });
    };
    return {
      id: job.id,
      spec: kind.spec.parse(job.spec),
      client,
      services,
      time,
      async phase(name, work) {
        live();
        await store.updateJob(job.id, { phase: name });
        const start = performance.now();
        const v = await work();
        // No interruption check here: a finished phase is kept, not thrown away on shutdown.
        const seconds = (performance.now() - start) / 1000;
        metrics?.phaseSeconds.inc({ kind: job.kind, phase: name }, seconds);
        await time(name, seconds);
        stepDone();
        return v;
      },
      async progress(done, total, unit, extra) {
        live();
        await store.updateJob(job.id, { progress: { done, total, unit, ...extra } });
      },
      latestCheckpoint: () => store.latestCheckpoint(job.id),
      async saveCheckpoint(cp, progress) {
        await store.saveCheckpoint(job.id, cp, progress);
        stepDone();
        live();
      },
      async once(name, make) {
        const saved = await store.jobBlob(job.id, name);
        if (saved) return saved;
        const parts = await make();
        await store.putJobBlob(job.id, name, parts);
        stepDone();
        live();
        return parts;
      },
      mailbox: {
        send: (to, topic, data) => box.send(to, topic, data),
        seen: (party) => box.seen(party),
        reset: () => box.reset(),
        async receive(from, topic, timeoutMs) {
          const deadline = Date.now() + timeoutMs;
          for (;;) {
            live();
            const data = box.take(from, topic);
            if (data !== undefined) return data;
            if (Date.now() >= deadline) return undefined;
            await new Promise((r) => setTimeout(r, 20));
          }
        },
      },
      async fanOut(step, task, inputs, opts) {
        live();
        // The step's stored results belong to these inputs only: a run after a restart that cut
        // the work differently (another --block-records, another plan) starts a step of its own.
        const digest = createHash('sha256')
          .update(JSON.stringify([task, inputs]))
          .digest('hex')
          .slice(0, 16);
        const results = await self.tasks.runStep(job, `${step}~${digest}`, task, inputs, { ...opts, live });
        stepDone();
        live();
        return results;
      },
      async dropSteps(prefix) {
        await store.dropTaskResults(job.id, prefix);
        await store.dropJobBlobs(job.id, `${STEP_INPUTS}${prefix}`);
      },
      dropBlobs: (prefix) => store.dropJobBlobs(job.id, prefix),
      async keepCharge() {
        if (!(await store.jobBlob(job.id, CHARGE_KEPT))) await store.putJobBlob(job.id, CHARGE_KEPT, [Buffer.from('1')]);
      },
      async jobKey() {
        if (!jobKey) {
          const bytes = Buffer.from(await services.compute.transport.call('job-key', new Uint8Array(0)));
          await store.updateJob(job.id, { jobKey: bytes });
          jobKey = deserializePublicKey(bytes, services.params);
        }
        return jobKey;
      },
    };
  }
}
