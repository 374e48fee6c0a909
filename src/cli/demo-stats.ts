/**
 * `ciphermine demo stats`: seed 001's running example. Five owners hold seeded synthetic wages
 * (in thousands, with a few outliers), upload them encrypted under their own keys with a privacy
 * budget, and grant one query client, which publishes their clipped mean with differential privacy
 * (pmdp or spmdp, optionally by sample-and-aggregate). Both servers run as child processes.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FixedPointCodec } from '../crypto/index.js';
import { DataOwner } from '../clients/data-owner.js';
import { QueryClient } from '../clients/query-client.js';
import { startServerPair, type ChildServer } from './child-server.js';

export interface StatsDemoOptions {
  epsilon: number;
  mode: 'pmdp' | 'spmdp';
  blocks?: number;
  keyBits: number;
  owners: number;
  perOwner: number;
  budget: number;
  /** The compute server's database: a postgres:// URL (default: SQLite in a temporary directory). */
  database?: string;
  json: boolean;
}

/** Seeded wages: log-normal-ish around 50k, one outlier per owner. */
export function syntheticWages(owners: number, perOwner: number, seed = 2017): number[][] {
  let x = seed;
  const next = () => (x = (x * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  return Array.from({ length: owners }, (_, o) =>
    Array.from({ length: perOwner }, (_, i) => {
      if (i === 0) return 400 + 100 * o; // the CEO
      const z = Math.sqrt(-2 * Math.log(next() || 1e-9)) * Math.cos(2 * Math.PI * next());
      return Number((50 * Math.exp(0.35 * z)).toFixed(2));
    }),
  );
}

export async function runStatsDemo(o: StatsDemoOptions) {
  const say = (s: string) => o.json || console.error(s);
  const t0 = performance.now();
  const lo = 0;
  const hi = 150;
  const wages = syntheticWages(o.owners, o.perOwner);
  const flat = wages.flat();
  const exact = flat.reduce((a, w) => a + Math.min(hi, Math.max(lo, w)), 0) / flat.length;
  const codec = new FixedPointCodec({ fractionBits: 8, maxAbs: 1000 });
  const dir = mkdtempSync(join(tmpdir(), 'ciphermine-stats-'));
  const servers: ChildServer[] = [];
  try {
    say(`starting the key server (${o.keyBits}-bit parameters) and the compute server...`);
    const { ks, cs } = await startServerPair({ dir, keyBits: o.keyBits, database: o.database });
    servers.push(ks, cs);
    const client = await QueryClient.register(cs.url, 'statistics office');
    const datasets: string[] = [];
    for (let w = 0; w < o.owners; w++) {
      const owner = await DataOwner.register(cs.url, `employer ${w + 1}`);
      const id = await owner.upload(`wages ${w + 1}`, { columns: ['wage'], rows: wages[w]!.map((x) => [x]) }, codec, { epsilonBudget: o.budget });
      await owner.grant(id, client.id);
      datasets.push(id);
    }
    say(`${o.owners} owners uploaded ${flat.length} wages, each under its own key, budget epsilon = ${o.budget} each`);
    const tq = performance.now();
    // The demo knows its record count, so its blocks split the records evenly; a real client picks
    // a public block size without knowing n (docs/differential-privacy.md).
    const blockSize = o.blocks ? Math.floor(flat.length / o.blocks) : undefined;
    const r = await client.stats({ datasets, column: 'wage', kind: 'mean', lo, hi, epsilon: o.epsilon, mode: o.mode, blocks: o.blocks, blockSize });
    const seconds = { query: Number(((performance.now() - tq) / 1000).toFixed(3)), total: Number(((performance.now() - t0) / 1000).toFixed(3)) };
    const out = {
      published: r.value!,
      exact,
      epsilon: o.epsilon,
      mode: o.mode,
      blocks: o.blocks ?? null,
      budgetRemaining: r.budgetRemaining,
      records: flat.length,
      clip: [lo, hi],
      seconds,
    };
    if (!o.json) {
      console.log(
        `\npublished mean wage (epsilon ${o.epsilon}, ${o.mode}${o.blocks ? `, ${o.blocks} blocks` : ''}): ${out.published.toFixed(3)} thousand`,
      );
      console.log(`exact clipped mean (computed by the demo itself, never published): ${exact.toFixed(3)} thousand`);
      console.log(`privacy budget left per dataset: ${Object.values(r.budgetRemaining).join(', ')}`);
      console.log(`seconds: query ${seconds.query}, total ${seconds.total}`);
    }
    return out;
  } finally {
    await Promise.all(servers.map((s) => s.stop()));
    rmSync(dir, { recursive: true, force: true });
  }
}
