/**
 * Opens the compute server's store from a location: a `postgres://` (or `postgresql://`) URL selects
 * PostgreSQL; anything else is the path of an SQLite file (the embedded default).
 */
import { chmodSync, existsSync } from 'node:fs';
import BetterSqlite3 from 'better-sqlite3';
import pg from 'pg';
import { Kysely, PostgresDialect, SqliteDialect } from 'kysely';
import { CiphermineError } from '../../crypto/errors.js';
import { KyselyStore } from './kysely-store.js';
import type { Database } from './schema.js';
import type { Store } from './store.js';

export const isPostgresUrl = (location: string) => /^postgres(ql)?:\/\//.test(location);

/**
 * `lock: false` for a compute worker: many workers share the compute server's database, and only
 * the server, whose runner resumes jobs, holds the lock.
 */
export async function openStore(location: string, opts: { lock?: boolean } = {}): Promise<Store> {
  if (isPostgresUrl(location)) {
    const lock = opts.lock === false ? undefined : await lockDatabase(location);
    const pool = new pg.Pool({ connectionString: location, max: 8 });
    // A connection the server drops (idle, or checked out between queries) must not crash the
    // process: the query in flight fails (and is retried as an outage), the next one reconnects.
    pool.on('error', () => undefined);
    pool.on('connect', (client) => client.on('error', () => undefined));
    return KyselyStore.open(new Kysely<Database>({ dialect: new PostgresDialect({ pool }) }), 'postgres', async () => lock?.end());
  }
  const file = new BetterSqlite3(location);
  // The database holds assignments, sizes and token hashes: owner-only, even in a directory that
  // already existed with a laxer umask. SQLite gives the WAL and shared-memory files it creates the
  // database file's mode; ones left by an earlier run are fixed here.
  for (const f of [location, `${location}-wal`, `${location}-shm`]) if (existsSync(f)) chmodSync(f, 0o600);
  file.pragma('journal_mode = WAL');
  file.pragma('foreign_keys = ON');
  file.pragma('busy_timeout = 5000');
  return KyselyStore.open(new Kysely<Database>({ dialect: new SqliteDialect({ database: file }) }), 'sqlite');
}

/** Any number that names "the compute server of this database" among advisory locks. */
const SERVER_LOCK = 0x636d6e65;

/**
 * One compute server per database: its runner is the only one that resumes and runs the jobs, so a
 * second server on the same PostgreSQL is refused (a session-level advisory lock, released when the
 * holder's connection ends, even by a crash). Waits a little for a killed predecessor's session.
 */
async function lockDatabase(location: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: location });
  client.on('error', () => undefined);
  await client.connect();
  for (let i = 0; ; i++) {
    const r = await client.query('SELECT pg_try_advisory_lock($1) AS ok', [SERVER_LOCK]);
    if (r.rows[0].ok) return client;
    if (i >= 40) {
      await client.end();
      throw new CiphermineError('ERR_DATABASE_IN_USE', `another compute server is using ${describeLocation(location)}; run one per database`);
    }
    await new Promise((res) => setTimeout(res, 250));
  }
}

/** Where a store or queue is, for logs: never the password of a URL. */
export function describeLocation(location: string): string {
  if (!/^[a-z]+:\/\//.test(location)) return location;
  const u = new URL(location);
  if (u.password) u.password = '***';
  return u.toString();
}
