/**
 * A query client (QC): registers its BCP public key, submits jobs of any kind over datasets it was
 * granted, follows them, and is the only party that can decrypt the results (they arrive under its
 * own key). `kmeans()` and `stats()` do all three and decode the fixed point.
 */
import { trainResult, type TrainRawResult, type TrainSpec } from '../services/jobs/kinds/train-schema.js';
import { predictResult, type PredictSpec } from '../services/jobs/kinds/predict-schema.js';
import { releaseModelResult } from '../services/jobs/kinds/release-model-schema.js';
import { modelFile, unpackModel, type ModelFile } from './model-file.js';
import { checkNewParams, pinCertificate } from './pins.js';
import { exportAgreementPrivateKey, generateAgreementKeyPair, importAgreementPrivateKey } from '../crypto/key-agreement.js';
import type { KeyObject } from 'node:crypto';
import {
  deserializeParams,
  keyGen,
  serializePublicKey,
  serializeSecretKey,
  deserializeSecretKey,
  deserializeCiphertexts,
  type BcpSecretKey,
} from '../crypto/index.js';
import { ParameterError } from '../crypto/errors.js';
import { ApiError, ComputeServerApi } from './api.js';
import type { IdentityFile } from './identity.js';

import type { z } from 'zod';
import type { DatasetRow } from '../services/store/store.js';
import { jobStatusSchema, type JobStatus as ServerJobStatus } from '../services/jobs/job-status.js';
import { kmeansResult, type KMeansSpec, type KMeansRawResult } from '../services/jobs/kinds/kmeans-schema.js';
import { statsResult, type StatsSpec, type StatsRawResult } from '../services/jobs/kinds/stats-schema.js';

export type { KMeansSpec, StatsSpec };
/** @deprecated the name of KMeansSpec before job kinds */
export type KMeansRequest = KMeansSpec;
export type StatsRequest = StatsSpec;

export interface KMeansOutcome {
  columns: string[];
  /** k centroids in the input's units. */
  centroids: number[][];
  /** Exact centroid sums in encoded units, with the sizes: centroid = sum / size / 2^f. */
  sums: bigint[][];
  sizes: number[];
  /** Cluster of each record, datasets in the order requested, rows in upload order. */
  assignments: number[];
  iterations: number;
  converged: boolean;
  fractionBits: number;
}

export interface StatsAnswer {
  kind: StatsSpec['kind'];
  /** count, sum or mean, in the input's units. */
  value?: number;
  /** histogram: noisy count per bin. */
  counts?: number[];
  /** mode: the bin the exponential mechanism chose. */
  choice?: number;
  epsilon: number;
  mode: 'pmdp' | 'spmdp';
  budgetRemaining: Record<string, number>;
}

/** A job's status as the client sees it: the server's, with any value for this client alone opened. */
export type JobStatus = ServerJobStatus & { opened?: { label: string; values: number[] } };

export interface FollowOptions {
  /** Called with every status seen while the job runs (for progress displays). */
  onStatus?: (s: JobStatus) => void;
  /** Called once with the job id as soon as the server accepted the job. */
  onSubmitted?: (jobId: string) => void;
  intervalMs?: number;
}

/** A job that ended in failure, with the server's reason and error code. */
export class JobFailedError extends ApiError {
  constructor(
    readonly jobId: string,
    readonly status_: JobStatus,
  ) {
    super(409, status_.errorCode ?? 'ERR_INTERNAL', `job ${jobId} failed: ${status_.error ?? 'unknown reason'}`);
  }
}

/** A granted dataset as a client sees it: no row counts and no budget spent (see datasets()). */
export type GrantedDataset = Omit<DatasetRow, 'rows' | 'epsilonSpentMicro'>;

export class QueryClient {
  private constructor(
    readonly id: string,
    private readonly api: ComputeServerApi,
    readonly sk: BcpSecretKey,
    private readonly token: string,
    /** X25519 key pair half and the server's pinned key: they prove this client when its token is rotated. */
    private readonly agreement?: { privateKey: KeyObject; serverPublic: string },
  ) {}

  static async register(serverUrl: string, name: string, opts: { expectParams?: string; expectCert?: string } = {}): Promise<QueryClient> {
    const api = new ComputeServerApi(serverUrl, undefined, { tls: await pinCertificate(serverUrl, opts.expectCert) });
    const info = await api.request<{ params: string; x25519PublicKey: string }>('GET', '/v1/info');
    const sk = keyGen(checkNewParams(deserializeParams(Buffer.from(info.params, 'base64')), serverUrl, opts.expectParams));
    const x = generateAgreementKeyPair();
    const { id, token } = await api.request<{ id: string; token: string }>('POST', '/v1/register', {
      role: 'client',
      name,
      bcpPublicKey: serializePublicKey(sk.publicKey).toString('base64'),
      x25519PublicKey: x.publicKey,
    });
    return new QueryClient(id, api.withToken(token), sk, token, { privateKey: x.privateKey, serverPublic: info.x25519PublicKey });
  }

