#!/usr/bin/env node
/**
 * `npm test`: the formatting check, the whole suite on the embedded SQLite default, then the service
 * suite again with the compute server on PostgreSQL: a throwaway cluster started here (initdb and
 * pg_ctl on a temporary directory and a free loopback port) and stopped afterwards. A PostgreSQL that
 * cannot start fails the run; it is never skipped. `--sqlite-only` or `--postgres-only` runs one half.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const only = process.argv[2];
const testFiles = (dirs) =>
  dirs.flatMap((d) =>
    readdirSync(join(root, 'dist/test', d))
      .filter((f) => f.endsWith('.test.js'))
      .map((f) => join('dist/test', d, f)),
  );
const allDirs = readdirSync(join(root, 'dist/test'), { withFileTypes: true })
  .filter((e) => e.isDirectory())
  .map((e) => e.name);

// The suites use 512-bit parameters for speed; outside tests anything below 2048 bits is refused.
function run(cmd, args, env = {}) {
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', env: { ...process.env, CIPHERMINE_INSECURE_TEST_PARAMS: '1', ...env } });
  return r.status ?? 1;
}

let failed = 0;
if (only !== '--postgres-only') {
  console.log('# formatting (prettier --check)');
  failed |= run(process.execPath, [join(root, 'node_modules/prettier/bin/prettier.cjs'), '--check', '--log-level', 'warn', '.']);
  console.log('# the whole suite, compute server on SQLite');
  failed |= run(process.execPath, ['--test', '--test-concurrency=2', ...testFiles(allDirs)]);
}
if (only !== '--sqlite-only') {
  const { startPgCluster } = await import(join(root, 'dist/test/pg-cluster.js'));
  const pg = await startPgCluster();
  try {
    console.log(`# the service suite again, compute server on PostgreSQL ${pg.version} (${pg.url})`);
    failed |= run(process.execPath, ['--test', '--test-concurrency=2', ...testFiles(['services'])], {
      CIPHERMINE_TEST_DATABASE: 'postgres',
      CIPHERMINE_TEST_PG_URL: pg.url,
    });
  } finally {
    pg.stop();
  }
}
process.exit(failed ? 1 : 0);
