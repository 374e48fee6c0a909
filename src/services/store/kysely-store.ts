/**
 * The Store over Kysely: one set of queries for SQLite (better-sqlite3, one file, nothing to
 * install) and PostgreSQL (`pg`). Dialect differences are confined to the few lines that name them.
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { Kysely, Migrator, sql, type Transaction } from 'kysely';
import { CiphermineError } from '../../crypto/errors.js';
import { migrations, type Dialect } from './migrations.js';
import type { GrantScope } from './store.js';
import type { Database, DatasetsTable, JobsTable, PartiesTable } from './schema.js';
import type {
  BudgetCharge,
  Checkpoint,
  ChunkRow,
  CreateJobOutcome,
  DatasetRow,
  JobProgress,
  JobRow,
  JobUpdate,
  NewDataset,
  Party,
  TrainingInfo,
  Role,
  Store,
} from './store.js';
import { DEFAULT_DELTA_BUDGET_PICO, DEFAULT_MAX_DELTA_PICO } from './store.js';

/** The database was written by a newer Ciphermine (or is not Ciphermine's). */
export class SchemaVersionError extends CiphermineError {
  constructor(message: string) {
    super('ERR_SCHEMA_VERSION', message);
  }
}

const hashToken = (t: string) => createHash('sha256').update(t).digest('hex');
const num = (v: number | string | null): number | null => (v === null ? null : Number(v));
const json = (v: unknown) => JSON.stringify(v);

class BudgetRefused extends Error {
  constructor(readonly datasetId: string) {
    super('budget refused');
  }
}

export class KyselyStore implements Store {
  private constructor(
    readonly db: Kysely<Database>,
    readonly dialect: Dialect,
    private readonly release: () => Promise<void>,
  ) {}

  /**
   * Opens the database, refuses a schema newer than this build (or the unversioned layout of
   * Ciphermine 0.1), and migrates an older one. `release` runs on close (e.g. a server lock).
   */
  static async open(db: Kysely<Database>, dialect: Dialect, release: () => Promise<void> = async () => {}): Promise<KyselyStore> {
    const known = migrations(dialect);
    try {
      await refuseUnknownSchema(db, known);
    } catch (e) {
      await db.destroy();
      await release();
      throw e;
    }
    const migrator = new Migrator({ db, provider: { getMigrations: async () => known } });
    const { error } = await migrator.migrateToLatest();
    if (error) {
      await db.destroy();
      await release();
      throw error;
    }
    return new KyselyStore(db, dialect, release);
  }

  async close(): Promise<void> {
    await this.db.destroy();
    await this.release();
  }

  async addParty(role: Role, name: string, bcpPublicKey: Buffer, x25519PublicKey: string | null): Promise<{ id: string; token: string }> {
    const id = `${role}-${randomUUID()}`;
    const token = randomBytes(32).toString('base64url');
    await this.db
      .insertInto('parties')
      .values({ id, role, name, token_hash: hashToken(token), bcp_pk: bcpPublicKey, x25519_pk: x25519PublicKey, created_at: Date.now() })
      .execute();
    return { id, token };
  }

  async partyByToken(token: string): Promise<Party | undefined> {
    const r = await this.db.selectFrom('parties').selectAll().where('token_hash', '=', hashToken(token)).executeTakeFirst();
    return r && toParty(r);
  }

  async replaceToken(partyId: string, current: string, revokeOnly = false): Promise<string | undefined> {
    const token = revokeOnly ? undefined : randomBytes(32).toString('base64url');
    // A revoked party keeps a hash no token has (of fresh random bytes nobody holds).
    const hash = hashToken(token ?? randomBytes(32).toString('base64url'));
    // Only while `current` is still the token: of two concurrent rotations one wins, the other is refused.
    const r = await this.db
      .updateTable('parties')
      .set({ token_hash: hash })
      .where('id', '=', partyId)
      .where('token_hash', '=', hashToken(current))
      .executeTakeFirst();
    if (Number(r.numUpdatedRows) !== 1) throw new CiphermineError('ERR_CONFLICT', 'the token was replaced meanwhile');
    return token;
  }

