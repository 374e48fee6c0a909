/**
 * `ciphermine demo federated`: seed 003 on one machine. Both servers and every host run as child
 * processes on loopback with temporary state; each host process gets its share of the CSV as a file
 * of its own, which it never sends. The result every host ends with is checked against plaintext
 * Lloyd's on the union of the shares, after the same normalisation, from the same start.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FixedPointCodec } from '../crypto/index.js';
import { parseNumericCsv, type NumericTable } from '../clients/csv.js';
import { QueryClient } from '../clients/query-client.js';
import { saveIdentity } from '../clients/identity.js';
import { denormalize, type Normalization } from '../analytics/federated-kmeans.js';
import { federatedReference } from '../analytics/federated-kmeans-plain.js';
import { startServerPair, type ChildServer } from './child-server.js';
import { firstDistinctRows } from './demo.js';
import type { hostOutput } from './hosts.js';
import { progressReporter } from './progress.js';

const MAIN = fileURLToPath(new URL('./main.js', import.meta.url));

export interface FederatedDemoOptions {
  data: string;
  ignoreColumns?: string[];
  k: number;
  initIndices?: number[];
  maxIter: number;
  hosts: number;
  normalize: Normalization;
  tolerance: number;
  keyBits: number;
  fractionBits: number;
  /** Differentially private totals; the result then differs from plaintext Lloyd by the noise. */
  epsilon?: number;
  json: boolean;
  verbose?: boolean;
}

export interface FederatedDemoResult {
  centroids: number[][];
  sizes: number[];
  assignments: number[];
  iterations: number;
  converged: boolean;
  agreesWithPlaintext: boolean;
  seconds: Record<string, number>;
}

type HostJson = ReturnType<typeof hostOutput>;

function readTable(o: FederatedDemoOptions): NumericTable {
  const text = readFileSync(o.data, 'utf8');
  const header = text
    .split(/\r?\n/, 1)[0]!
    .split(',')
    .map((h) => h.trim());
  return parseNumericCsv(text, o.ignoreColumns ?? (header.includes('label') ? ['label'] : []));
}

function toCsv(t: NumericTable): string {
  return [t.columns.join(','), ...t.rows.map((r) => r.join(','))].join('\n') + '\n';
}

/** Runs `ciphermine host join` as its own process; resolves with its JSON line. */
export function hostProcess(identity: string, csv: string, jobId: string, echo: boolean): Promise<HostJson> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [MAIN, 'host', 'join', '--identity', identity, '--csv', csv, '--job', jobId, ...(echo ? [] : ['--quiet'])],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
      if (echo) process.stderr.write(d);
    });
    child.on('exit', (code) => {
      if (code === 0) resolve(JSON.parse(out.trim().split('\n').pop()!) as HostJson);
      else reject(new Error(`host process for ${csv} exited with ${code}: ${err.trim().split('\n').pop() ?? ''}`));
    });
  });
}

