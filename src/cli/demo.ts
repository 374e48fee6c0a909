/**
 * `ciphermine demo`: the whole system on one machine. Both servers run as child processes on
 * loopback with fresh temporary state; the CSV's rows are split among several data owners, each
 * uploading under its own key; one query client is granted every dataset, asks for k-means, and
 * decrypts the result, which is checked against plaintext Lloyd's on the same fixed-point data from
 * the same start.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FixedPointCodec, WorkerPool } from '../crypto/index.js';
import { parseNumericCsv } from '../clients/csv.js';
import { DataOwner } from '../clients/data-owner.js';
import { QueryClient } from '../clients/query-client.js';
import { lloyd, centroids as plainCentroids } from '../analytics/kmeans-plain.js';
import { startServerPair, type ChildServer } from './child-server.js';
import { progressReporter } from './progress.js';

export const SHIPPED_IRIS = fileURLToPath(new URL('../../../data/iris.csv', import.meta.url));

export interface DemoOptions {
  data: string;
  ignoreColumns?: string[];
  k: number;
  initIndices?: number[];
  maxIter: number;
  keyBits: number;
  owners: number;
  fractionBits: number;
  /** The compute server's database: a postgres:// URL (default: SQLite in a temporary directory). */
  database?: string;
  /**
   * `ot` (default): no third party; the iterations compute distances homomorphically. `dealer`: a
   * dealer process too, and the iterations assign on shares (docs/protocols.md).
   */
  provider?: 'ot' | 'dealer';
  json: boolean;
  verbose?: boolean;
}

export interface DemoResult {
  centroids: number[][];
  sizes: number[];
  assignments: number[];
  iterations: number;
  converged: boolean;
  agreesWithPlaintext: boolean;
  seconds: Record<string, number>;
}

/** Indices of the first k rows whose encoded values differ. */
export function firstDistinctRows(rows: readonly (readonly bigint[])[], k: number): number[] {
  const seen = new Set<string>();
  const out: number[] = [];
  for (let i = 0; i < rows.length && out.length < k; i++) {
    const key = rows[i]!.join(',');
    if (!seen.has(key)) {
      seen.add(key);
      out.push(i);
    }
  }
  if (out.length < k) throw new Error(`the data has only ${out.length} distinct rows, fewer than k = ${k}`);
  return out;
}

export async function runDemo(o: DemoOptions): Promise<DemoResult> {
  const say = (s: string) => o.json || console.error(s);
  const t0 = performance.now();
  const seconds: Record<string, number> = {};
  const lap = (name: string, since: number) => (seconds[name] = Number(((performance.now() - since) / 1000).toFixed(3)));

  const text = readFileSync(o.data, 'utf8');
  const header = text
    .split(/\r?\n/, 1)[0]!
    .split(',')
    .map((h) => h.trim());
  const ignore = o.ignoreColumns ?? (header.includes('label') ? ['label'] : []);
  const table = parseNumericCsv(text, ignore);
  if (o.owners < 1 || o.owners > table.rows.length) throw new Error(`--owners must be between 1 and ${table.rows.length}`);
  const maxAbs = Math.max(1, Math.ceil(Math.max(...table.rows.flat().map(Math.abs))));
  const codec = new FixedPointCodec({ fractionBits: o.fractionBits, maxAbs });
  const encoded = table.rows.map((r) => codec.encodeRow(r));
  const init = o.initIndices ?? firstDistinctRows(encoded, o.k);

  const dir = mkdtempSync(join(tmpdir(), 'ciphermine-demo-'));
  const servers: ChildServer[] = [];
  const pool = new WorkerPool();
  try {
    let t = performance.now();
    const withDealer = o.provider === 'dealer';
    say(`starting the key server (${o.keyBits}-bit parameters), the compute server${withDealer ? ' and the dealer' : ''}...`);
    const { ks, cs, dealer } = await startServerPair({ dir, keyBits: o.keyBits, database: o.database, echoLog: o.verbose, dealer: withDealer });
    servers.push(ks, cs, ...(dealer ? [dealer] : []));
    lap('startServers', t);

    t = performance.now();
    const per = Math.ceil(table.rows.length / o.owners);
    const client = await QueryClient.register(cs.url, 'demo query client');
    const datasets: string[] = [];
    for (let w = 0; w < o.owners; w++) {
      const owner = await DataOwner.register(cs.url, `owner ${w + 1}`);
      const rows = table.rows.slice(w * per, (w + 1) * per);
      if (rows.length === 0) continue;
      const id = await owner.upload(`part ${w + 1}`, { columns: table.columns, rows }, codec, { pool });
      await owner.grant(id, client.id);
      datasets.push(id);
    }
    lap('upload', t);
    say(`${datasets.length} owners uploaded ${table.rows.length} records x ${table.columns.length} attributes, each under its own key`);

    t = performance.now();
    const outcome = await client.kmeans(
      { datasets, k: o.k, maxIter: o.maxIter, initIndices: init },
      { onStatus: progressReporter(process.stderr, !o.json) },
    );
    const status = await client.status(outcome.jobId);
    lap('job', t);
    for (const [phase, s] of Object.entries(status.timings)) seconds[phase] = Number(s.toFixed(3));

    const plain = lloyd(encoded, init, o.maxIter);
    const agrees =
      plain.assignments.every((j, i) => j === outcome.assignments[i]) &&
      plain.iterations === outcome.iterations &&
      plain.sums.every((s, j) => s.every((x, a) => x === outcome.sums[j]![a]) && plain.sizes[j] === BigInt(outcome.sizes[j]!));
    const reference = plainCentroids(plain, 2 ** o.fractionBits);
    lap('total', t0);
    if (!o.json) printTable(table.columns, outcome.centroids, outcome.sizes, reference, agrees, outcome, seconds);
    return {
      centroids: outcome.centroids,
      sizes: outcome.sizes,
      assignments: outcome.assignments,
      iterations: outcome.iterations,
      converged: outcome.converged,
      agreesWithPlaintext: agrees,
      seconds,
    };
  } finally {
    await pool.close();
    await Promise.all(servers.map((s) => s.stop()));
    rmSync(dir, { recursive: true, force: true });
  }
}

function printTable(
  columns: string[],
  centroids: number[][],
  sizes: number[],
  reference: number[][],
  agrees: boolean,
  r: { iterations: number; converged: boolean },
  seconds: Record<string, number>,
): void {
  const w = Math.max(8, ...columns.map((c) => c.length));
  console.log(`\ncluster  size  ${columns.map((c) => c.padStart(w)).join('  ')}`);
  centroids.forEach((c, j) =>
    console.log(`${String(j).padStart(7)}  ${String(sizes[j]).padStart(4)}  ${c.map((x) => x.toFixed(4).padStart(w)).join('  ')}`),
  );
  const maxDiff = Math.max(...centroids.flatMap((c, j) => c.map((x, a) => Math.abs(x - reference[j]![a]!))));
  console.log(`\n${r.converged ? 'converged' : 'stopped at --max-iter'} after ${r.iterations} iterations`);
  console.log(
    `plaintext Lloyd's on the same fixed-point data from the same start: ${agrees ? 'AGREES' : 'DIFFERS'} (assignments, sizes, exact sums; largest centroid difference ${maxDiff})`,
  );
  console.log(
    `seconds: ${Object.entries(seconds)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')}`,
  );
}