  async refundJob(jobId: string): Promise<boolean> {
    return this.db.transaction().execute((trx) => refund(trx, jobId));
  }

  async party(id: string): Promise<Party | undefined> {
    const r = await this.db.selectFrom('parties').selectAll().where('id', '=', id).executeTakeFirst();
    return r && toParty(r);
  }

  async addDataset(d: NewDataset): Promise<string> {
    const id = `ds-${randomUUID()}`;
    await this.db
      .insertInto('datasets')
      .values({
        id,
        owner_id: d.ownerId,
        name: d.name,
        columns: json(d.columns),
        fraction_bits: d.fractionBits,
        max_abs: d.maxAbs,
        rows: d.rows,
        state: 'uploading',
        created_at: Date.now(),
        epsilon_budget_micro: d.epsilonBudgetMicro,
        min_cluster_size: d.minClusterSize ?? 5,
        max_delta_pico: d.maxDeltaPico ?? DEFAULT_MAX_DELTA_PICO,
        delta_budget_pico: d.deltaBudgetPico ?? DEFAULT_DELTA_BUDGET_PICO,
        training: d.training ? json(d.training) : null,
        pack_slot_bits: d.packSlotBits ?? null,
      })
      .execute();
    return id;
  }

  async dataset(id: string): Promise<DatasetRow | undefined> {
    const r = await this.db.selectFrom('datasets').selectAll().where('id', '=', id).executeTakeFirst();
    return r && toDataset(r);
  }

  async datasetsVisibleTo(party: Party): Promise<DatasetRow[]> {
    const rows =
      party.role === 'owner'
        ? await this.db.selectFrom('datasets').selectAll().where('owner_id', '=', party.id).orderBy('created_at').execute()
        : await this.db
            .selectFrom('datasets as d')
            .innerJoin('grants as g', 'g.dataset_id', 'd.id')
            .selectAll('d')
            .where('g.client_id', '=', party.id)
            .orderBy('d.created_at')
            .execute();
    return rows.map(toDataset);
  }

  async putChunk(datasetId: string, declaredRows: number, c: ChunkRow): Promise<number | null> {
    return this.db.transaction().execute(async (trx) => {
      // Serialise concurrent uploads of one dataset on PostgreSQL; SQLite has one writer anyway.
      const d = await trx
        .selectFrom('datasets')
        .select('state')
        .where('id', '=', datasetId)
        .$if(this.dialect === 'postgres', (q) => q.forUpdate())
        .executeTakeFirst();
      if (d?.state !== 'uploading') return null;
      const existing = await trx.selectFrom('chunks').select('rows').where('dataset_id', '=', datasetId).where('idx', '=', c.idx).executeTakeFirst();
      const total = await uploaded(trx, datasetId);
      if (total - (existing?.rows ?? 0) + c.rows > declaredRows) return null;
      await trx
        .insertInto('chunks')
        .values({ dataset_id: datasetId, idx: c.idx, rows: c.rows, envelope: c.envelope, tag: c.tag })
        .onConflict((oc) => oc.columns(['dataset_id', 'idx']).doUpdateSet({ rows: c.rows, envelope: c.envelope, tag: c.tag }))
        .execute();
      return total - (existing?.rows ?? 0) + c.rows;
    });
  }

  async chunkIndices(datasetId: string): Promise<number[]> {
    const rows = await this.db.selectFrom('chunks').select('idx').where('dataset_id', '=', datasetId).orderBy('idx').execute();
    return rows.map((r) => r.idx);
  }

  async chunkSizes(datasetId: string): Promise<Array<{ idx: number; rows: number }>> {
    return this.db.selectFrom('chunks').select(['idx', 'rows']).where('dataset_id', '=', datasetId).orderBy('idx').execute();
  }

