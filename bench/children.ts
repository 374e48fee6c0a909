/** Child processes of a benchmark: started with a JSON announcement on stdout, killed on exit. */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

const children: ChildProcess[] = [];
process.on('exit', () => children.forEach((c) => c.kill()));

/** Starts a node process and waits for its first JSON line on stdout. */
export async function spawnJson(args: string[], env: Record<string, string> = {}): Promise<Record<string, string>> {
  // CIPHERMINE_BENCH_PROFILE=<dir>: every child writes a CPU profile there (node --cpu-prof).
  const dir = process.env.CIPHERMINE_BENCH_PROFILE;
  const profile = dir ? ['--cpu-prof', `--cpu-prof-dir=${dir}`] : [];
  const child = spawn(process.execPath, [...profile, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(child);
  for await (const line of createInterface({ input: child.stdout! })) {
    if (line.startsWith('{')) return JSON.parse(line);
  }
  throw new Error(`${args.join(' ')} exited before announcing itself`);
}

/** A dealer process (`ciphermine dealer start`) on loopback: its two endpoints and key files. */
export function spawnDealer(dataDir: string): Promise<Record<string, string>> {
  return spawnJson([
    join(import.meta.dirname, '..', 'src', 'cli', 'main.js'),
    'dealer',
    'start',
    '--data-dir',
    dataDir,
    '--port',
    '0',
    '--key-server-port',
    '0',
  ]);
}
