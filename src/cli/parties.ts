/** `ciphermine owner ...` and `ciphermine client ...`: the data owner's and query client's commands. */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { parseNumericCsv } from '../clients/csv.js';
import { DataOwner } from '../clients/data-owner.js';
import { QueryClient } from '../clients/query-client.js';
import { loadIdentity, saveIdentity } from '../clients/identity.js';
import { progressReporter } from './progress.js';

const server = process.env.CIPHERMINE_SERVER ?? 'http://127.0.0.1:7400';
const list = (v: string) =>
  v
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);

export function addPartyCommands(program: Command): void {
  const owner = program.command('owner').description('data owner (DO) commands');
  owner
    .command('register')
    .description('make keys, register with the compute server, save an identity file (0600)')
    .requiredOption('--identity <file>', 'where to save keys and token')
    .option('--server <url>', 'compute server', server)
    .option('--name <name>', 'display name', 'data owner')
    .action(async (o) => {
      const d = await DataOwner.register(o.server, o.name);
      saveIdentity(o.identity, d.identity());
      console.log(JSON.stringify({ id: d.id }));
    });
  owner
    .command('upload')
    .description('encrypt a CSV under your key, wrap it in AES-GCM and upload it')
    .requiredOption('--identity <file>')
    .requiredOption('--csv <file>')
    .option('--name <name>', 'dataset name')
    .option('--ignore-columns <a,b>', 'columns to leave out', list, [])
    .option('--fraction-bits <f>', 'fixed-point precision', '16')
    .option('--max-abs <x>', "declared largest |value| (default: the data's, rounded up)")
    .option('--epsilon-budget <e>', 'total epsilon DP queries may spend on this dataset (default: none allowed)')
    .action(async (o) => {
      const table = parseNumericCsv(readFileSync(o.csv, 'utf8'), o.ignoreColumns);
      const d = await DataOwner.fromIdentity(loadIdentity(o.identity));
      // uploadTable finds the largest |value| with a loop: a spread over millions of cells overflows the stack.
      const id = await d.uploadTable(o.name ?? o.csv, table, {
        fractionBits: Number(o.fractionBits),
        maxAbs: o.maxAbs ? Number(o.maxAbs) : undefined,
        epsilonBudget: o.epsilonBudget === undefined ? undefined : Number(o.epsilonBudget),
      });
      console.log(JSON.stringify({ dataset: id, rows: table.rows.length, columns: table.columns }));
    });
  owner
    .command('grant')
    .description('let a query client use one of your datasets')
    .requiredOption('--identity <file>')
    .requiredOption('--dataset <id>')
    .requiredOption('--client <id>')
    .action(async (o) => {
      await (await DataOwner.fromIdentity(loadIdentity(o.identity))).grant(o.dataset, o.client);
      console.log(JSON.stringify({ granted: o.client, dataset: o.dataset }));
    });

  const client = program.command('client').description('query client (QC) commands');
  client
    .command('register')
    .requiredOption('--identity <file>')
    .option('--server <url>', 'compute server', server)
    .option('--name <name>', 'display name', 'query client')
    .action(async (o) => {
      const q = await QueryClient.register(o.server, o.name);
      saveIdentity(o.identity, q.identity());
      console.log(JSON.stringify({ id: q.id }));
    });
  client
    .command('kmeans')
    .description('run k-means on granted datasets, follow it, decrypt the result')
    .requiredOption('--identity <file>')
    .requiredOption('--datasets <a,b>', 'dataset ids, in order', list)
    .requiredOption('--k <k>')
    .option('--max-iter <n>', 'iteration limit', '100')
    .option('--init-indices <i,j>', 'initial records (0-based over the datasets in order)', list)
    .action(async (o) => {
      const q = QueryClient.fromIdentity(loadIdentity(o.identity));
      const r = await q.kmeans(
        { datasets: o.datasets, k: Number(o.k), maxIter: Number(o.maxIter), initIndices: o.initIndices?.map(Number) },
        { onSubmitted: (id) => console.error(`job ${id} submitted`), onStatus: progressReporter() },
      );
      console.log(
        JSON.stringify({
          job: r.jobId,
          centroids: r.centroids,
          sizes: r.sizes,
          assignments: r.assignments,
          iterations: r.iterations,
          converged: r.converged,
        }),
      );
    });
  const query = program.command('query').description('differentially private queries (query client)');
  query
    .command('stats')
    .description('count, sum, mean, histogram or mode of one column, with differential privacy')
    .requiredOption('--identity <file>')
    .requiredOption('--datasets <a,b>', 'dataset ids', list)
    .requiredOption('--column <name>')
    .requiredOption('--kind <kind>', 'count | sum | mean | histogram | mode')
    .requiredOption('--epsilon <e>', 'privacy loss charged to every dataset')
    .option('--lo <x>', 'lower clipping bound (sum, mean)')
    .option('--hi <x>', 'upper clipping bound (sum, mean)')
    .option('--edges <a,b,...>', 'bin edges (histogram, mode)', list)
    .option('--mechanism <m>', 'laplace | gaussian', 'laplace')
    .option('--delta <d>', 'delta of the Gaussian mechanism')
    .option('--mode <m>', 'pmdp | spmdp', 'pmdp')
    .option('--blocks <b>', 'sample-and-aggregate blocks (mean)')
    .action(async (o) => {
      const q = QueryClient.fromIdentity(loadIdentity(o.identity));
      const num = (x: string | undefined) => (x === undefined ? undefined : Number(x));
      const follow = { onSubmitted: (id: string) => console.error(`job ${id} submitted`), onStatus: progressReporter() };
      const r = await q.stats(
        {
          datasets: o.datasets,
          column: o.column,
          kind: o.kind,
          epsilon: o.epsilon,
          lo: num(o.lo),
          hi: num(o.hi),
          edges: o.edges?.map(Number),
          mechanism: o.mechanism,
          delta: num(o.delta),
          mode: o.mode,
          blocks: num(o.blocks),
        },
        follow,
      );
      console.log(JSON.stringify(r));
    });

  client
    .command('status')
    .requiredOption('--identity <file>')
    .requiredOption('--job <id>')
    .action(async (o) => console.log(JSON.stringify(await QueryClient.fromIdentity(loadIdentity(o.identity)).status(o.job))));
}
