/**
 * The compute server's state, behind one async interface: parties and their tokens, datasets with
 * their AES-wrapped ciphertext chunks, grants, jobs of every kind with their checkpoints and large
 * intermediates. Two implementations share one query layer (kysely-store.ts): SQLite, embedded by
 * default, and PostgreSQL for a server deployment. Every multi-row change is one transaction, so a
 * refused request leaves nothing behind.
 */
import type { Kysely } from 'kysely';
import type { Database } from './schema.js';

export type Role = 'owner' | 'client';

export interface Party {
  id: string;
  role: Role;
  name: string;
  bcpPublicKey: Buffer;
  x25519PublicKey: string | null;
}

export interface DatasetRow {
  id: string;
  ownerId: string;
  name: string;
  columns: string[];
  fractionBits: number;
  maxAbs: number;
  rows: number;
  state: 'uploading' | 'ready';
  /** Privacy budget in millionths of epsilon (null: the owner allows no DP queries). */
  epsilonBudgetMicro: number | null;
  epsilonSpentMicro: number;
  /** The owner's minimum cluster size for k-means releases. */
  minClusterSize: number;
  /** The largest delta a single Gaussian query may spend, in units of 10^-12. */
  maxDeltaPico: number;
  /** Delta spent so far, in units of 10^-12. */
  deltaSpentPico: number;
  /** The total delta the dataset's Gaussian queries may spend, in units of 10^-12. */
  deltaBudgetPico: number;
  /** Set for a training upload (secret-shared values, seed 002); such data serves `train` jobs only. */
  training: TrainingInfo | null;
  /**
   * Owner-side packing (protocols/owner-packs.ts): the slot width l of the owner's packs, each
   * ciphertext holding floor((bits(N) - 2) / l) values row-major; null: one value per ciphertext.
   */
  packSlotBits: number | null;
}

/**
 * A training upload (seed 002): every value m (fixed point, 16 fraction bits, as a ring element)
 * was split by the owner into R from a PRG and m - R; the compute server stores Enc_pk(m - R), and
 * the PRG seed travels as one BCP ciphertext under the owner's key for the key server alone. The
 * values of each chunk are packed `slots` to a ciphertext.
 */
export interface TrainingInfo {
  task: 'classification' | 'regression';
  /** The label column of the owner's file. */
  labelColumn: string;
  /** Class values in one-hot order (classification). */
  classes: number[] | null;
  /** The last `targets` columns are the targets (one-hot or the regression value). */
  targets: number;
  /** Serialised BCP ciphertext of the 32-byte seed under the owner's key, base64. */
  seed: string;
  /** Ring elements per ciphertext: each chunk's row-major values, packed (mpc/packed-conversion.ts). */
  slots: number;
  /**
   * Per feature column, a power of two at least its largest |value|: the range the standardisation
   * assumes (public, like the dataset's declared range). Absent on uploads made before it existed.
   */
  featureBounds?: number[];
  /**
   * A part of a vertically partitioned table: each row's keyed id hash (crypto/id-hash.ts, 16
   * bytes), concatenated in row order, base64. Absent for horizontal uploads.
   */
  ids?: string;
}

/**
 * The job kinds a grant may allow. `model` lets the client receive a model trained on the dataset
 * in the clear, under its own key (`release-model`); without it only the owners decrypt models.
 */
export const GRANT_SCOPES = ['kmeans', 'stats', 'train', 'predict', 'model'] as const;
export type GrantScope = (typeof GRANT_SCOPES)[number];

export interface ChunkRow {
  idx: number;
  rows: number;
  envelope: Buffer;
  tag: string;
}

export type JobState = 'queued' | 'running' | 'done' | 'failed';

export interface JobProgress {
  done: number;
  total: number;
  unit: string;
}

export interface JobRow {
  id: string;
  clientId: string;
  kind: string;
  spec: unknown;
  state: JobState;
  phase: string;
  progress: JobProgress | null;
  error: string | null;
  errorCode: string | null;
  jobKey: Buffer | null;
  createdAt: number;
  startedAt: number | null;
  updatedAt: number;
  finishedAt: number | null;
  timings: Record<string, number>;
  result: unknown;
}

export type JobUpdate = Partial<
  Pick<JobRow, 'state' | 'phase' | 'progress' | 'error' | 'errorCode' | 'jobKey' | 'startedAt' | 'finishedAt' | 'timings' | 'result'>
>;

export interface Checkpoint {
  step: number;
  /** Small JSON-able state. */
  state: unknown;
  data: Buffer | null;
}

/** A privacy-budget charge taken with a job's creation, all or nothing. */
export interface BudgetCharge {
  datasets: readonly string[];
  epsilonMicro: number;
  /** Gaussian queries: delta, in units of 10^-12 (charged against the total delta budget; the per-query cap is checked at admission). */
  deltaPico?: number;
}

/** What an upload declares; the ledgers start at zero and the owner's limits have defaults. */
export type NewDataset = Omit<
  DatasetRow,
  'id' | 'state' | 'epsilonSpentMicro' | 'minClusterSize' | 'maxDeltaPico' | 'deltaSpentPico' | 'deltaBudgetPico' | 'training' | 'packSlotBits'
> & {
  minClusterSize?: number;
  maxDeltaPico?: number;
  deltaBudgetPico?: number;
  training?: TrainingInfo;
  packSlotBits?: number;
};

/** Default cap on delta per Gaussian query: 10^-6. */
export const DEFAULT_MAX_DELTA_PICO = 1_000_000;

