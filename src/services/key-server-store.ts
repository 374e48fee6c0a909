/**
 * The key server's (KMS) shared state for replicas (issue 17): the public keys registered with it,
 * the job keys it made and the record shares of running k-means jobs, in one database that every
 * replica reads (`key-server start --database`), so no replica holds state another needs. Each
 * replica loads the master key from its own 0600 key file; job secret keys are stored sealed under
 * a key derived from it (KeyServerCore.sealForSelf), so the database alone opens nothing.
 *
 * This is the key server's database, apart from the compute server's: the two servers must not
 * share storage any more than they share keys.
 */
import BetterSqlite3 from 'better-sqlite3';
import pg from 'pg';
import { chmodSync, existsSync } from 'node:fs';
import { Kysely, Migrator, PostgresDialect, SqliteDialect, sql, type Migration } from 'kysely';
import { isPostgresUrl } from './store/open-store.js';
import type { Dialect } from './store/migrations.js';
import { CiphermineError } from '../crypto/errors.js';

interface KeysTable {
  fingerprint: string;
  /** 'public': a registered key; 'job': a job key's secret, sealed. */
  kind: 'public' | 'job';
  data: Buffer;
}

interface SharesTable {
  share_id: string;
  key: string;
  offset: number;
  count: number;
  /** The values, decimal, as a JSON array, sealed under the key server's own key. */
  data: Buffer;
  /** When the part was written (ms since the epoch): shares a restarted job left behind age out. */
  written_at: number | string;
}

interface KeyServerDatabase {
  ks_keys: KeysTable;
  ks_shares: SharesTable;
}

const blob = (d: Dialect) => (d === 'postgres' ? sql`bytea` : sql`blob`);

function initial(d: Dialect): Migration {
  return {
    async up(db: Kysely<any>) {
      await db.schema
        .createTable('ks_keys')
        .addColumn('fingerprint', 'text', (c) => c.notNull())
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('data', blob(d), (c) => c.notNull())
        .addPrimaryKeyConstraint('ks_keys_pk', ['fingerprint', 'kind'])
        .execute();
      await db.schema
        .createTable('ks_shares')
        .addColumn('share_id', 'text', (c) => c.notNull())
        .addColumn('key', 'text', (c) => c.notNull())
        .addColumn('offset', 'integer', (c) => c.notNull())
        .addColumn('count', 'integer', (c) => c.notNull())
        .addColumn('data', blob(d), (c) => c.notNull())
        .addPrimaryKeyConstraint('ks_shares_pk', ['share_id', 'offset'])
        .execute();
    },
  };
}

/** One part of a share as stored: its values sealed by the key server (key-server.ts). */
/** Shares older than this are dropped (a job restarted under a new share id leaves its old one behind). */
export const SHARE_MAX_AGE_MS = 7 * 24 * 3600 * 1000;

/** Parts get an age, so shares no job drops (a restart makes a new share) can be removed. */
function shareAge(): Migration {
  return {
    async up(db: Kysely<any>) {
      await db.schema
        .alterTable('ks_shares')
        .addColumn('written_at', 'bigint', (c) => c.notNull().defaultTo(0))
        .execute();
    },
  };
}

export interface StoredSharePart {
  key: string;
  offset: number;
  count: number;
  data: Buffer;
}

export class KeyServerStore {
  private constructor(private readonly db: Kysely<KeyServerDatabase>) {}

  static async open(location: string): Promise<KeyServerStore> {
    let db: Kysely<KeyServerDatabase>;
    let dialect: Dialect;
    if (isPostgresUrl(location)) {
      const pool = new pg.Pool({ connectionString: location, max: 4 });
      pool.on('error', () => undefined);
      pool.on('connect', (client) => client.on('error', () => undefined));
      db = new Kysely({ dialect: new PostgresDialect({ pool }) });
      dialect = 'postgres';
    } else {
      const file = new BetterSqlite3(location);
      for (const f of [location, `${location}-wal`, `${location}-shm`]) if (existsSync(f)) chmodSync(f, 0o600);
      file.pragma('journal_mode = WAL');
      file.pragma('busy_timeout = 5000');
      db = new Kysely({ dialect: new SqliteDialect({ database: file }) });
      dialect = 'sqlite';
    }
    // The two servers must not share storage: a database that holds the compute server's tables is refused.
    const tables = new Set((await db.introspection.getTables()).map((t) => t.name));
    if (tables.has('jobs') || tables.has('datasets')) {
      await db.destroy();
      throw new CiphermineError(
        'ERR_DATABASE_IN_USE',
        "this database holds the compute server's tables: give the key servers a database of their own",
      );
    }
    const migrator = new Migrator({
      db,
      provider: { getMigrations: async () => ({ '0001-initial': initial(dialect), '0002-share-age': shareAge() }) },
      migrationTableName: 'ks_migration',
      migrationLockTableName: 'ks_migration_lock',
    });
    const { error } = await migrator.migrateToLatest();
    if (error) {
      await db.destroy();
      throw error;
    }
    return new KeyServerStore(db);
  }

  async putKey(fingerprint: string, kind: 'public' | 'job', data: Buffer): Promise<void> {
    await this.db
      .insertInto('ks_keys')
      .values({ fingerprint, kind, data })
      .onConflict((oc) => oc.columns(['fingerprint', 'kind']).doNothing())
      .execute();
  }

  async keys(): Promise<KeysTable[]> {
    return (await this.db.selectFrom('ks_keys').selectAll().execute()).map((r) => ({ ...r, data: Buffer.from(r.data) }));
  }

  /** A part of a share; a part written again replaces the earlier one. */
  async putShare(id: string, key: string, offset: number, count: number, data: Buffer): Promise<void> {
    await this.db
      .insertInto('ks_shares')
      .values({ share_id: id, key, offset, count, data, written_at: Date.now() })
      .onConflict((oc) => oc.columns(['share_id', 'offset']).doUpdateSet({ key, count, data, written_at: Date.now() }))
      .execute();
  }

  /** Every part of a share, in order of offset. */
  async share(id: string): Promise<StoredSharePart[]> {
    const rows = await this.db.selectFrom('ks_shares').selectAll().where('share_id', '=', id).orderBy('offset').execute();
    return rows.map((r) => ({ key: r.key, offset: r.offset, count: r.count, data: Buffer.from(r.data) }));
  }

  /** Drops the shares of which some part is older than `maxAgeMs`; returns how many parts went. */
  async dropSharesOlderThan(maxAgeMs: number): Promise<number> {
    const old = this.db
      .selectFrom('ks_shares')
      .select('share_id')
      .where('written_at', '<', Date.now() - maxAgeMs);
    const r = await this.db.deleteFrom('ks_shares').where('share_id', 'in', old).executeTakeFirst();
    return Number(r.numDeletedRows);
  }

  async dropShare(id: string): Promise<boolean> {
    const r = await this.db.deleteFrom('ks_shares').where('share_id', '=', id).executeTakeFirst();
    return Number(r.numDeletedRows) > 0;
  }

  async close(): Promise<void> {
    await this.db.destroy();
  }
}
