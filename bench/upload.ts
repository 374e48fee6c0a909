/**
 * `npm run bench:upload -- --rows 200000 --columns 30 --key-bits 512 --json`: the CLI's `owner
 * upload` of a generated CSV, as a user runs it (a child process, against both servers as
 * processes on loopback). Reports the time, the rows per second, and the peak memory of the
 * uploading process (its VmHWM, worker threads included), which must stay bounded whatever the
 * file's size; the CSV is written as a stream too. Baseline from the same run: one BCP encryption
 * of the same key size on one core, times the cells, divided by the cores.
 */
import { spawn } from 'node:child_process';
import { createWriteStream, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { keyGen, deserializeParams, readKeyFile } from '../src/crypto/index.js';
import { HttpTransport } from '../src/protocols/index.js';
import { DataOwner } from '../src/clients/data-owner.js';
import { saveIdentity } from '../src/clients/identity.js';
import { ComputeServerApi } from '../src/clients/api.js';
import { startServerPair } from '../src/cli/child-server.js';
import { measure, parseFlags, round } from './measure.js';

const flags = parseFlags(process.argv.slice(2));
const rows = Number(flags.get('rows') ?? 20_000);
const columns = Number(flags.get('columns') ?? 30);
const keyBits = Number(flags.get('key-bits') ?? 2048);
const json = flags.has('json');
const log = (s: string) => json || console.error(s);
const MAIN = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));

async function writeCsv(path: string): Promise<void> {
  const out = createWriteStream(path);
  out.write(Array.from({ length: columns }, (_, j) => `c${j}`).join(',') + '\n');
  for (let i = 0; i < rows; i++) {
    const line = Array.from({ length: columns }, (_, j) => (((i * 7919 + j * 104729) % 200_000) / 1000 - 100).toFixed(3)).join(',') + '\n';
    if (!out.write(line)) await new Promise<void>((r) => out.once('drain', () => r()));
  }
  await new Promise<void>((r) => out.end(() => r()));
}

/** Peak resident memory of a process in MB: its VmHWM, read until it exits. */
function watchPeak(pid: number): () => number {
  let peakKb = 0;
  const timer = setInterval(() => {
    try {
      const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
      if (m) peakKb = Math.max(peakKb, Number(m[1]));
    } catch {
      // exited
    }
  }, 100);
  return () => {
    clearInterval(timer);
    return peakKb / 1024;
  };
}

const dir = mkdtempSync(join(tmpdir(), 'ciphermine-upload-'));
const csv = join(dir, 'table.csv');
await writeCsv(csv);
log(`wrote ${rows} x ${columns} (${(statSync(csv).size / 1e6).toFixed(1)} MB) to ${csv}`);
const { ks, cs } = await startServerPair({ dir, keyBits });
try {
  const owner = await DataOwner.register(cs.url, 'bench owner');
  const identity = join(dir, 'owner.id');
  saveIdentity(identity, owner.identity());
  const info = await new ComputeServerApi(cs.url).request<{ params: string }>('GET', '/v1/info');
  const pk = keyGen(deserializeParams(Buffer.from(info.params, 'base64'))).publicKey;
  const encryptMs = measure((i) => pk.encrypt(BigInt(i)), 300, 3).msPerOp;

  const start = performance.now();
  const child = spawn(process.execPath, [MAIN, 'owner', 'upload', '--identity', identity, '--csv', csv], { stdio: ['ignore', 'pipe', 'pipe'] });
  const peak = watchPeak(child.pid!);
  let stdout = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => json || process.stderr.write(d));
  const code = await new Promise<number | null>((r) => child.once('exit', r));
  const seconds = (performance.now() - start) / 1000;
  const peakMb = peak();
  if (code !== 0) throw new Error(`owner upload exited with ${code}`);
  const uploaded = JSON.parse(stdout.trim().split('\n').at(-1)!) as { rows: number };
  const csStats = await new ComputeServerApi(cs.url).request<{ maxRssMb: number }>('GET', '/v1/stats');
  const ksStats = JSON.parse(
    Buffer.from(await new HttpTransport(ks.url, readKeyFile(ks.info.channelKey!)).call('stats', new Uint8Array(0))).toString(),
  );
  const cores = availableParallelism();
  console.log(
    JSON.stringify({
      rows: uploaded.rows,
      columns,
      keyBits,
      csvMb: round(statSync(csv).size / 1e6),
      seconds: round(seconds),
      rowsPerSecond: round(rows / seconds),
      peakMemoryMb: { uploader: round(peakMb), computeServer: round(csStats.maxRssMb), keyServer: round(ksStats.maxRssMb) },
      baseline: { encryptMs: round(encryptMs), encryptionFloorSeconds: round((encryptMs * rows * columns) / 1000 / cores), cores },
      date: new Date().toISOString(),
    }),
  );
} finally {
  await cs.stop();
  await ks.stop();
  rmSync(dir, { recursive: true, force: true });
}
process.exit(0);