  async chunk(datasetId: string, idx: number): Promise<ChunkRow | undefined> {
    const r = await this.db
      .selectFrom('chunks')
      .select(['idx', 'rows', 'envelope', 'tag'])
      .where('dataset_id', '=', datasetId)
      .where('idx', '=', idx)
      .executeTakeFirst();
    return r && { idx: r.idx, rows: r.rows, envelope: Buffer.from(r.envelope), tag: r.tag };
  }

  uploadedRows(datasetId: string): Promise<number> {
    return uploaded(this.db, datasetId);
  }

  async completeUpload(datasetId: string, declaredRows: number): Promise<number> {
    return this.db.transaction().execute(async (trx) => {
      // Under the same row lock as putChunk, so no chunk lands between the count and the change.
      await trx
        .selectFrom('datasets')
        .select('id')
        .where('id', '=', datasetId)
        .$if(this.dialect === 'postgres', (q) => q.forUpdate())
        .execute();
      const got = await uploaded(trx, datasetId);
      if (got === declaredRows) await trx.updateTable('datasets').set({ state: 'ready' }).where('id', '=', datasetId).execute();
      return got;
    });
  }

  async grant(datasetId: string, clientId: string, scopes: readonly GrantScope[]): Promise<void> {
    const list = [...new Set(scopes)].sort().join(',');
    await this.db
      .insertInto('grants')
      .values({ dataset_id: datasetId, client_id: clientId, scopes: list })
      .onConflict((oc) => oc.columns(['dataset_id', 'client_id']).doUpdateSet({ scopes: list }))
      .execute();
  }

  async deleteDataset(datasetId: string): Promise<void> {
    await this.db.transaction().execute(async (trx) => {
      await trx.deleteFrom('chunks').where('dataset_id', '=', datasetId).execute();
      await trx.deleteFrom('grants').where('dataset_id', '=', datasetId).execute();
      await trx.deleteFrom('datasets').where('id', '=', datasetId).execute();
    });
  }

  async revoke(datasetId: string, clientId: string): Promise<boolean> {
    const r = await this.db.deleteFrom('grants').where('dataset_id', '=', datasetId).where('client_id', '=', clientId).executeTakeFirst();
    return Number(r.numDeletedRows) > 0;
  }

  async grantees(datasetId: string): Promise<string[]> {
    const rows = await this.db.selectFrom('grants').select('client_id').where('dataset_id', '=', datasetId).orderBy('client_id').execute();
    return rows.map((r) => r.client_id);
  }

  async isGranted(datasetId: string, clientId: string, scope?: GrantScope): Promise<boolean> {
    const r = await this.db
      .selectFrom('grants')
      .select('scopes')
      .where('dataset_id', '=', datasetId)
      .where('client_id', '=', clientId)
      .executeTakeFirst();
    return r !== undefined && (scope === undefined || r.scopes.split(',').includes(scope));
  }

  async createJob(clientId: string, kind: string, spec: unknown, charge?: BudgetCharge): Promise<CreateJobOutcome> {
    const id = `job-${randomUUID()}`;
    const now = Date.now();
    try {
      await this.db.transaction().execute(async (trx) => {
        if (charge) await chargeBudget(trx, charge);
        const kept = charge ? json(charge) : null;
        await trx
          .insertInto('jobs')
          .values({
            id,
            client_id: clientId,
            kind,
            spec: json(spec),
            state: 'queued',
            phase: 'queued',
            progress: null,
            error: null,
            error_code: null,
            job_key: null,
            created_at: now,
            started_at: null,
            updated_at: now,
            finished_at: null,
            timings: '{}',
            result: null,
            charge: kept,
          })
          .execute();
      });
    } catch (e) {
      if (e instanceof BudgetRefused) return { ok: false, dataset: (await this.dataset(e.datasetId))! };
      throw e;
    }
    return { ok: true, id };
  }

  async job(id: string): Promise<JobRow | undefined> {
    const r = await this.db.selectFrom('jobs').selectAll().where('id', '=', id).executeTakeFirst();
    return r && toJob(r);
  }

