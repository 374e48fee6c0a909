/**
 * The compute server's database (SQLite through better-sqlite3): parties and their tokens, datasets
 * with their AES-wrapped ciphertext chunks, grants, jobs, the job's records under the job key,
 * per-iteration checkpoints and results. Multi-row changes run in transactions, so a refused
 * request leaves nothing behind.
 */
import Database from 'better-sqlite3';
import { createHash, randomBytes, randomUUID } from 'node:crypto';

const SCHEMA = `
PRAGMA journal_mode = WAL;
PRAGMA foreign_keys = ON;
CREATE TABLE IF NOT EXISTS parties (
  id TEXT PRIMARY KEY, role TEXT NOT NULL CHECK (role IN ('owner', 'client')), name TEXT NOT NULL,
  token_hash TEXT NOT NULL UNIQUE, bcp_pk BLOB NOT NULL, x25519_pk TEXT, created_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS datasets (
  id TEXT PRIMARY KEY, owner_id TEXT NOT NULL REFERENCES parties(id), name TEXT NOT NULL,
  columns TEXT NOT NULL, fraction_bits INTEGER NOT NULL, max_abs REAL NOT NULL, rows INTEGER NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('uploading', 'ready')), created_at INTEGER NOT NULL,
  epsilon_budget_micro INTEGER, epsilon_spent_micro INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS chunks (
  dataset_id TEXT NOT NULL REFERENCES datasets(id), idx INTEGER NOT NULL, rows INTEGER NOT NULL,
  envelope BLOB NOT NULL, tag TEXT NOT NULL, PRIMARY KEY (dataset_id, idx));
CREATE TABLE IF NOT EXISTS grants (
  dataset_id TEXT NOT NULL REFERENCES datasets(id), client_id TEXT NOT NULL REFERENCES parties(id),
  PRIMARY KEY (dataset_id, client_id));
CREATE TABLE IF NOT EXISTS jobs (
  id TEXT PRIMARY KEY, client_id TEXT NOT NULL REFERENCES parties(id), spec TEXT NOT NULL,
  state TEXT NOT NULL, phase TEXT NOT NULL, iteration INTEGER NOT NULL DEFAULT 0, error TEXT,
  job_key BLOB, created_at INTEGER NOT NULL, started_at INTEGER, updated_at INTEGER NOT NULL,
  finished_at INTEGER, timings TEXT NOT NULL DEFAULT '{}', result TEXT);
CREATE TABLE IF NOT EXISTS job_records (job_id TEXT PRIMARY KEY REFERENCES jobs(id), records BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS checkpoints (
  job_id TEXT NOT NULL REFERENCES jobs(id), iteration INTEGER NOT NULL, assignments TEXT NOT NULL,
  sizes TEXT NOT NULL, sums BLOB NOT NULL, PRIMARY KEY (job_id, iteration));
`;

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
}

export interface JobSpec {
  datasets: string[];
  k: number;
  maxIter: number;
  initIndices: number[];
}

export type JobState = 'queued' | 'running' | 'done' | 'failed';

export interface JobRow {
  id: string;
  clientId: string;
  spec: JobSpec;
  state: JobState;
  phase: string;
  iteration: number;
  error: string | null;
  jobKey: Buffer | null;
  createdAt: number;
  startedAt: number | null;
  updatedAt: number;
  finishedAt: number | null;
  timings: Record<string, number>;
  result: unknown;
}

export interface CheckpointRow {
  iteration: number;
  assignments: number[];
  sizes: bigint[];
  sums: Buffer;
}

const hashToken = (t: string) => createHash('sha256').update(t).digest('hex');

export class Store {
  readonly db: Database.Database;

  constructor(path: string) {
    this.db = new Database(path);
    this.db.exec(SCHEMA);
  }

  close(): void {
    this.db.close();
  }

  /** Registers a party; the token is returned once and only its hash is kept. */
  addParty(role: Role, name: string, bcpPublicKey: Buffer, x25519PublicKey: string | null): { id: string; token: string } {
    const id = `${role}-${randomUUID()}`;
    const token = randomBytes(32).toString('base64url');
    this.db
      .prepare('INSERT INTO parties (id, role, name, token_hash, bcp_pk, x25519_pk, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)')
      .run(id, role, name, hashToken(token), bcpPublicKey, x25519PublicKey, Date.now());
    return { id, token };
  }

