/**
 * A throwaway Redis for tests: Debian's `redis-server` on a free loopback port with a temporary
 * directory and no persistence, stopped afterwards. `restart()` stops it and starts it again on the
 * same port with nothing in it (what a Redis restarted without persistence looks like). Failing to
 * start is an error, never a skip: `.ci/run` installs redis-server when it is missing.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createConnection } from 'node:net';
import { freePort } from './pg-cluster.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface RedisServer {
  url: string;
  port: number;
  restart(): Promise<void>;
  stop(): void;
}

function binary(): string {
  for (const dir of [...(process.env.PATH ?? '').split(':'), '/usr/bin', '/usr/sbin'])
    if (dir && existsSync(join(dir, 'redis-server'))) return join(dir, 'redis-server');
  throw new Error('redis-server not found (install it: apt-get install redis-server; .ci/run does)');
}

/** Resolves when the port answers PING with PONG. */
async function ready(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const c = createConnection({ host: '127.0.0.1', port }, () => c.write('PING\r\n'));
      c.once('data', (d) => {
        c.destroy();
        resolve(d.toString().startsWith('+PONG'));
      });
      c.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`redis-server did not answer on port ${port}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** `bind`: more addresses to listen on besides 127.0.0.1 (a bridge's, for the multi-host test). */
export async function startRedis(opts: { bind?: string[] } = {}): Promise<RedisServer> {
  const dir = mkdtempSync(join(tmpdir(), 'cm-redis-'));
  const port = await freePort();
  let child: ChildProcess | undefined;
  let log = '';
  const launch = async () => {
    child = spawn(
      binary(),
      [
        '--port',
        String(port),
        '--bind',
        ['127.0.0.1', ...(opts.bind ?? [])].join(' '),
        '--protected-mode',
        'no',
        '--save',
        '',
        '--appendonly',
        'no',
        '--dir',
        dir,
      ],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    child.stdout!.on('data', (d: Buffer) => (log += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (log += d.toString()));
    try {
      await ready(port, 15_000);
    } catch (e) {
      child.kill('SIGKILL');
      throw new Error(`${(e as Error).message}:\n${log}`);
    }
  };
  const kill = () =>
    new Promise<void>((resolve) => {
      if (!child || child.exitCode !== null) return resolve();
      child.once('exit', () => resolve());
      child.kill('SIGKILL');
    });
  await launch();
  let stopped = false;
  const stop = () => {
    if (stopped) return;
    stopped = true;
    if (child?.pid && child.exitCode === null) spawnSync('kill', ['-9', String(child.pid)]);
    rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', stop);
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    async restart() {
      await kill();
      await launch();
    },
    stop,
  };
}
