/**
 * Runs k-means jobs on the compute server (CCS), in the background, resumable. Phases: get a job
 * key from the key server (sk_c stays there), open the owners' AES envelopes and SCT every value to
 * pk_c (kept in the database so a restart does not redo it), iterate with a checkpoint per
 * iteration, then SCT the centroid sums to the query client's key. When the key server is
 * unreachable the job waits and resumes from its last checkpoint; other failures end the job with
 * the reason.
 */
import type { KeyObject } from 'node:crypto';
import {
  deserializeCiphertexts, serializeCiphertexts, deserializePublicKey,
  FixedPointCodec, CiphermineError, bitLength, type BcpParams, type BcpPublicKey, type Ciphertext,
} from '../crypto/index.js';
import { sct, sctBounded, RemoteError, type AliceContext } from '../protocols/index.js';
import { secureKMeans, type SecureCheckpoint, type SecureKMeansOptions } from '../analytics/kmeans-secure.js';
import { dropShare, newShareId, type RecordShare } from '../protocols/inner-distances.js';
import { MAX_SHARED_VALUES } from '../protocols/share-store.js';
import type { Store, DatasetRow, JobRow } from './store.js';
import { readDataset } from './dataset-reader.js';

/** How many ciphertexts go to the key server in one SCT call. */
const SCT_CHUNK = 4096;

export function isKeyServerUnavailable(e: unknown): boolean {
  if (e instanceof RemoteError) return e.status >= 500 && e.status !== 502;
  const err = e as { message?: string; cause?: { code?: string } };
  return e instanceof TypeError && (/fetch failed/.test(err.message ?? '') || !!err.cause?.code);
}

export interface JobRunnerOptions {
  store: Store;
  alice: AliceContext;
  params: BcpParams;
  x25519: KeyObject;
  /** How long a job waits for an unreachable key server before it fails. */
  retryForMs?: number;
  log?: (msg: string) => void;
}

export class KMeansJobRunner {
  private readonly running = new Map<string, Promise<void>>();
  private stopped = false;

  constructor(private readonly o: JobRunnerOptions) {}

  start(jobId: string): void {
    if (this.running.has(jobId)) return;
    const p = this.runWithRetry(jobId).finally(() => this.running.delete(jobId));
    this.running.set(jobId, p);
  }

  resumeAll(): void {
    for (const id of this.o.store.unfinishedJobs()) this.start(id);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.allSettled(this.running.values());
  }

  private async runWithRetry(jobId: string): Promise<void> {
    const { store } = this.o;
    let waitingSince: number | undefined;
    for (;;) {
      if (this.stopped) return;
      try {
        await this.run(jobId);
        return;
      } catch (e) {
        if (this.stopped) return;
        if (isKeyServerUnavailable(e)) {
          waitingSince ??= Date.now();
          if (Date.now() - waitingSince < (this.o.retryForMs ?? 300_000)) {
            store.updateJob(jobId, { phase: 'waiting for the key server' });
            this.o.log?.(`job ${jobId}: key server unreachable, retrying from the last checkpoint`);
            await new Promise((r) => setTimeout(r, 500));
            continue;
          }
        }
        const message = e instanceof CiphermineError || e instanceof Error ? e.message : String(e);
        store.updateJob(jobId, { state: 'failed', phase: 'failed', error: message, finishedAt: Date.now() });
        this.o.log?.(`job ${jobId} failed: ${message}`);
        return;
      }
    }
  }

  private timed<T>(job: JobRow, phase: string, f: () => Promise<T>): Promise<T> {
    const start = performance.now();
    this.o.store.updateJob(job.id, { phase });
    return f().then((v) => {
      const timings = this.o.store.job(job.id)!.timings;
      timings[phase] = (timings[phase] ?? 0) + (performance.now() - start) / 1000;
      this.o.store.updateJob(job.id, { timings });
      return v;
    });
  }

