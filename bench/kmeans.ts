/**
 * `npm run bench:kmeans -- --records N --dims M --k K --iterations I --key-bits B [--comparison hidden|multiplicative] [--provider ot|dealer] --json`: a seeded
 * synthetic data set of K well-separated clusters split among 3 owners; both servers as separate
 * processes on loopback, as in production; upload + job + result. The last stdout line is one JSON
 * object. Baselines from the same run: plaintext Lloyd's per iteration, the raw modexp floor and one
 * CRT encryption in KMS form; each server's CPU seconds per phase, and an iteration's CPU per
 * (record x cluster) and per (record x cluster x dimension), in ms and in modexp floors.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generatePrimeSync } from 'node:crypto';
import { FixedPointCodec, WorkerPool, backend, randomBelow, readKeyFile } from '../src/crypto/index.js';
import { KmsEncryptor } from '../src/crypto/kms-paillier.js';
import { HttpTransport } from '../src/protocols/index.js';
import { DataOwner } from '../src/clients/data-owner.js';
import { QueryClient } from '../src/clients/query-client.js';
import { ComputeServerApi } from '../src/clients/api.js';
import { lloyd } from '../src/analytics/kmeans-plain.js';
import { startServerPair } from '../src/cli/child-server.js';
import { parseFlags, rng, round } from './measure.js';

const flags = parseFlags(process.argv.slice(2));
const num = (name: string, dflt: number) => Number(flags.get(name) ?? dflt);
const records = num('records', 2500);
const dims = num('dims', 4);
const k = num('k', 4);
const iterations = num('iterations', 3);
const keyBits = num('key-bits', 2048);
const json = flags.has('json');
/** SMDM's comparisons: the hidden argmin (default) or the seed's multiplicative SDC (opt-in), to compare costs. */
const comparison = (flags.get('comparison') ?? 'hidden') as 'hidden' | 'multiplicative';
if (!['hidden', 'multiplicative'].includes(comparison)) throw new Error('--comparison is hidden or multiplicative');
/**
 * Where the engine's correlated randomness comes from: `ot` between the servers (default; the
 * distances then stay homomorphic), or a `dealer` process, with which the distances are one matrix
 * product on shares (mpc/nearest-centroid.ts).
 */
const provider = (flags.get('provider') ?? 'ot') as 'ot' | 'dealer';
if (!['ot', 'dealer'].includes(provider)) throw new Error('--provider is ot or dealer');
const log = (s: string) => json || console.error(s);

const rand = rng(20261121);
const centres = Array.from({ length: k }, () => Array.from({ length: dims }, () => (rand() - 0.5) * 160));
const rows = Array.from({ length: records }, (_, i) => centres[i % k]!.map((c) => Number((c + (rand() - 0.5) * 10).toFixed(3))));
const codec = new FixedPointCodec({ fractionBits: 16, maxAbs: 100 });
const encoded = rows.map((r) => codec.encodeRow(r));
const init = Array.from({ length: k }, (_, j) => j);

const t0 = performance.now();
let t = t0;
type ProcessStats = { maxRssMb: number; cpuSeconds: number };
async function serverStats(): Promise<[ProcessStats, ProcessStats]> {
  const ksReply = await new HttpTransport(ks.url, readKeyFile(ks.info.channelKey!)).call('stats', new Uint8Array(0));
  const csStats = await new ComputeServerApi(cs.url).request<ProcessStats>('GET', '/v1/stats');
  return [JSON.parse(Buffer.from(ksReply).toString()) as ProcessStats, csStats];
}

const lapSeconds = () => {
  const now = performance.now();
  const s = (now - t) / 1000;
  t = now;
  return round(s);
};