  partyByToken(token: string): Party | undefined {
    const r = this.db.prepare('SELECT * FROM parties WHERE token_hash = ?').get(hashToken(token)) as Record<string, unknown> | undefined;
    return r && toParty(r);
  }

  party(id: string): Party | undefined {
    const r = this.db.prepare('SELECT * FROM parties WHERE id = ?').get(id) as Record<string, unknown> | undefined;
    return r && toParty(r);
  }

  addDataset(d: Omit<DatasetRow, 'id' | 'state' | 'epsilonSpentMicro'>): string {
    const id = `ds-${randomUUID()}`;
    this.db
      .prepare(
        'INSERT INTO datasets (id, owner_id, name, columns, fraction_bits, max_abs, rows, state, created_at, epsilon_budget_micro) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
      )
      .run(id, d.ownerId, d.name, JSON.stringify(d.columns), d.fractionBits, d.maxAbs, d.rows, 'uploading', Date.now(), d.epsilonBudgetMicro);
    return id;
  }

  /**
   * Charges every dataset `micro` millionths of epsilon, all or nothing: refuses (returning the
   * first dataset that cannot pay) when any would overspend.
   */
  chargeBudget(datasetIds: readonly string[], micro: number): { ok: true } | { ok: false; dataset: DatasetRow } {
    return this.db.transaction(() => {
      for (const id of datasetIds) {
        const d = this.dataset(id)!;
        if (d.epsilonBudgetMicro === null || d.epsilonSpentMicro + micro > d.epsilonBudgetMicro) return { ok: false as const, dataset: d };
      }
      for (const id of datasetIds) this.db.prepare('UPDATE datasets SET epsilon_spent_micro = epsilon_spent_micro + ? WHERE id = ?').run(micro, id);
      return { ok: true as const };
    })();
  }

  dataset(id: string): DatasetRow | undefined {
    const r = this.db.prepare('SELECT * FROM datasets WHERE id = ?').get(id) as Record<string, unknown> | undefined;
    return r && toDataset(r);
  }

  datasetsVisibleTo(party: Party): DatasetRow[] {
    const rows =
      party.role === 'owner'
        ? this.db.prepare('SELECT * FROM datasets WHERE owner_id = ?').all(party.id)
        : this.db.prepare('SELECT d.* FROM datasets d JOIN grants g ON g.dataset_id = d.id WHERE g.client_id = ?').all(party.id);
    return (rows as Record<string, unknown>[]).map(toDataset);
  }

  putChunk(datasetId: string, idx: number, rows: number, envelope: Buffer, tag: string): void {
    this.db.prepare('INSERT OR REPLACE INTO chunks (dataset_id, idx, rows, envelope, tag) VALUES (?, ?, ?, ?, ?)').run(datasetId, idx, rows, envelope, tag);
  }

  chunks(datasetId: string): Array<{ idx: number; rows: number; envelope: Buffer; tag: string }> {
    return this.db.prepare('SELECT idx, rows, envelope, tag FROM chunks WHERE dataset_id = ? ORDER BY idx').all(datasetId) as Array<{
      idx: number;
      rows: number;
      envelope: Buffer;
      tag: string;
    }>;
  }

  /** Rows of one stored chunk (0 when absent), without reading the envelopes. */
  chunkRows(datasetId: string, idx: number): number {
    const r = this.db.prepare('SELECT rows FROM chunks WHERE dataset_id = ? AND idx = ?').get(datasetId, idx) as { rows: number } | undefined;
    return r?.rows ?? 0;
  }

  uploadedRows(datasetId: string): number {
    const r = this.db.prepare('SELECT COALESCE(SUM(rows), 0) AS n FROM chunks WHERE dataset_id = ?').get(datasetId) as { n: number };
    return r.n;
  }

  markReady(datasetId: string): void {
    this.db.prepare("UPDATE datasets SET state = 'ready' WHERE id = ?").run(datasetId);
  }

  grant(datasetId: string, clientId: string): void {
    this.db.prepare('INSERT OR IGNORE INTO grants (dataset_id, client_id) VALUES (?, ?)').run(datasetId, clientId);
  }

  isGranted(datasetId: string, clientId: string): boolean {
    return !!this.db.prepare('SELECT 1 FROM grants WHERE dataset_id = ? AND client_id = ?').get(datasetId, clientId);
  }

  addJob(clientId: string, spec: JobSpec): string {
    const id = `job-${randomUUID()}`;
    const now = Date.now();
    this.db
      .prepare('INSERT INTO jobs (id, client_id, spec, state, phase, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)')
      .run(id, clientId, JSON.stringify(spec), 'queued', 'queued', now, now);
    return id;
  }

