/**
 * A query client (QC): registers its BCP public key, asks for k-means over datasets it was granted,
 * follows the job, and is the only party that can decrypt the result (centroid sums arrive under
 * its own key; it divides by the cluster sizes and decodes the fixed point).
 */
import {
  deserializeParams, keyGen, serializePublicKey, serializeSecretKey, deserializeSecretKey, deserializeCiphertexts,
  type BcpSecretKey,
} from '../crypto/index.js';
import { ComputeServerApi } from './api.js';
import type { IdentityFile } from './identity.js';

export interface JobStatus {
  id: string;
  state: 'queued' | 'running' | 'done' | 'failed';
  phase: string;
  iteration: number;
  maxIter: number;
  error: string | null;
  createdAt: number;
  startedAt: number | null;
  updatedAt: number;
  finishedAt: number | null;
  timings: Record<string, number>;
}

export interface KMeansRequest {
  datasets: string[];
  k: number;
  maxIter?: number;
  initIndices?: number[];
}

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

interface RawResult {
  sums: string;
  sizes: string[];
  assignments: number[];
  iterations: number;
  converged: boolean;
  columns: string[];
  fractionBits: number;
}

export interface StatsRequest {
  datasets: string[];
  column: string;
  kind: 'count' | 'sum' | 'mean' | 'histogram' | 'mode';
  lo?: number;
  hi?: number;
  edges?: number[];
  epsilon: number | string;
  mechanism?: 'laplace' | 'gaussian';
  delta?: number;
  mode?: 'pmdp' | 'spmdp';
  blocks?: number;
}

export interface StatsAnswer {
  kind: StatsRequest['kind'];
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

interface RawStats {
  kind: StatsRequest['kind'];
  released: string;
  fractionBits: number;
  divisor?: string;
  choice?: number;
  epsilon: number;
  mode: 'pmdp' | 'spmdp';
  budgetRemaining: Record<string, number>;
}

export class QueryClient {
  private constructor(
    readonly id: string,
    private readonly api: ComputeServerApi,
    readonly sk: BcpSecretKey,
    private readonly token: string,
  ) {}

  static async register(serverUrl: string, name: string): Promise<QueryClient> {
    const api = new ComputeServerApi(serverUrl);
    const info = await api.request<{ params: string }>('GET', '/v1/info');
    const sk = keyGen(deserializeParams(Buffer.from(info.params, 'base64')));
    const { id, token } = await api.request<{ id: string; token: string }>('POST', '/v1/register', {
      role: 'client',
      name,
      bcpPublicKey: serializePublicKey(sk.publicKey).toString('base64'),
    });
    return new QueryClient(id, api.withToken(token), sk, token);
  }

  static fromIdentity(f: IdentityFile): QueryClient {
    return new QueryClient(f.id, new ComputeServerApi(f.server, f.token), deserializeSecretKey(Buffer.from(f.bcpSecretKey, 'base64')), f.token);
  }

  identity(): IdentityFile {
    return { role: 'client', id: this.id, token: this.token, server: this.api.baseUrl, bcpSecretKey: serializeSecretKey(this.sk).toString('base64') };
  }

  /** A differentially private aggregate; only this client can decrypt the released values. */
  async stats(req: StatsRequest): Promise<StatsAnswer> {
    const raw = await this.api.request<RawStats>('POST', '/v1/queries', req);
    const v = deserializeCiphertexts(Buffer.from(raw.released, 'base64'), this.sk.publicKey).map((c) => this.sk.decrypt(c));
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

  async submitKMeans(req: KMeansRequest): Promise<string> {
    return (await this.api.request<{ id: string }>('POST', '/v1/jobs', req)).id;
  }

  status(jobId: string): Promise<JobStatus> {
    return this.api.request<JobStatus>('GET', `/v1/jobs/${jobId}`);
  }

  /** Polls until the job is done or failed, reporting each status seen. */
  async waitFor(jobId: string, onStatus?: (s: JobStatus) => void, intervalMs = 250): Promise<JobStatus> {
    for (;;) {
      const s = await this.status(jobId);
      onStatus?.(s);
      if (s.state === 'done' || s.state === 'failed') return s;
      await new Promise((r) => setTimeout(r, intervalMs));
    }
  }

  async result(jobId: string): Promise<KMeansOutcome> {
    const raw = await this.api.request<RawResult>('GET', `/v1/jobs/${jobId}/result`);
    const m = raw.columns.length;
    const flat = deserializeCiphertexts(Buffer.from(raw.sums, 'base64'), this.sk.publicKey).map((c) => this.sk.decrypt(c));
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
}