/** Default total delta budget: 10^-5, ten Gaussian queries at the default cap. */
export const DEFAULT_DELTA_BUDGET_PICO = 10_000_000;

export type CreateJobOutcome = { ok: true; id: string } | { ok: false; dataset: DatasetRow };

export interface Store {
  /** The query layer, for operators' scripts and tests; services use the methods below. */
  readonly db: Kysely<Database>;
  readonly dialect: 'sqlite' | 'postgres';
  close(): Promise<void>;

  /** Registers a party; the token is returned once and only its hash is kept. */
  addParty(role: Role, name: string, bcpPublicKey: Buffer, x25519PublicKey: string | null): Promise<{ id: string; token: string }>;
  partyByToken(token: string): Promise<Party | undefined>;
  /** Replaces the party's token (the old one stops working at once); returns the new one, or none when revoking. */
  /** Replaces (or, revokeOnly, voids) the party's token, only while `current` is still it (else ERR_CONFLICT). */
  replaceToken(partyId: string, current: string, revokeOnly?: boolean): Promise<string | undefined>;
  party(id: string): Promise<Party | undefined>;

  addDataset(d: NewDataset): Promise<string>;
  dataset(id: string): Promise<DatasetRow | undefined>;
  datasetsVisibleTo(party: Party): Promise<DatasetRow[]>;
  /**
   * Stores one chunk unless the dataset is no longer uploading or the chunk would exceed the
   * declared rows (replacing a chunk of the same index counts only the difference); returns the
   * rows uploaded so far, or null when refused.
   */
  putChunk(datasetId: string, declaredRows: number, chunk: ChunkRow): Promise<number | null>;
  /** Indices of the stored chunks, in order, without reading the envelopes. */
  chunkIndices(datasetId: string): Promise<number[]>;
  /** Index and row count of each stored chunk, in order (what an interrupted upload resumes from). */
  chunkSizes(datasetId: string): Promise<Array<{ idx: number; rows: number }>>;
  chunk(datasetId: string, idx: number): Promise<ChunkRow | undefined>;
  uploadedRows(datasetId: string): Promise<number>;
  /** Marks the dataset ready when exactly the declared rows are stored; returns the rows stored. */
  completeUpload(datasetId: string, declaredRows: number): Promise<number>;

  /**
   * Deletes a dataset with its chunks and grants, in one transaction. Jobs already finished keep
   * their results (under their clients' keys); the caller refuses while an unfinished job reads it.
   */
  deleteDataset(datasetId: string): Promise<void>;

  /** Grants (or re-grants with these scopes only) the listed job kinds. */
  grant(datasetId: string, clientId: string, scopes: readonly GrantScope[]): Promise<void>;
  /** Removes a grant; false when there was none. */
  revoke(datasetId: string, clientId: string): Promise<boolean>;
  /** Whether the client holds a grant on the dataset, for `scope` when given. */
  isGranted(datasetId: string, clientId: string, scope?: GrantScope): Promise<boolean>;
  /** The query clients a dataset is granted to. */
  grantees(datasetId: string): Promise<string[]>;

  /**
   * Creates a job; with a charge, every listed dataset pays epsilonMicro in the same transaction,
   * or none does and no job is created (the first dataset that cannot pay is returned).
   */
  createJob(clientId: string, kind: string, spec: unknown, charge?: BudgetCharge): Promise<CreateJobOutcome>;
  /**
   * Gives a job's charge back to its datasets (a job that failed released nothing), once: the
   * charge is cleared in the same transaction. False when there was nothing to refund.
   */
  refundJob(jobId: string): Promise<boolean>;
  job(id: string): Promise<JobRow | undefined>;
  jobsOf(clientId: string, limit: number): Promise<JobRow[]>;
  unfinishedJobs(): Promise<string[]>;
  updateJob(id: string, fields: JobUpdate): Promise<void>;

  /** Replaces the job's checkpoint (only the latest is kept) and records its progress, atomically. */
  saveCheckpoint(jobId: string, cp: Checkpoint, progress?: JobProgress): Promise<void>;
  latestCheckpoint(jobId: string): Promise<Checkpoint | undefined>;
  /** Stores a named intermediate in parts, replacing any earlier one of that name, atomically. */
  putJobBlob(jobId: string, name: string, parts: readonly Buffer[]): Promise<void>;
  /** The parts of a named intermediate in order, or undefined when it was never stored. */
  jobBlob(jobId: string, name: string): Promise<Buffer[] | undefined>;
  /** Forgets the named intermediates whose names start with `prefix`. */
  dropJobBlobs(jobId: string, prefix: string): Promise<void>;
  /** Parts [from, to) of a named intermediate, in order (a chunk task reads only its own). */
  jobBlobParts(jobId: string, name: string, from: number, to: number): Promise<Buffer[]>;

  /** Stores a chunk task's result unless one is stored already (the first write wins); true if written. */
  putTaskResult(jobId: string, step: string, chunk: number, data: Buffer): Promise<boolean>;
  /** The stored results of a step's chunks, by chunk index. */
  taskResults(jobId: string, step: string): Promise<Map<number, Buffer>>;
  /** The chunk indices of a step that have results (without reading them). */
  taskChunksDone(jobId: string, step: string): Promise<number[]>;
  /** Whether one chunk of a step has its result (what a task asks before it runs). */
  hasTaskResult(jobId: string, step: string, chunk: number): Promise<boolean>;
  /** Forgets the results of a job's steps whose names start with `prefix` (a step done and folded in). */
  dropTaskResults(jobId: string, prefix: string): Promise<void>;
}
