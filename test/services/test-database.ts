/**
 * Which database the service tests run on. `CIPHERMINE_TEST_DATABASE=postgres` runs them on
 * PostgreSQL: the cluster given in CIPHERMINE_TEST_PG_URL (scripts/test.mjs starts one for the
 * whole run), or else one this test process starts and stops itself; each call gets a fresh
 * database. Otherwise the compute server uses its embedded SQLite default.
 */
import { createDatabaseIn, startPgCluster, type PgCluster } from '../pg-cluster.js';

export const onPostgres = process.env.CIPHERMINE_TEST_DATABASE === 'postgres';

let own: Promise<PgCluster> | undefined;

/** A fresh database URL on PostgreSQL, or undefined for SQLite. */
export async function testDatabase(): Promise<string | undefined> {
  if (!onPostgres) return undefined;
  const shared = process.env.CIPHERMINE_TEST_PG_URL;
  if (shared) return createDatabaseIn(shared);
  own ??= startPgCluster().then((c) => {
    process.once('exit', () => c.stop());
    return c;
  });
  return (await own).createDatabase();
}