const dir = mkdtempSync(join(tmpdir(), 'ciphermine-bench-'));
const { ks, cs, dealer } = await startServerPair({ dir, keyBits, dealer: provider === 'dealer' });
const setupSeconds = lapSeconds();
const pool = new WorkerPool();
try {
  const client = await QueryClient.register(cs.url, 'bench client');
  const datasets: string[] = [];
  const per = Math.ceil(records / 3);
  for (let w = 0; w < 3; w++) {
    const owner = await DataOwner.register(cs.url, `owner ${w}`);
    const id = await owner.upload(`part ${w}`, { columns: centres[0]!.map((_, a) => `x${a}`), rows: rows.slice(w * per, (w + 1) * per) }, codec, {
      pool,
    });
    await owner.grant(id, client.id);
    datasets.push(id);
  }
  await pool.close();
  const upload = lapSeconds();
  const [ksBefore, csBefore] = await serverStats();
  log(`uploaded ${records} x ${dims} in ${upload} s`);
  const job = await client.submitKMeans({ datasets, k, maxIter: iterations, initIndices: init, comparison });
  // Each server's CPU seconds per phase: sampled at every status poll (once a second), the delta
  // since the last sample charged to the phase the job was in then.
  const cpu = { keyServer: new Map<string, number>(), computeServer: new Map<string, number>() };
  let last = { phase: 'queued', ks: ksBefore.cpuSeconds, cs: csBefore.cpuSeconds };
  const sample = async (phase: string) => {
    const [ksNow, csNow] = await serverStats();
    const add = (m: Map<string, number>, v: number) => m.set(last.phase, (m.get(last.phase) ?? 0) + v);
    add(cpu.keyServer, ksNow.cpuSeconds - last.ks);
    add(cpu.computeServer, csNow.cpuSeconds - last.cs);
    last = { phase, ks: ksNow.cpuSeconds, cs: csNow.cpuSeconds };
  };
  let sampling = Promise.resolve();
  const status = await client.waitFor(
    job,
    (s) => {
      log(`  ${s.phase}, ${s.progress?.unit ?? 'step'} ${s.progress?.done ?? 0}`);
      sampling = sampling.then(() => sample(s.state === 'done' ? 'done' : s.phase));
    },
    1000,
  );
  await sampling;
  if (status.state !== 'done') throw new Error(`job failed: ${status.error}`);
  const result = await client.kmeansResult(job);
  const jobSeconds = lapSeconds();
  const perIteration = Object.entries(status.timings)
    .filter(([name]) => name.startsWith('iteration '))
    .map(([, s]) => s)
    .sort((a, b) => a - b);
  const median = perIteration.length
    ? perIteration[Math.floor(perIteration.length / 2)]!
    : status.timings.iterations! / Math.max(1, result.iterations);

  const tp = performance.now();
  const plain = lloyd(encoded, init, iterations);
  const plaintextPerIterationMs = (performance.now() - tp) / plain.iterations;
  const agrees = plain.assignments.every((j, i) => j === result.assignments[i]);

  // The floor's cost depends only on the sizes: an odd modulus N^2 of 2 keyBits bits, an exponent of keyBits bits.
  const N = (1n << BigInt(keyBits - 1)) | 1n;
  const floorStart = performance.now();
  for (let i = 0; i < 20; i++) backend().modPow(randomBelow(N * N), randomBelow(N), N * N);
  const modexpFloorMs = (performance.now() - floorStart) / 20;

  // One CRT encryption in KMS form (the key server's cheap re-encryption), same sizes: primes of keyBits / 2.
  const [p, q] = [generatePrimeSync(keyBits / 2, { bigint: true }), generatePrimeSync(keyBits / 2, { bigint: true })];
  const kms = new KmsEncryptor(p * q, p, q);
  kms.encrypt(1n);
  const kmsStart = performance.now();
  for (let i = 0; i < 50; i++) kms.encrypt(BigInt(i));
  const crtKmsEncryptionMs = (performance.now() - kmsStart) / 50;

  const [ksStats, csStats] = await serverStats();
  // CPU seconds of both servers (worker threads included) per second of the job: 2.0 = both cores busy.
  const coresBusy = (ksStats.cpuSeconds - ksBefore.cpuSeconds + csStats.cpuSeconds - csBefore.cpuSeconds) / jobSeconds;
  const out = {
    records,
    dims,
    k,
    keyBits,
    comparison,
    provider,
    iterations: result.iterations,
    converged: result.converged,
    agreesWithPlaintext: agrees,
    seconds: {
      setupServers: setupSeconds,
      upload,
      conversion: round(status.timings.conversion ?? 0),
      perIteration: round(median),
      iterationsAll: perIteration.map((s) => round(s)),
      result: round(status.timings.result ?? 0),
      iterations: result.iterations,
      job: jobSeconds,
      total: round((performance.now() - t0) / 1000),
    },
    plaintextPerIterationMs: round(plaintextPerIterationMs),
    modexpFloorMs: round(modexpFloorMs),
    crtKmsEncryptionMs: round(crtKmsEncryptionMs),
    // CPU seconds per phase per server (worker threads included), and an iteration's CPU per unit of
    // work, in milliseconds and in modexp floors, so the distance to the hardware's limit is readable.
    cpuSeconds: {
      keyServer: Object.fromEntries([...cpu.keyServer].map(([ph, v]) => [ph, round(v)])),
      computeServer: Object.fromEntries([...cpu.computeServer].map(([ph, v]) => [ph, round(v)])),
    },
    perIterationCpu: Object.fromEntries(
      (['keyServer', 'computeServer'] as const).map((who) => {
        const sec = (cpu[who].get('iterations') ?? 0) / Math.max(1, result.iterations);
        const unit = (n: number) => ({ ms: round((1000 * sec) / n), modexpFloors: round((1000 * sec) / n / modexpFloorMs) });
        return [who, { perRecordCluster: unit(records * k), perRecordClusterDim: unit(records * k * dims) }];
      }),
    ),
    peakMemoryMb: { keyServer: round(ksStats.maxRssMb), computeServer: round(csStats.maxRssMb) },
    coresBusyDuringJob: round(coresBusy),
    date: new Date().toISOString(),
  };
  console.log(JSON.stringify(out));
} finally {
  await cs.stop();
  await ks.stop();
  await dealer?.stop();
  rmSync(dir, { recursive: true, force: true });
}
process.exit(0);