  private async run(jobId: string): Promise<void> {
    const { store, alice, params } = this.o;
    let job = store.job(jobId)!;
    if (job.state === 'done' || job.state === 'failed') return;
    store.updateJob(jobId, { state: 'running', startedAt: job.startedAt ?? Date.now() });
    if (!job.jobKey) {
      const pk = await alice.transport.call('job-key', new Uint8Array(0));
      store.updateJob(jobId, { jobKey: Buffer.from(pk) });
      job = store.job(jobId)!;
    }
    const jobKey = deserializePublicKey(job.jobKey!, params);
    const datasets = job.spec.datasets.map((id) => store.dataset(id)!);
    const dims = datasets[0]!.columns.length;
    const { records, share } = await this.timed(job, 'conversion', () => this.convert(job, datasets, jobKey));
    const rows: Ciphertext[][] = [];
    for (let i = 0; i < records.length; i += dims) rows.push(records.slice(i, i + dims));
    const saved = store.latestCheckpoint(jobId);
    const resumeFrom: SecureCheckpoint | undefined = saved && {
      iteration: saved.iteration,
      assignments: saved.assignments,
      sizes: saved.sizes,
      sums: chunk(deserializeCiphertexts(saved.sums, jobKey), dims),
    };
    const maxAbs = datasets.reduce((acc, d) => {
      const enc = new FixedPointCodec({ fractionBits: d.fractionBits, maxAbs: d.maxAbs }).maxEncoded;
      return enc > acc ? enc : acc;
    }, 0n);
    let lastCheckpoint = performance.now();
    const loop: SecureKMeansOptions = {
      k: job.spec.k,
      maxIter: job.spec.maxIter,
      initIndices: job.spec.initIndices,
      maxAbs,
      valueBits: bitLength(maxAbs),
      share,
      resumeFrom,
      onCheckpoint: (cp) => {
        store.saveCheckpoint(jobId, {
          iteration: cp.iteration,
          assignments: cp.assignments ?? [],
          sizes: cp.sizes,
          sums: serializeCiphertexts(jobKey, cp.sums.flat()),
        });
        const now = performance.now();
        const timings = store.job(jobId)!.timings;
        timings[`iteration ${cp.iteration}`] = (now - lastCheckpoint) / 1000;
        store.updateJob(jobId, { timings });
        lastCheckpoint = now;
      },
    };
    const result = await this.timed(job, 'iterations', () => secureKMeans(alice, rows, loop)).finally(() => {
      // The key server's share is no longer needed (best effort: its store is bounded anyway).
      if (loop.share) dropShare(alice, jobKey, loop.share.id).catch(() => undefined);
    });
    const client = store.party(job.clientId)!;
    const clientKey = deserializePublicKey(client.bcpPublicKey, params);
    const sums = await this.timed(job, 'result', () => sct(alice, result.sums.flat(), clientKey));
    store.updateJob(jobId, {
      state: 'done',
      phase: 'done',
      iteration: result.iterations,
      finishedAt: Date.now(),
      result: {
        sums: serializeCiphertexts(clientKey, sums).toString('base64'),
        sizes: result.sizes.map(String),
        assignments: result.assignments,
        datasets: datasets.map((d) => ({ id: d.id, rows: d.rows })),
        iterations: result.iterations,
        converged: result.converged,
        columns: datasets[0]!.columns,
        fractionBits: datasets[0]!.fractionBits,
      },
    });
  }

  /**
   * Every value of every dataset, in dataset and row order, under the job key in KMS form. A fresh
   * conversion also leaves the key server a share of the records (inner-distances.ts); after a
   * restart the saved records are shared again by the k-means loop.
   */
  private async convert(job: JobRow, datasets: DatasetRow[], jobKey: BcpPublicKey): Promise<{ records: Ciphertext[]; share?: RecordShare }> {
    const { store, alice, params, x25519 } = this.o;
    const saved = store.jobRecords(job.id);
    if (saved) return { records: deserializeCiphertexts(saved, jobKey, 1 << 24) };
    const inputs = datasets.map((d) => ({
      valueBits: bitLength(new FixedPointCodec({ fractionBits: d.fractionBits, maxAbs: d.maxAbs }).maxEncoded),
      cts: readDataset(store, d, params, x25519),
    }));
    // Larger jobs than the key server's share store holds run their iterations with SDM.
    const fits = inputs.reduce((acc, d) => acc + d.cts.length, 0) <= MAX_SHARED_VALUES;
    const share: RecordShare | undefined = fits ? { id: newShareId(), blinds: [] } : undefined;
    let offset = 0;
    // Datasets convert concurrently, so one's blinding overlaps another's round trip.
    const perDataset = await Promise.all(
      inputs.map(async ({ valueBits, cts }) => {
        const start = offset;
        offset += cts.length;
        const converted: Ciphertext[] = [];
        for (let i = 0; i < cts.length; i += SCT_CHUNK) {
          const opts = { kms: true, share: share && { ...share, offset: start + i } };
          converted.push(...(await sctBounded(alice, cts.slice(i, i + SCT_CHUNK), jobKey, valueBits, opts)));
        }
        return converted;
      }),
    );
    const records = perDataset.flat();
    store.saveJobRecords(job.id, serializeCiphertexts(jobKey, records));
    return { records, share };
  }
}

function chunk<T>(xs: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < xs.length; i += size) out.push(xs.slice(i, i + size));
  return out;
}
