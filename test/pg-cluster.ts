/**
 * A throwaway PostgreSQL for tests: `initdb` and `pg_ctl` on a temporary directory, listening on a
 * free loopback port with trust authentication, stopped and deleted afterwards. As root (CI), the
 * server runs as the `postgres` system user, since PostgreSQL refuses to run as root. Failing to
 * start is an error, never a skip.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { appendFileSync, chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import pg from 'pg';

export interface PgCluster {
  /** URL of the `postgres` database of the cluster (superuser, no password). */
  url: string;
  version: string;
  /** Creates a fresh empty database and returns its URL. */
  createDatabase(): Promise<string>;
  /**
   * Stops the server (fast shutdown: sessions end, committed work is kept, as a restart of a real
   * server does; this cluster runs without fsync, so an immediate stop could lose commits), waits
   * `downMs`, starts it again on the same port.
   */
  restart(downMs: number): Promise<void>;
  stop(): void;
}

function binary(name: string): string {
  for (const dir of (process.env.PATH ?? '').split(':')) if (dir && existsSync(join(dir, name))) return join(dir, name);
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root) ? readdirSync(root).sort((a, b) => Number(b) - Number(a)) : [];
  for (const v of versions) if (existsSync(join(root, v, 'bin', name))) return join(root, v, 'bin', name);
  throw new Error(`${name} not found (install PostgreSQL: apt-get install postgresql)`);
}

/** A port free on loopback now (the throwaway servers of the tests listen on one). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** uid/gid to run PostgreSQL as: ourselves, or the postgres (else nobody) user when we are root. */
function runAs(): { uid: number; gid: number } | undefined {
  if (userInfo().uid !== 0) return undefined;
  for (const user of ['postgres', 'nobody']) {
    const r = spawnSync('id', ['-u', user], { encoding: 'utf8' });
    if (r.status === 0) return { uid: Number(r.stdout.trim()), gid: Number(spawnSync('id', ['-g', user], { encoding: 'utf8' }).stdout.trim()) };
  }
  throw new Error('running as root and no postgres or nobody user to run PostgreSQL as');
}

/**
 * `listen`: more addresses to listen on besides 127.0.0.1 (a bridge's, for the multi-host test),
 * with trust authentication from `allow` (a CIDR).
 */
export async function startPgCluster(opts: { listen?: string[]; allow?: string } = {}): Promise<PgCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'cm-pg-'));
  const data = join(dir, 'data');
  const log = join(dir, 'server.log');
  const as = runAs();
  if (as) chownSync(dir, as.uid, as.gid);
  const run = (cmd: string, args: string[]) => execFileSync(binary(cmd), args, { ...as, cwd: dir, stdio: 'pipe', encoding: 'utf8' });
  const port = await freePort();
  const listen = ['127.0.0.1', ...(opts.listen ?? [])].join(',');
  let flags = '';
  try {
    run('initdb', ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-sync', '--locale=C']);
    if (opts.allow) appendFileSync(join(data, 'pg_hba.conf'), `host all all ${opts.allow} trust\n`);
    flags = `-p ${port} -k ${dir} -c listen_addresses=${listen} -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200`;
    run('pg_ctl', ['-D', data, '-o', flags, '-l', log, '-w', '-t', '60', 'start']);
  } catch (e) {
    const detail = existsSync(log) ? readFileSync(log, 'utf8') : '';
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`could not start a throwaway PostgreSQL: ${(e as { stderr?: string }).stderr ?? (e as Error).message}\n${detail}`);
  }
  const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  const version = (await admin.query('SHOW server_version')).rows[0].server_version as string;
  await admin.end();
  let stopped = false;
  return {
    url,
    version,
    createDatabase: () => createDatabaseIn(url),
    async restart(downMs) {
      run('pg_ctl', ['-D', data, '-m', 'fast', '-w', 'stop']);
      await new Promise((r) => setTimeout(r, downMs));
      run('pg_ctl', ['-D', data, '-o', flags, '-l', log, '-w', '-t', '60', 'start']);
    },
    stop() {
      if (stopped) return;
      stopped = true;
      spawnSync(binary('pg_ctl'), ['-D', data, '-m', 'immediate', '-w', 'stop'], { ...as, cwd: dir, stdio: 'ignore' });
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Creates a fresh, randomly named database in the cluster of `url` and returns its URL. */
export async function createDatabaseIn(url: string): Promise<string> {
  const name = `cm_${randomBytes(6).toString('hex')}`;
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    await c.query(`CREATE DATABASE ${name}`);
  } finally {
    await c.end();
  }
  const u = new URL(url);
  u.pathname = `/${name}`;
  return u.toString();
}