  job(id: string): JobRow | undefined {
    const r = this.db.prepare('SELECT * FROM jobs WHERE id = ?').get(id) as Record<string, unknown> | undefined;
    return r && toJob(r);
  }

  unfinishedJobs(): string[] {
    return (this.db.prepare("SELECT id FROM jobs WHERE state IN ('queued', 'running') ORDER BY created_at").all() as Array<{ id: string }>).map(
      (r) => r.id,
    );
  }

  updateJob(id: string, fields: Partial<Pick<JobRow, 'state' | 'phase' | 'iteration' | 'error' | 'jobKey' | 'startedAt' | 'finishedAt' | 'timings' | 'result'>>): void {
    const cols: Record<string, unknown> = {
      state: fields.state,
      phase: fields.phase,
      iteration: fields.iteration,
      error: fields.error,
      job_key: fields.jobKey,
      started_at: fields.startedAt,
      finished_at: fields.finishedAt,
      timings: fields.timings === undefined ? undefined : JSON.stringify(fields.timings),
      result: fields.result === undefined ? undefined : JSON.stringify(fields.result),
    };
    const set = Object.entries(cols).filter(([, v]) => v !== undefined);
    const sql = `UPDATE jobs SET ${[...set.map(([k]) => `${k} = ?`), 'updated_at = ?'].join(', ')} WHERE id = ?`;
    this.db.prepare(sql).run(...set.map(([, v]) => v), Date.now(), id);
  }

  saveJobRecords(jobId: string, records: Buffer): void {
    this.db.prepare('INSERT OR REPLACE INTO job_records (job_id, records) VALUES (?, ?)').run(jobId, records);
  }

  jobRecords(jobId: string): Buffer | undefined {
    const r = this.db.prepare('SELECT records FROM job_records WHERE job_id = ?').get(jobId) as { records: Buffer } | undefined;
    return r?.records;
  }

  saveCheckpoint(jobId: string, cp: CheckpointRow): void {
    this.db.transaction(() => {
      this.db
        .prepare('INSERT OR REPLACE INTO checkpoints (job_id, iteration, assignments, sizes, sums) VALUES (?, ?, ?, ?, ?)')
        .run(jobId, cp.iteration, JSON.stringify(cp.assignments), JSON.stringify(cp.sizes.map(String)), cp.sums);
      this.updateJob(jobId, { iteration: cp.iteration });
    })();
  }

  latestCheckpoint(jobId: string): CheckpointRow | undefined {
    const r = this.db.prepare('SELECT * FROM checkpoints WHERE job_id = ? ORDER BY iteration DESC LIMIT 1').get(jobId) as
      | { iteration: number; assignments: string; sizes: string; sums: Buffer }
      | undefined;
    return r && { iteration: r.iteration, assignments: JSON.parse(r.assignments), sizes: (JSON.parse(r.sizes) as string[]).map(BigInt), sums: r.sums };
  }
}

function toParty(r: Record<string, unknown>): Party {
  return { id: r.id as string, role: r.role as Role, name: r.name as string, bcpPublicKey: r.bcp_pk as Buffer, x25519PublicKey: r.x25519_pk as string | null };
}

function toDataset(r: Record<string, unknown>): DatasetRow {
  return {
    id: r.id as string,
    ownerId: r.owner_id as string,
    name: r.name as string,
    columns: JSON.parse(r.columns as string),
    fractionBits: r.fraction_bits as number,
    maxAbs: r.max_abs as number,
    rows: r.rows as number,
    state: r.state as DatasetRow['state'],
    epsilonBudgetMicro: r.epsilon_budget_micro as number | null,
    epsilonSpentMicro: r.epsilon_spent_micro as number,
  };
}

function toJob(r: Record<string, unknown>): JobRow {
  return {
    id: r.id as string,
    clientId: r.client_id as string,
    spec: JSON.parse(r.spec as string),
    state: r.state as JobState,
    phase: r.phase as string,
    iteration: r.iteration as number,
    error: r.error as string | null,
    jobKey: r.job_key as Buffer | null,
    createdAt: r.created_at as number,
    startedAt: r.started_at as number | null,
    updatedAt: r.updated_at as number,
    finishedAt: r.finished_at as number | null,
    timings: JSON.parse(r.timings as string),
    result: r.result ? JSON.parse(r.result as string) : null,
  };
}