  async jobsOf(clientId: string, limit: number): Promise<JobRow[]> {
    const rows = await this.db.selectFrom('jobs').selectAll().where('client_id', '=', clientId).orderBy('created_at', 'desc').limit(limit).execute();
    return rows.map(toJob);
  }

  async unfinishedJobs(): Promise<string[]> {
    const rows = await this.db.selectFrom('jobs').select('id').where('state', 'in', ['queued', 'running']).orderBy('created_at').execute();
    return rows.map((r) => r.id);
  }

  async updateJob(id: string, f: JobUpdate): Promise<void> {
    await updateJob(this.db, id, f);
  }

  async saveCheckpoint(jobId: string, cp: Checkpoint, progress?: JobProgress): Promise<void> {
    await this.db.transaction().execute(async (trx) => {
      const row = { step: cp.step, state: json(cp.state), data: cp.data };
      await trx
        .insertInto('job_checkpoints')
        .values({ job_id: jobId, ...row })
        .onConflict((oc) => oc.column('job_id').doUpdateSet(row))
        .execute();
      if (progress) await updateJob(trx, jobId, { progress });
    });
  }

  async latestCheckpoint(jobId: string): Promise<Checkpoint | undefined> {
    const r = await this.db.selectFrom('job_checkpoints').selectAll().where('job_id', '=', jobId).executeTakeFirst();
    return r && { step: r.step, state: JSON.parse(r.state), data: r.data && Buffer.from(r.data) };
  }

  async putJobBlob(jobId: string, name: string, parts: readonly Buffer[]): Promise<void> {
    await this.db.transaction().execute(async (trx) => {
      await trx.deleteFrom('job_blobs').where('job_id', '=', jobId).where('name', '=', name).execute();
      // Parts are rows 0..n-1; row -1 marks that the intermediate was made, so an empty one is too.
      const rows = [Buffer.alloc(0), ...parts].map((data, i) => ({ job_id: jobId, name, idx: i - 1, data }));
      for (const r of rows) await trx.insertInto('job_blobs').values(r).execute();
    });
  }

  async jobBlob(jobId: string, name: string): Promise<Buffer[] | undefined> {
    const rows = await this.db.selectFrom('job_blobs').select('data').where('job_id', '=', jobId).where('name', '=', name).orderBy('idx').execute();
    if (rows.length === 0) return undefined;
    return rows.slice(1).map((r) => Buffer.from(r.data));
  }

  async dropJobBlobs(jobId: string, prefix: string): Promise<void> {
    await this.db
      .deleteFrom('job_blobs')
      .where('job_id', '=', jobId)
      .where(sql<boolean>`name LIKE ${likePrefix(prefix)} ESCAPE '\\'`)
      .execute();
  }

  async jobBlobParts(jobId: string, name: string, from: number, to: number): Promise<Buffer[]> {
    const rows = await this.db
      .selectFrom('job_blobs')
      .select('data')
      .where('job_id', '=', jobId)
      .where('name', '=', name)
      .where('idx', '>=', Math.max(0, from))
      .where('idx', '<', to)
      .orderBy('idx')
      .execute();
    return rows.map((r) => Buffer.from(r.data));
  }

  async putTaskResult(jobId: string, step: string, chunk: number, data: Buffer): Promise<boolean> {
    const r = await this.db
      .insertInto('task_results')
      .values({ job_id: jobId, step, chunk, data })
      .onConflict((oc) => oc.columns(['job_id', 'step', 'chunk']).doNothing())
      .executeTakeFirst();
    return Number(r.numInsertedOrUpdatedRows ?? 0n) > 0;
  }

  async taskResults(jobId: string, step: string): Promise<Map<number, Buffer>> {
    const rows = await this.db.selectFrom('task_results').select(['chunk', 'data']).where('job_id', '=', jobId).where('step', '=', step).execute();
    return new Map(rows.map((r) => [r.chunk, Buffer.from(r.data)]));
  }