  static fromIdentity(f: IdentityFile): QueryClient {
    if (f.role !== 'client') throw new ParameterError(`identity ${f.id} is a data owner's; query client commands need a query client's identity`);
    const api = new ComputeServerApi(f.server, f.token, { tls: f.pins?.tls, params: f.pins?.params });
    const agreement =
      f.x25519PrivateKey && f.pins?.x25519
        ? { privateKey: importAgreementPrivateKey(Buffer.from(f.x25519PrivateKey, 'base64')), serverPublic: f.pins.x25519 }
        : undefined;
    return new QueryClient(f.id, api, deserializeSecretKey(Buffer.from(f.bcpSecretKey, 'base64')), f.token, agreement);
  }

  identity(): IdentityFile {
    return {
      role: 'client',
      id: this.id,
      token: this.token,
      server: this.api.baseUrl,
      bcpSecretKey: serializeSecretKey(this.sk).toString('base64'),
      ...(this.agreement ? { x25519PrivateKey: exportAgreementPrivateKey(this.agreement.privateKey).toString('base64') } : {}),
      pins: { params: this.sk.publicKey.params.fingerprint, x25519: this.agreement?.serverPublic, tls: this.api.pins.tls },
    };
  }

  /** Submits a job of any kind the server runs; returns its id at once. */
  async submit(kind: string, spec: unknown): Promise<string> {
    return (await this.api.request<{ id: string }>('POST', '/v1/jobs', { kind, spec })).id;
  }

  /** The job's status; a value the job reports for this client alone (a training's loss) comes opened. */
  async status(jobId: string): Promise<JobStatus> {
    const s = jobStatusSchema.parse(await this.api.request('GET', `/v1/jobs/${encodeURIComponent(jobId)}`));
    const secret = s.progress?.secret;
    if (!secret) return s;
    // A poll sees the same value until the next epoch: open each one once.
    if (this.lastSecret?.values !== secret.values)
      this.lastSecret = { values: secret.values, opened: this.openFixed(secret.values, secret.fractionBits) };
    return { ...s, opened: { label: secret.label, values: this.lastSecret.opened } };
  }

  /**
   * The datasets this client was granted: id, name, columns and encoding, without row counts
   * (which differentially private answers need the client not to know exactly).
   */
  async datasets(): Promise<GrantedDataset[]> {
    return (await this.api.request<{ datasets: GrantedDataset[] }>('GET', '/v1/datasets')).datasets;
  }

  /** This client's jobs, newest first. */
  async jobs(limit = 100): Promise<JobStatus[]> {
    const r = await this.api.request<{ jobs: unknown[] }>('GET', `/v1/jobs?limit=${limit}`);
    return r.jobs.map((j) => jobStatusSchema.parse(j));
  }

  /**
   * Polls until the job is done or failed, reporting each status seen. A compute server that is
   * restarting (unreachable, 502 to 504) is waited for up to `patienceMs`: the job resumes there, and
   * submitting it again would run (and, for DP, charge) it twice.
   */
  async waitFor(jobId: string, onStatus?: (s: JobStatus) => void, intervalMs = 250, patienceMs = 600_000): Promise<JobStatus> {
    let awaySince: number | undefined;
    for (;;) {
      let s: JobStatus;
      try {
        s = await this.status(jobId);
        awaySince = undefined;
      } catch (e) {
        const away = e instanceof ApiError && (e.code === 'ERR_UNREACHABLE' || (e.status >= 502 && e.status <= 504));
        awaySince ??= Date.now();
        if (!away || Date.now() - awaySince > patienceMs) throw e;
        await new Promise((r) => setTimeout(r, Math.max(intervalMs, 1000)));
        continue;
      }
      onStatus?.(s);
      if (s.state === 'done' || s.state === 'failed') return s;
      await new Promise((r) => setTimeout(r, intervalMs));
    }
  }

  /** The raw result of a done job, checked against the kind's result schema. */
  async rawResult<R>(jobId: string, schema: z.ZodType<R>): Promise<R> {
    const r = await this.api.request<{ kind: string; result: unknown }>('GET', `/v1/jobs/${encodeURIComponent(jobId)}/result`);
    return schema.parse(r.result);
  }

  /** k-means over granted datasets: submits, follows and decrypts (centroids in the input's units). */
  async kmeans(spec: KMeansSpec, follow: FollowOptions = {}): Promise<KMeansOutcome & { jobId: string }> {
    const jobId = await this.submitKMeans(spec);
    await this.follow(jobId, follow);
    return { jobId, ...(await this.kmeansResult(jobId)) };
  }

  /** A differentially private aggregate: submits, follows and decrypts the released values. */
  async stats(spec: StatsSpec, follow: FollowOptions = {}): Promise<StatsAnswer & { jobId: string }> {
    const jobId = await this.submit('stats', spec);
    await this.follow(jobId, follow);
    return { jobId, ...(await this.statsResult(jobId)) };
  }

