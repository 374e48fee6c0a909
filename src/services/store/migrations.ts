/**
 * Versioned schema migrations, the same for SQLite and PostgreSQL, run by Kysely's Migrator (which
 * takes a lock on PostgreSQL, so two servers starting at once do not both migrate). Migrations are
 * append-only: a released one is never edited, a change is a new entry. A database that has run a
 * migration this build does not know was written by a newer Ciphermine, and the server refuses it
 * (SchemaVersionError) rather than guess at its layout.
 */
import { sql, type Kysely, type Migration } from 'kysely';

export type Dialect = 'sqlite' | 'postgres';

const blob = (d: Dialect) => (d === 'postgres' ? sql`bytea` : sql`blob`);

function initial(d: Dialect): Migration {
  return {
    async up(db: Kysely<any>): Promise<void> {
      await db.schema
        .createTable('parties')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('role', 'text', (c) => c.notNull().check(sql`role IN ('owner', 'client')`))
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('token_hash', 'text', (c) => c.notNull().unique())
        .addColumn('bcp_pk', blob(d), (c) => c.notNull())
        .addColumn('x25519_pk', 'text')
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('datasets')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('owner_id', 'text', (c) => c.notNull().references('parties.id'))
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('columns', 'text', (c) => c.notNull())
        .addColumn('fraction_bits', 'integer', (c) => c.notNull())
        .addColumn('max_abs', 'double precision', (c) => c.notNull())
        .addColumn('rows', 'integer', (c) => c.notNull())
        .addColumn('state', 'text', (c) => c.notNull().check(sql`state IN ('uploading', 'ready')`))
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('epsilon_budget_micro', 'bigint')
        .addColumn('epsilon_spent_micro', 'bigint', (c) => c.notNull().defaultTo(0))
        .execute();
      await db.schema
        .createTable('chunks')
        .addColumn('dataset_id', 'text', (c) => c.notNull().references('datasets.id'))
        .addColumn('idx', 'integer', (c) => c.notNull())
        .addColumn('rows', 'integer', (c) => c.notNull())
        .addColumn('envelope', blob(d), (c) => c.notNull())
        .addColumn('tag', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('chunks_pk', ['dataset_id', 'idx'])
        .execute();
      await db.schema
        .createTable('grants')
        .addColumn('dataset_id', 'text', (c) => c.notNull().references('datasets.id'))
        .addColumn('client_id', 'text', (c) => c.notNull().references('parties.id'))
        .addPrimaryKeyConstraint('grants_pk', ['dataset_id', 'client_id'])
        .execute();
      await db.schema
        .createTable('jobs')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('client_id', 'text', (c) => c.notNull().references('parties.id'))
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('spec', 'text', (c) => c.notNull())
        .addColumn('state', 'text', (c) => c.notNull().check(sql`state IN ('queued', 'running', 'done', 'failed')`))
        .addColumn('phase', 'text', (c) => c.notNull())
        .addColumn('progress', 'text')
        .addColumn('error', 'text')
        .addColumn('error_code', 'text')
        .addColumn('job_key', blob(d))
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('started_at', 'bigint')
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .addColumn('finished_at', 'bigint')
        .addColumn('timings', 'text', (c) => c.notNull().defaultTo('{}'))
        .addColumn('result', 'text')
        .execute();
      await db.schema.createIndex('jobs_client').on('jobs').columns(['client_id', 'created_at']).execute();
      await db.schema.createIndex('jobs_state').on('jobs').column('state').execute();
      await db.schema
        .createTable('job_checkpoints')
        .addColumn('job_id', 'text', (c) => c.primaryKey().references('jobs.id'))
        .addColumn('step', 'integer', (c) => c.notNull())
        .addColumn('state', 'text', (c) => c.notNull())
        .addColumn('data', blob(d))
        .execute();
      await db.schema
        .createTable('job_blobs')
        .addColumn('job_id', 'text', (c) => c.notNull().references('jobs.id'))
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('idx', 'integer', (c) => c.notNull())
        .addColumn('data', blob(d), (c) => c.notNull())
        .addPrimaryKeyConstraint('job_blobs_pk', ['job_id', 'name', 'idx'])
        .execute();
    },
  };
}

/**
 * Grants name the job kinds they allow (existing grants keep the two kinds there were); datasets
 * carry the owner's minimum cluster size for k-means releases.
 */
function grantScopes(): Migration {
  return {
    async up(db: Kysely<any>) {
      await db.schema
        .alterTable('grants')
        .addColumn('scopes', 'text', (c) => c.notNull().defaultTo('kmeans,stats'))
        .execute();
      await db.schema
        .alterTable('datasets')
        .addColumn('min_cluster_size', 'integer', (c) => c.notNull().defaultTo(5))
        .execute();
    },
  };
}

/**
 * Delta beside epsilon: each dataset's per-query cap and its ledger (in units of 10^-12, default
 * cap 10^-6), and each job's charge, kept so a job that fails can be refunded.
 */
function deltaLedger(): Migration {
  return {
    async up(db: Kysely<any>) {
      await db.schema
        .alterTable('datasets')
        .addColumn('max_delta_pico', 'bigint', (c) => c.notNull().defaultTo(1_000_000))
        .execute();
      await db.schema
        .alterTable('datasets')
        .addColumn('delta_spent_pico', 'bigint', (c) => c.notNull().defaultTo(0))
        .execute();
      await db.schema.alterTable('jobs').addColumn('charge', 'text').execute();
    },
  };
}

/** Training uploads (seed 002) describe their targets and carry the encrypted seed of their shares. */
function trainingUploads(): Migration {
  return {
    async up(db: Kysely<any>) {
      await db.schema.alterTable('datasets').addColumn('training', 'text').execute();
    },
  };
}

/**
 * A total delta budget beside the per-query cap (units of 10^-12, default 10^-5: ten queries at the
 * default cap), so Gaussian queries cannot spend delta without end.
 */
function deltaBudget(): Migration {
  return {
    async up(db: Kysely<any>) {
      await db.schema
        .alterTable('datasets')
        .addColumn('delta_budget_pico', 'bigint', (c) => c.notNull().defaultTo(10_000_000))
        .execute();
    },
  };
}

/** Owner-side packing (issue 16): the slot width of a dataset's packs, null for one value per ciphertext. */
function ownerPacking(): Migration {
  return {
    async up(db: Kysely<any>) {
      await db.schema.alterTable('datasets').addColumn('pack_slot_bits', 'integer').execute();
    },
  };
}

/** Chunk tasks' results (issue 17), keyed by (job, step, chunk) so a retried task writes nothing twice. */
function taskResults(d: Dialect): Migration {
  return {
    async up(db: Kysely<any>) {
      await db.schema
        .createTable('task_results')
        .addColumn('job_id', 'text', (c) => c.notNull().references('jobs.id'))
        .addColumn('step', 'text', (c) => c.notNull())
        .addColumn('chunk', 'integer', (c) => c.notNull())
        .addColumn('data', blob(d), (c) => c.notNull())
        .addPrimaryKeyConstraint('task_results_pk', ['job_id', 'step', 'chunk'])
        .execute();
    },
  };
}

/** Every migration this build knows, by name; names sort in the order they run. */
export function migrations(d: Dialect): Record<string, Migration> {
  return {
    '0001-initial': initial(d),
    '0002-grant-scopes': grantScopes(),
    '0003-delta-ledger': deltaLedger(),
    '0004-training-uploads': trainingUploads(),
    '0005-delta-budget': deltaBudget(),
    '0006-owner-packing': ownerPacking(),
    '0007-task-results': taskResults(d),
  };
}
