/** `ciphermine owner ...` and `ciphermine client ...`: the data owner's and query client's commands. */
import { existsSync, readFileSync } from 'node:fs';
import { ParameterError } from '../crypto/errors.js';
import { integer, integerList, list, number, numberList } from './parse.js';
import type { Command } from 'commander';
import { parseNumericCsv } from '../clients/csv.js';
import { DataOwner } from '../clients/data-owner.js';
import { QueryClient } from '../clients/query-client.js';
import { loadIdentity, saveIdentity } from '../clients/identity.js';
import { progressReporter } from './progress.js';

const server = process.env.CIPHERMINE_SERVER ?? 'http://127.0.0.1:7400';

/** Registration makes new keys: an existing identity file is never overwritten by accident. */
function refuseOverwrite(path: string, force: boolean | undefined): void {
  if (existsSync(path) && !force) {
    throw new ParameterError(
      `${path} already holds an identity; choose another file, or pass --force to replace it (its keys, and access to its datasets, are lost)`,
    );
  }
}

export function addPartyCommands(program: Command): void {
  const owner = program.command('owner').description('data owner (DO) commands');
  owner
    .command('register')
    .description('make keys, register with the compute server, save an identity file (0600)')
    .requiredOption('--identity <file>', 'where to save keys and token')
    .option('--server <url>', 'compute server', server)
    .option('--name <name>', 'display name', 'data owner')
    .option('--force', 'replace an existing identity file')
    .action(async (o) => {
      refuseOverwrite(o.identity, o.force);
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
    .option('--fraction-bits <f>', 'fixed-point precision', integer, 16)
    .option('--max-abs <x>', "declared largest |value| (default: the data's, rounded up)", number)
    .option('--epsilon-budget <e>', 'total epsilon DP queries may spend on this dataset (default: none allowed)', number)
    .action(async (o) => {
      const table = parseNumericCsv(readFileSync(o.csv, 'utf8'), o.ignoreColumns);
      const d = await DataOwner.fromIdentity(loadIdentity(o.identity));
      // uploadTable finds the largest |value| with a loop: a spread over millions of cells overflows the stack.
      const id = await d.uploadTable(o.name ?? o.csv, table, {
        fractionBits: o.fractionBits,
        maxAbs: o.maxAbs,
        epsilonBudget: o.epsilonBudget,
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
    .option('--force', 'replace an existing identity file')
    .action(async (o) => {
      refuseOverwrite(o.identity, o.force);
      const q = await QueryClient.register(o.server, o.name);
      saveIdentity(o.identity, q.identity());
      console.log(JSON.stringify({ id: q.id }));
    });
  client
    .command('kmeans')
    .description('run k-means on granted datasets, follow it, decrypt the result')
    .requiredOption('--identity <file>')
    .requiredOption('--datasets <a,b>', 'dataset ids, in order', list)
    .requiredOption('--k <k>', 'number of clusters', integer)
    .option('--max-iter <n>', 'iteration limit', integer, 100)
    .option('--init-indices <i,j>', 'initial records (0-based over the datasets in order)', integerList)
    .action(async (o) => {
      const q = QueryClient.fromIdentity(loadIdentity(o.identity));
      const r = await q.kmeans(
        { datasets: o.datasets, k: o.k, maxIter: o.maxIter, initIndices: o.initIndices },
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
    .option('--lo <x>', 'lower clipping bound (sum, mean)', number)
    .option('--hi <x>', 'upper clipping bound (sum, mean)', number)
    .option('--edges <a,b,...>', 'bin edges (histogram, mode)', numberList)
    .option('--mechanism <m>', 'laplace | gaussian', 'laplace')
    .option('--delta <d>', 'delta of the Gaussian mechanism', number)
    .option('--mode <m>', 'pmdp | spmdp', 'pmdp')
    .option('--blocks <b>', 'sample-and-aggregate blocks (mean)', integer)
    .action(async (o) => {
      const q = QueryClient.fromIdentity(loadIdentity(o.identity));
      const follow = { onSubmitted: (id: string) => console.error(`job ${id} submitted`), onStatus: progressReporter() };
      const r = await q.stats(
        {
          datasets: o.datasets,
          column: o.column,
          kind: o.kind,
          epsilon: o.epsilon,
          lo: o.lo,
          hi: o.hi,
          edges: o.edges,
          mechanism: o.mechanism,
          delta: o.delta,
          mode: o.mode,
          blocks: o.blocks,
        },
        follow,
      );
      console.log(JSON.stringify(r));
    });

  client
    .command('status')
    .description("a job's state, phase, progress and timings")
    .requiredOption('--identity <file>')
    .requiredOption('--job <id>')
    .action(async (o) => console.log(JSON.stringify(await QueryClient.fromIdentity(loadIdentity(o.identity)).status(o.job))));
  client
    .command('result')
    .description('the decrypted result of a finished job (k-means or DP statistics), e.g. after the command that started it was interrupted')
    .requiredOption('--identity <file>')
    .requiredOption('--job <id>')
    .action(async (o) => {
      const q = QueryClient.fromIdentity(loadIdentity(o.identity));
      const { kind } = await q.status(o.job);
      if (kind === 'kmeans') {
        const r = await q.kmeansResult(o.job);
        console.log(
          JSON.stringify({
            job: o.job,
            centroids: r.centroids,
            sizes: r.sizes,
            assignments: r.assignments,
            iterations: r.iterations,
            converged: r.converged,
          }),
        );
      } else if (kind === 'stats') {
        console.log(JSON.stringify({ job: o.job, ...(await q.statsResult(o.job)) }));
      } else {
        throw new ParameterError(`job ${o.job} is of kind ${kind}, which this command does not decode`);
      }
    });
  client
    .command('jobs')
    .description('your jobs, newest first')
    .requiredOption('--identity <file>')
    .option('--limit <n>', 'at most this many', integer, 100)
    .action(async (o) => console.log(JSON.stringify(await QueryClient.fromIdentity(loadIdentity(o.identity)).jobs(o.limit))));
}