  /**
   * Trains a neural network on granted training uploads (seed 002): submits and follows. The model
   * is released under the data owners' joint key; they decrypt it together (DataOwner.decryptModel).
   */
  async train(spec: TrainSpec, follow: FollowOptions = {}): Promise<TrainRawResult & { jobId: string; lossPerEpoch?: number[] }> {
    const jobId = await this.submit('train', spec);
    await this.follow(jobId, follow);
    const raw = await this.rawResult(jobId, trainResult);
    // The epochs' losses, which only this client can open (fixed point).
    const lossPerEpoch = raw.losses === undefined ? undefined : this.openFixed(raw.losses, raw.fractionBits);
    return { jobId, ...raw, lossPerEpoch };
  }

  /**
   * Predicts with a model this client trained, still in shares at the servers, on granted
   * secret-shared uploads (seed 002): one prediction per row, datasets in the order given. Only
   * this client can open them: class labels (classification) or values (regression).
   */
  async predict(
    spec: PredictSpec,
    follow: FollowOptions = {},
  ): Promise<{ jobId: string; predictions: number[]; task: 'classification' | 'regression' }> {
    const jobId = await this.submit('predict', spec);
    await this.follow(jobId, follow);
    const raw = await this.rawResult(jobId, predictResult);
    const values = this.decrypt(raw.predictions);
    if (values.length !== raw.rows) throw new ParameterError(`expected ${raw.rows} predictions, got ${values.length}`);
    const predictions =
      raw.task === 'regression'
        ? values.map((v) => Number(v) / 2 ** raw.fractionBits)
        : values.map((v) => {
            const label = raw.classes?.[Number(v)];
            if (label === undefined) throw new ParameterError(`a prediction names class ${v}, which the model does not have`);
            return label;
          });
    return { jobId, predictions, task: raw.task };
  }

  /**
   * Receives the model of a `train` job this client ran, under its own key, and opens it: the same
   * model file the owners' joint decryption gives. Every owner of the training data must have
   * granted this client scope `model`; otherwise only the owners can open the model.
   */
  async releaseModel(trainJob: string, follow: FollowOptions = {}): Promise<ModelFile & { releaseJob: string }> {
    const jobId = await this.submit('release-model', { model: trainJob });
    await this.follow(jobId, follow);
    const raw = await this.rawResult(jobId, releaseModelResult);
    return { ...modelFile(trainJob, raw, unpackModel(this.decrypt(raw.model), raw.parameters)), releaseJob: jobId };
  }

  submitKMeans(spec: KMeansSpec): Promise<string> {
    return this.submit('kmeans', spec);
  }

  async kmeansResult(jobId: string): Promise<KMeansOutcome> {
    return this.decodeKMeans(await this.rawResult(jobId, kmeansResult));
  }

  async statsResult(jobId: string): Promise<StatsAnswer> {
    return this.decodeStats(await this.rawResult(jobId, statsResult));
  }

  private async follow(jobId: string, o: FollowOptions): Promise<void> {
    o.onSubmitted?.(jobId);
    const s = await this.waitFor(jobId, o.onStatus, o.intervalMs);
    if (s.state === 'failed') throw new JobFailedError(jobId, s);
  }

  /** The last value opened from a job's progress, so polling does not decrypt it again. */
  private lastSecret?: { values: string; opened: number[] };

  /** Opens ciphertexts of non-negative fixed-point values (a loss, a value in the progress). */
  private openFixed(base64: string, fractionBits: number): number[] {
    return this.decrypt(base64).map((v) => Number(v) / 2 ** fractionBits);
  }

  private decrypt(base64: string): bigint[] {
    return deserializeCiphertexts(Buffer.from(base64, 'base64'), this.sk.publicKey).map((c) => this.sk.decrypt(c));
  }

  private decodeKMeans(raw: KMeansRawResult): KMeansOutcome {
    const m = raw.columns.length;
    const flat = this.decrypt(raw.sums);
    const sums = raw.sizes.map((_, j) => flat.slice(j * m, (j + 1) * m));
    const scale = 2 ** raw.fractionBits;
    return {
      columns: raw.columns,
      sums,
      sizes: raw.sizes.map(Number),
      centroids: sums.map((s, j) => s.map((x) => Number(x) / Number(raw.sizes[j]) / scale)),
      assignments: raw.assignments,
      iterations: raw.iterations,
      converged: raw.converged,
      fractionBits: raw.fractionBits,
    };
  }

  private decodeStats(raw: StatsRawResult): StatsAnswer {
    const v = this.decrypt(raw.released);
    const scale = 2 ** raw.fractionBits;
    const base = { kind: raw.kind, epsilon: raw.epsilon, mode: raw.mode, budgetRemaining: raw.budgetRemaining };
    switch (raw.kind) {
      case 'count':
        return { ...base, value: Number(v[0]!) };
      case 'sum':
        return { ...base, value: Number(v[0]!) / scale };
      case 'mean':
        return raw.divisor
          ? { ...base, value: Number(v[0]!) / Number(raw.divisor) / scale }
          : { ...base, value: Number(v[0]!) / scale / Math.max(1, Number(v[1]!)) };
      case 'histogram':
        return { ...base, counts: v.map(Number) };
      case 'mode':
        return { ...base, choice: raw.choice };
    }
  }
}