export async function runFederatedDemo(o: FederatedDemoOptions): Promise<FederatedDemoResult> {
  const say = (s: string) => o.json || console.error(s);
  const t0 = performance.now();
  const seconds: Record<string, number> = {};
  const lap = (name: string, since: number) => (seconds[name] = Number(((performance.now() - since) / 1000).toFixed(3)));
  const table = readTable(o);
  if (o.hosts < 2 || o.hosts > table.rows.length) throw new Error(`--hosts must be between 2 and ${table.rows.length}`);
  const maxAbs = Math.max(1, Math.ceil(Math.max(...table.rows.flat().map(Math.abs))));
  const codec = new FixedPointCodec({ fractionBits: o.fractionBits, maxAbs });
  const encoded = table.rows.map((r) => codec.encodeRow(r));
  const init = o.initIndices ?? firstDistinctRows(encoded, o.k);
  if (init.length !== o.k || init.some((i) => i >= table.rows.length)) throw new Error(`--init-indices needs ${o.k} rows below ${table.rows.length}`);
  const per = Math.ceil(table.rows.length / o.hosts);

  const dir = mkdtempSync(join(tmpdir(), 'ciphermine-federated-'));
  const servers: ChildServer[] = [];
  try {
    let t = performance.now();
    say(`starting the key server (${o.keyBits}-bit parameters) and the compute server...`);
    const { ks, cs } = await startServerPair({ dir, keyBits: o.keyBits, echoLog: o.verbose });
    servers.push(ks, cs);
    lap('startServers', t);

    t = performance.now();
    const hosts = await Promise.all(Array.from({ length: o.hosts }, (_, h) => QueryClient.register(cs.url, `host ${h + 1}`)));
    const files = hosts.map((q, h) => {
      const f = { identity: join(dir, `host-${h + 1}.id`), csv: join(dir, `host-${h + 1}.csv`) };
      saveIdentity(f.identity, q.identity());
      writeFileSync(f.csv, toCsv({ columns: table.columns, rows: table.rows.slice(h * per, (h + 1) * per) }));
      return f;
    });
    lap('registerHosts', t);
    say(`${o.hosts} hosts hold ${table.rows.length} records x ${table.columns.length} attributes between them, each its own share`);

    t = performance.now();
    const jobId = await hosts[0]!.submit('federated-kmeans', {
      hosts: hosts.map((q) => q.id),
      columns: table.columns,
      k: o.k,
      maxIter: o.maxIter,
      tolerance: o.tolerance,
      normalize: o.normalize,
      init: init.map((i) => ({ host: Math.floor(i / per), row: i % per })),
      fractionBits: o.fractionBits,
      maxAbs,
      hostTimeoutSeconds: 120,
      ...(o.epsilon !== undefined ? { epsilon: o.epsilon } : {}),
    });
    const outputs = Promise.all(files.map((f) => hostProcess(f.identity, f.csv, jobId, !!o.verbose)));
    const status = await hosts[0]!.waitFor(jobId, progressReporter(process.stderr, !o.json));
    const results = await outputs;
    lap('job', t);
    if (status.state !== 'done') throw new Error(`the job failed: ${status.error}`);
    for (const [phase, s] of Object.entries(status.timings)) if (!phase.startsWith('iteration ')) seconds[phase] = Number(s.toFixed(3));

    const ref = federatedReference(encoded, init, {
      k: o.k,
      maxIter: o.maxIter,
      tolerance: o.tolerance,
      normalize: o.normalize,
      fractionBits: o.fractionBits,
    });
    const assignments = results.flatMap((r) => r.assignments);
    const agrees =
      results.every(
        (r) =>
          r.iterations === ref.iterations &&
          r.converged === ref.converged &&
          r.sizes.every((c, j) => BigInt(c) === ref.sizes[j]) &&
          r.sums.every((s, j) => s.every((x, a) => BigInt(x) === ref.sums[j]![a])),
      ) && assignments.every((j, i) => j === ref.assignments[i]);
    const scale = 2 ** o.fractionBits;
    const reference = ref.sums.map((s, j) => s.map((x, a) => denormalize(ref.normalizer, a, Number(x) / Number(ref.sizes[j]!) / scale)));
    lap('total', t0);
    const mine = results[0]!;
    if (!o.json) printResult(table.columns, mine, reference, agrees, seconds);
    return {
      centroids: mine.centroids,
      sizes: mine.sizes,
      assignments,
      iterations: mine.iterations,
      converged: mine.converged,
      agreesWithPlaintext: agrees,
      seconds,
    };
  } finally {
    await Promise.all(servers.map((s) => s.stop()));
    rmSync(dir, { recursive: true, force: true });
  }
}

function printResult(columns: string[], r: HostJson, reference: number[][], agrees: boolean, seconds: Record<string, number>): void {
  const w = Math.max(8, ...columns.map((c) => c.length));
  console.log(`\ncluster  size  ${columns.map((c) => c.padStart(w)).join('  ')}   (centres in the input's units, as every host learned them)`);
  r.centroids.forEach((c, j) =>
    console.log(`${String(j).padStart(7)}  ${String(r.sizes[j]).padStart(4)}  ${c.map((x) => x.toFixed(4).padStart(w)).join('  ')}`),
  );
  const maxDiff = Math.max(...r.centroids.flatMap((c, j) => c.map((x, a) => Math.abs(x - reference[j]![a]!))));
  console.log(`\n${r.converged ? 'converged' : 'stopped at --max-iter'} after ${r.iterations} iterations`);
  console.log(
    `plaintext Lloyd's on the union, same normalisation and start: ${agrees ? 'AGREES' : 'DIFFERS'} (exact sums, sizes, iterations, assignments; largest centre difference ${maxDiff})`,
  );
  console.log(
    `seconds: ${Object.entries(seconds)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')}`,
  );
}
