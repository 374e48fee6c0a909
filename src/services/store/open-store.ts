/**
 * Opens the compute server's store from a location: a `postgres://` (or `postgresql://`) URL selects
 * PostgreSQL; anything else is the path of an SQLite file (the embedded default).
 */
import BetterSqlite3 from 'better-sqlite3';
import pg from 'pg';
import { Kysely, PostgresDialect, SqliteDialect } from 'kysely';
import { KyselyStore } from './kysely-store.js';
import type { Database } from './schema.js';
import type { Store } from './store.js';

export const isPostgresUrl = (location: string) => /^postgres(ql)?:\/\//.test(location);

export async function openStore(location: string): Promise<Store> {
  if (isPostgresUrl(location)) {
    const pool = new pg.Pool({ connectionString: location, max: 8 });
    // An idle connection dropped by the server must not crash the process; the next query reconnects.
    pool.on('error', () => undefined);
    return KyselyStore.open(new Kysely<Database>({ dialect: new PostgresDialect({ pool }) }), 'postgres');
  }
  const file = new BetterSqlite3(location);
  file.pragma('journal_mode = WAL');
  file.pragma('foreign_keys = ON');
  file.pragma('busy_timeout = 5000');
  return KyselyStore.open(new Kysely<Database>({ dialect: new SqliteDialect({ database: file }) }), 'sqlite');
}

/** Where a store is, for logs: never the password of a PostgreSQL URL. */
export function describeLocation(location: string): string {
  if (!isPostgresUrl(location)) return location;
  const u = new URL(location);
  if (u.password) u.password = '***';
  return u.toString();
}
