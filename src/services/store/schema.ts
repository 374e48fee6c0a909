/**
 * The compute server's tables, as Kysely sees them. One definition for both databases: timestamps
 * are milliseconds since the epoch in 64-bit integers, JSON lives in text columns, ciphertexts in
 * blobs (`bytea` on PostgreSQL). PostgreSQL returns 64-bit integers as strings, so the row mappers
 * in kysely-store.ts convert with `Number()` rather than trusting the driver.
 */
import type { Generated } from 'kysely';

type Int64 = number | string;

export interface PartiesTable {
  id: string;
  role: 'owner' | 'client';
  name: string;
  token_hash: string;
  bcp_pk: Buffer;
  x25519_pk: string | null;
  created_at: Int64;
}

export interface DatasetsTable {
  id: string;
  owner_id: string;
  name: string;
  /** JSON array of column names. */
  columns: string;
  fraction_bits: number;
  max_abs: number;
  rows: number;
  state: 'uploading' | 'ready';
  created_at: Int64;
  /** Millionths of epsilon; null: the owner allows no DP queries. */
  epsilon_budget_micro: Int64 | null;
  epsilon_spent_micro: Generated<Int64>;
  /** k-means releases refuse clusters with fewer members (0 < size < this). */
  min_cluster_size: Generated<number>;
  /** The largest delta one Gaussian query may spend, in units of 10^-12. */
  max_delta_pico: Generated<Int64>;
  /** Delta spent so far (the ledger beside epsilon), in units of 10^-12. */
  delta_spent_pico: Generated<Int64>;
  /** The total delta all Gaussian queries together may spend, in units of 10^-12. */
  delta_budget_pico: Generated<Int64>;
  /** JSON: a training upload's description (store.ts TrainingInfo); null for analytics data. */
  training: string | null;
  /** Owner-side packing's slot width; null: one value per ciphertext. */
  pack_slot_bits: number | null;
}

export interface ChunksTable {
  dataset_id: string;
  idx: number;
  rows: number;
  envelope: Buffer;
  tag: string;
}

export interface GrantsTable {
  dataset_id: string;
  client_id: string;
  /** Comma-separated job kinds the grant allows (`kmeans`, `stats`, later `train`). */
  scopes: Generated<string>;
}

export interface JobsTable {
  id: string;
  client_id: string;
  kind: string;
  /** JSON: the spec as the job kind's schema parsed it. */
  spec: string;
  state: 'queued' | 'running' | 'done' | 'failed';
  phase: string;
  /** JSON: { done, total, unit } or null. */
  progress: string | null;
  error: string | null;
  error_code: string | null;
  job_key: Buffer | null;
  created_at: Int64;
  started_at: Int64 | null;
  updated_at: Int64;
  finished_at: Int64 | null;
  /** JSON: seconds per phase. */
  timings: string;
  /** JSON: the result as the job kind's result schema describes it. */
  result: string | null;
  /** JSON: the privacy-budget charge taken with the job, until it is refunded (a failed job). */
  charge: string | null;
}

/** The latest checkpoint of each job: a step number, a small JSON state and an optional blob. */
export interface JobCheckpointsTable {
  job_id: string;
  step: number;
  state: string;
  data: Buffer | null;
}

/** Large intermediates of a job (converted records, a converted column), stored in parts. */
export interface JobBlobsTable {
  job_id: string;
  name: string;
  idx: number;
  data: Buffer;
}

/**
 * The results of a job step's chunk tasks (services/jobs/tasks.ts), one row per (job, step, chunk):
 * written once, so a task run twice (a retry after a worker died) cannot count twice.
 */
export interface TaskResultsTable {
  job_id: string;
  step: string;
  chunk: number;
  data: Buffer;
}

export interface Database {
  parties: PartiesTable;
  datasets: DatasetsTable;
  chunks: ChunksTable;
  grants: GrantsTable;
  jobs: JobsTable;
  job_checkpoints: JobCheckpointsTable;
  job_blobs: JobBlobsTable;
  task_results: TaskResultsTable;
}
