/** Starts a Ciphermine server as a child process and waits for its "listening" line. */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface ChildServer {
  url: string;
  info: Record<string, string>;
  process: ChildProcess;
  /** What the child wrote to stderr (its log), for error reports. */
  log(): string;
  stop(): Promise<void>;
}

const MAIN = fileURLToPath(new URL('./main.js', import.meta.url));

export interface ChildServerOptions {
  echoLog?: boolean;
  timeoutMs?: number;
  /** Environment and working directory of the child (default: this process's). */
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** The command to run instead of `ciphermine` (a test runs the README's lines as written). */
  command?: string[];
}

export async function startChildServer(args: string[], opts: ChildServerOptions = {}): Promise<ChildServer> {
  // CIPHERMINE_PROFILE_DIR=<dir>: each server started here writes a CPU profile there when it stops
  // (node --cpu-prof), for the benchmarks' per-function profiles.
  const profile = process.env.CIPHERMINE_PROFILE_DIR ? ['--cpu-prof', `--cpu-prof-dir=${process.env.CIPHERMINE_PROFILE_DIR}`] : [];
  const [file, ...pre] = opts.command ?? [process.execPath, ...profile, MAIN];
  const child = spawn(file!, [...pre, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: opts.env, cwd: opts.cwd });
  let log = '';
  child.stderr!.on('data', (d: Buffer) => {
    log += d.toString();
    if (opts.echoLog) process.stderr.write(d);
  });
  const info = await new Promise<Record<string, string>>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`${args[0]} did not start within ${(opts.timeoutMs ?? 120_000) / 1000} s:\n${log}`)),
      opts.timeoutMs ?? 120_000,
    );
    const lines = createInterface({ input: child.stdout! });
    lines.on('line', (line) => {
      try {
        const msg = JSON.parse(line) as Record<string, string>;
        if (msg.event === 'listening') {
          clearTimeout(timer);
          resolve(msg);
        }
      } catch {
        // not a status line
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${args[0]} exited with code ${code}:\n${log}`));
    });
  });
  let stopping = false;
  child.once('exit', (code, signal) => {
    // A server that dies under a running demo says so, with its last words, instead of a bare "fetch failed".
    if (!stopping) process.stderr.write(`${args[0]} exited unexpectedly (${signal ?? `code ${code}`}):\n${log.split('\n').slice(-20).join('\n')}\n`);
  });
  return {
    url: info.url!,
    info,
    process: child,
    log: () => log,
    stop: () =>
      new Promise<void>((resolve) => {
        stopping = true;
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
        setTimeout(() => child.kill('SIGKILL'), 5000).unref();
      }),
  };
}

/**
 * Both servers as child processes on loopback with state under `dir`, as every demo and benchmark
 * runs them: the key server first (it makes the parameters and the channel key), then the compute
 * server pointed at it, on SQLite in dir/cs or on the given PostgreSQL.
 */
export async function startServerPair(o: {
  dir: string;
  keyBits: number;
  database?: string;
  echoLog?: boolean;
  /** Also start a dealer process and point both servers at it (the engine's `dealer` provider). */
  dealer?: boolean;
}): Promise<{ ks: ChildServer; cs: ChildServer; dealer?: ChildServer }> {
  const dealer = o.dealer
    ? await startChildServer(['dealer', 'start', '--data-dir', join(o.dir, 'dealer'), '--port', '0', '--key-server-port', '0'], {
        echoLog: o.echoLog,
      })
    : undefined;
  const via = (url?: string, key?: string) => (dealer ? ['--dealer', url!, '--dealer-key', key!] : []);
  let ks: ChildServer;
  try {
    ks = await startChildServer(
      [
        'key-server',
        'start',
        '--data-dir',
        join(o.dir, 'ks'),
        '--port',
        '0',
        '--key-bits',
        String(o.keyBits),
        ...via(dealer?.info.keyServerUrl, dealer?.info.keyServer),
      ],
      { echoLog: o.echoLog },
    );
  } catch (e) {
    await dealer?.stop();
    throw e;
  }
  try {
    const args = [
      'compute-server',
      'start',
      '--data-dir',
      join(o.dir, 'cs'),
      '--port',
      '0',
      '--key-server',
      ks.url,
      '--channel-key',
      ks.info.channelKey!,
    ];
    const cs = await startChildServer([...args, ...(o.database ? ['--database', o.database] : []), ...via(dealer?.url, dealer?.info.computeServer)], {
      echoLog: o.echoLog,
    });
    return { ks, cs, dealer };
  } catch (e) {
    await ks.stop();
    await dealer?.stop();
    throw e;
  }
}
