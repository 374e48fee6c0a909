/**
 * The one job runner of the compute server (CCS): admits a job of any kind, runs it in the
 * background, records phases, progress, timings and failures in the store, and resumes every
 * unfinished job when the server starts again. While the key server (KMS) is unreachable a job
 * waits and retries from its last checkpoint; any other failure ends the job with the reason.
 */
import { CiphermineError, isErrorCode, type BcpPublicKey } from '../../crypto/index.js';
import { deserializePublicKey } from '../../crypto/index.js';
import { RemoteError } from '../../protocols/index.js';
import { HttpError, badRequest, notFound } from '../http-errors.js';
import type { JobRow, Party } from '../store/index.js';
import type { JobContext, JobKind, JobServices } from './job-kind.js';

/** True when an error means "the key server is down or restarting", not "the request was bad". */
export function isKeyServerUnavailable(e: unknown): boolean {
  if (e instanceof RemoteError) return e.status >= 500 && e.status !== 502;
  const err = e as { message?: string; cause?: { code?: string } };
  return e instanceof TypeError && (/fetch failed/.test(err.message ?? '') || !!err.cause?.code);
}

/** Thrown inside a job when its server is shutting down: the job stays unfinished and resumes. */
class JobInterrupted extends Error {}

export interface JobRunnerOptions {
  services: JobServices;
  kinds: readonly JobKind[];
  /** How long a job waits for an unreachable key server before it fails. */
  retryForMs?: number;
  log?: (msg: string) => void;
}

export class JobRunner {
  private readonly running = new Map<string, Promise<void>>();
  private readonly kinds: Map<string, JobKind>;
  private stopped = false;

  constructor(private readonly o: JobRunnerOptions) {
    this.kinds = new Map(o.kinds.map((k) => [k.name, k]));
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
      throw new HttpError(
        'ERR_PRIVACY_BUDGET_EXCEEDED',
        `dataset ${d.id} has privacy budget ${left} left, the query needs ${charge!.epsilonMicro / 1e6}`,
      );
    }
    this.start(created.id);
    return created.id;
  }

  start(jobId: string): void {
    if (this.running.has(jobId) || this.stopped) return;
    const p = this.runWithRetry(jobId).finally(() => this.running.delete(jobId));
    this.running.set(jobId, p);
  }

  async resumeAll(): Promise<void> {
    for (const id of await this.o.services.store.unfinishedJobs()) this.start(id);
  }

  /** Interrupts running jobs at their next step; they stay unfinished and resume on restart. */
  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.allSettled(this.running.values());
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
        if (isKeyServerUnavailable(e)) {
          waitingSince ??= Date.now();
          if (Date.now() - waitingSince < (this.o.retryForMs ?? 300_000)) {
            await store.updateJob(jobId, { phase: 'waiting for the key server' });
            this.o.log?.(`job ${jobId}: key server unreachable, retrying from the last checkpoint`);
            await new Promise((r) => setTimeout(r, 500));
            continue;
          }
        }
        const message = e instanceof Error ? e.message : String(e);
        const code =
          e instanceof CiphermineError ? e.code : isErrorCode((e as { code?: unknown }).code) ? (e as { code: string }).code : 'ERR_INTERNAL';
        await store
          .updateJob(jobId, { state: 'failed', phase: 'failed', error: message, errorCode: code, finishedAt: Date.now() })
          .catch(() => undefined);
        this.o.log?.(`job ${jobId} failed: ${e instanceof Error && !(e instanceof CiphermineError) ? e.stack : message}`);
        return;
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
    const result = kind.result.parse(await kind.run(this.context(job, kind, client)));
    await store.updateJob(jobId, { state: 'done', phase: 'done', finishedAt: Date.now(), result });
  }

  private context(job: JobRow, kind: JobKind, client: Party): JobContext<unknown> {
    const { services } = this.o;
    const { store } = services;
    const live = () => {
      if (this.stopped) throw new JobInterrupted();
    };
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
        await time(name, (performance.now() - start) / 1000);
        live();
        return v;
      },
      async progress(done, total, unit) {
        live();
        await store.updateJob(job.id, { progress: { done, total, unit } });
      },
      latestCheckpoint: () => store.latestCheckpoint(job.id),
      async saveCheckpoint(cp, progress) {
        await store.saveCheckpoint(job.id, cp, progress);
        live();
      },
      async once(name, make) {
        const saved = await store.jobBlob(job.id, name);
        if (saved) return saved;
        const parts = await make();
        await store.putJobBlob(job.id, name, parts);
        live();
        return parts;
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