  async hasTaskResult(jobId: string, step: string, chunk: number): Promise<boolean> {
    const r = await this.db
      .selectFrom('task_results')
      .select('chunk')
      .where('job_id', '=', jobId)
      .where('step', '=', step)
      .where('chunk', '=', chunk)
      .executeTakeFirst();
    return r !== undefined;
  }

  async taskChunksDone(jobId: string, step: string): Promise<number[]> {
    const rows = await this.db.selectFrom('task_results').select('chunk').where('job_id', '=', jobId).where('step', '=', step).execute();
    return rows.map((r) => r.chunk);
  }

  async dropTaskResults(jobId: string, prefix: string): Promise<void> {
    await this.db
      .deleteFrom('task_results')
      .where('job_id', '=', jobId)
      .where(sql<boolean>`step LIKE ${likePrefix(prefix)} ESCAPE '\\'`)
      .execute();
  }
}

/** A LIKE pattern for names that start with `prefix` (its own backslash, % and _ escaped). */
const likePrefix = (prefix: string) => `${prefix.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;

async function refuseUnknownSchema(db: Kysely<Database>, known: Record<string, unknown>): Promise<void> {
  const tables = new Set((await db.introspection.getTables({ withInternalKyselyTables: true })).map((t) => t.name));
  if (tables.has('ks_keys'))
    throw new CiphermineError('ERR_DATABASE_IN_USE', "this database holds the key servers' tables: give the compute server a database of its own");
  if (!tables.has('kysely_migration')) {
    if (tables.has('parties')) {
      throw new SchemaVersionError(
        'this database was written by Ciphermine 0.1, before versioned migrations; it is left untouched: start this version on a new database and upload the datasets again',
      );
    }
    return; // a fresh database
  }
  const applied = (await db
    .selectFrom('kysely_migration' as never)
    .select('name' as never)
    .execute()) as Array<{ name: string }>;
  const unknown = applied.map((r) => r.name).filter((n) => !(n in known));
  if (unknown.length > 0) {
    throw new SchemaVersionError(
      `the database has schema migrations this Ciphermine does not know (${unknown.join(', ')}; it knows up to ${Object.keys(known).sort().at(-1)}): it was written by a newer version; upgrade Ciphermine`,
    );
  }
}

async function uploaded(db: Kysely<Database> | Transaction<Database>, datasetId: string): Promise<number> {
  const r = await db
    .selectFrom('chunks')
    .select((eb) => eb.fn.coalesce(eb.fn.sum<number | string>('rows'), sql<number>`0`).as('n'))
    .where('dataset_id', '=', datasetId)
    .executeTakeFirstOrThrow();
  return Number(r.n);
}

/**
 * Every dataset pays, or the transaction rolls back: the conditional update is atomic per row. Rows
 * are locked in id order, so two charges over the same datasets listed in different orders queue
 * behind each other on PostgreSQL instead of deadlocking.
 */
async function chargeBudget(trx: Transaction<Database>, charge: BudgetCharge): Promise<void> {
  for (const id of [...new Set(charge.datasets)].sort()) {
    const r = await trx
      .updateTable('datasets')
      .set({
        epsilon_spent_micro: sql`epsilon_spent_micro + ${charge.epsilonMicro}`,
        delta_spent_pico: sql`delta_spent_pico + ${charge.deltaPico ?? 0}`,
      })
      .where('id', '=', id)
      .where('epsilon_budget_micro', 'is not', null)
      .where(sql<boolean>`epsilon_spent_micro + ${charge.epsilonMicro} <= epsilon_budget_micro`)
      .where(sql<boolean>`delta_spent_pico + ${charge.deltaPico ?? 0} <= delta_budget_pico`)
      .executeTakeFirst();
    if (Number(r.numUpdatedRows) !== 1) throw new BudgetRefused(id);
  }
}

async function refund(trx: Transaction<Database>, jobId: string): Promise<boolean> {
  const row = await trx.selectFrom('jobs').select('charge').where('id', '=', jobId).executeTakeFirst();
  if (!row?.charge) return false;
  // Cleared first and conditionally: of two concurrent refunds only one finds the charge still there.
  const cleared = await trx.updateTable('jobs').set({ charge: null }).where('id', '=', jobId).where('charge', '=', row.charge).executeTakeFirst();
  if (Number(cleared.numUpdatedRows) !== 1) return false;
  const charge = JSON.parse(row.charge) as BudgetCharge;
  for (const id of [...new Set(charge.datasets)].sort()) {
    // A dataset deleted since has nothing to give back to.
    await trx
      .updateTable('datasets')
      .set({
        epsilon_spent_micro: sql`epsilon_spent_micro - ${charge.epsilonMicro}`,
        delta_spent_pico: sql`delta_spent_pico - ${charge.deltaPico ?? 0}`,
      })
      .where('id', '=', id)
      .execute();
  }
  return true;
}

async function updateJob(db: Kysely<Database> | Transaction<Database>, id: string, f: JobUpdate): Promise<void> {
  const set: Partial<Record<keyof JobsTable, unknown>> = {
    state: f.state,
    phase: f.phase,
    progress: f.progress === undefined ? undefined : json(f.progress),
    error: f.error,
    error_code: f.errorCode,
    job_key: f.jobKey,
    started_at: f.startedAt,
    finished_at: f.finishedAt,
    timings: f.timings === undefined ? undefined : json(f.timings),
    result: f.result === undefined ? undefined : json(f.result),
  };
  const defined = Object.fromEntries(Object.entries(set).filter(([, v]) => v !== undefined));
  await db
    .updateTable('jobs')
    .set({ ...defined, updated_at: Date.now() })
    .where('id', '=', id)
    .execute();
}

function toParty(r: PartiesTable): Party {
  return { id: r.id, role: r.role, name: r.name, bcpPublicKey: Buffer.from(r.bcp_pk), x25519PublicKey: r.x25519_pk };
}

function toDataset(
  r: Omit<DatasetsTable, 'epsilon_spent_micro' | 'min_cluster_size' | 'max_delta_pico' | 'delta_spent_pico' | 'delta_budget_pico'> & {
    epsilon_spent_micro: number | string;
    min_cluster_size: number | string;
    max_delta_pico: number | string;
    delta_spent_pico: number | string;
    delta_budget_pico: number | string;
  },
): DatasetRow {
  return {
    id: r.id,
    ownerId: r.owner_id,
    name: r.name,
    columns: JSON.parse(r.columns),
    fractionBits: r.fraction_bits,
    maxAbs: Number(r.max_abs),
    rows: r.rows,
    state: r.state,
    epsilonBudgetMicro: num(r.epsilon_budget_micro),
    epsilonSpentMicro: Number(r.epsilon_spent_micro),
    minClusterSize: Number(r.min_cluster_size),
    maxDeltaPico: Number(r.max_delta_pico),
    deltaSpentPico: Number(r.delta_spent_pico),
    deltaBudgetPico: Number(r.delta_budget_pico),
    training: r.training ? (JSON.parse(r.training) as TrainingInfo) : null,
    packSlotBits: r.pack_slot_bits === null || r.pack_slot_bits === undefined ? null : Number(r.pack_slot_bits),
  };
}

function toJob(r: JobsTable): JobRow {
  return {
    id: r.id,
    clientId: r.client_id,
    kind: r.kind,
    spec: JSON.parse(r.spec),
    state: r.state,
    phase: r.phase,
    progress: r.progress ? JSON.parse(r.progress) : null,
    error: r.error,
    errorCode: r.error_code,
    jobKey: r.job_key && Buffer.from(r.job_key),
    createdAt: Number(r.created_at),
    startedAt: num(r.started_at),
    updatedAt: Number(r.updated_at),
    finishedAt: num(r.finished_at),
    timings: JSON.parse(r.timings),
    result: r.result ? JSON.parse(r.result) : null,
  };
}
