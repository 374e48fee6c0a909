/**
 * `ciphermine host ...`: the hosts of federated k-means (seed 003). A host registers like a query
 * client (its own BCP key), someone (a query client or a host) creates the job naming the hosts, and
 * each host joins with its CSV, which never leaves its machine. Results go to stdout as one JSON
 * line; progress goes to stderr.
 */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { parseNumericCsv } from '../clients/csv.js';
import { Host, type HostOutcome } from '../clients/host.js';
import { loadIdentity, saveIdentity } from '../clients/identity.js';
import { QueryClient } from '../clients/query-client.js';
import { ParameterError } from '../crypto/errors.js';
import { federatedKmeansResult, type FederatedKMeansSpec } from '../services/jobs/kinds/federated-kmeans-schema.js';
import { integerFlag, list, listOf, numberFlag, oneOf } from './parse.js';
import { progressReporter } from './progress.js';

const server = process.env.CIPHERMINE_SERVER ?? 'http://127.0.0.1:7400';
const print = (value: unknown) => console.log(JSON.stringify(value));
const example = (...lines: string[]) => `\nExample:\n${lines.map((l) => `  $ ${l}`).join('\n')}\n`;

/** `host:row` pairs: row `row` (0-based) of the host at position `host` of --hosts. */
function initPair(v: string): { host: number; row: number } {
  const m = /^(\d+):(\d+)$/.exec(v.trim());
  if (!m) throw new ParameterError(`--init takes host:row pairs (0-based), got '${v}'`);
  return { host: Number(m[1]), row: Number(m[2]) };
}

/** A host's outcome as JSON: exact sums and sizes as decimal strings. */
export function hostOutput(r: HostOutcome) {
  return {
    centroids: r.centroids,
    sizes: r.sizes.map(Number),
    sums: r.sums.map((s) => s.map(String)),
    assignments: r.assignments,
    iterations: r.iterations,
    converged: r.converged,
    records: r.normalizer.moments.count.toString(),
    seconds: r.seconds,
  };
}

export function addHostCommands(program: Command): void {
  const cmd = program
    .command('host')
    .description('host of federated k-means (seed 003): your records stay with you, only encrypted per-cluster sums leave');
  cmd
    .command('register')
    .description('make your BCP key and register with the compute server (a host is a party like a query client)')
    .requiredOption('--identity <file>', 'where to save key and token')
    .option('--server <url>', 'the compute server', server)
    .option('--name <name>', 'display name the servers and the other hosts show', 'host')
    .addHelpText('after', example('ciphermine host register --identity host.id --name "clinic A"'))
    .action(async (o) => {
      const q = await QueryClient.register(o.server, o.name);
      saveIdentity(o.identity, q.identity());
      print({ id: q.id });
    });
  cmd
    .command('create')
    .description('create a federated k-means job over the hosts named (any registered party may); prints the job id for the hosts')
    .requiredOption('--identity <file>', 'your identity file (query client or host)')
    .requiredOption('--hosts <id,id>', "the hosts' party ids, in order", list)
    .requiredOption('--columns <a,b>', 'the feature columns every host has', list)
    .requiredOption('--k <k>', 'number of clusters', integerFlag('--k', 2))
    .requiredOption(
      '--init <h:r,...|random>',
      'initial centres: row r (0-based) of host number h in --hosts, one per cluster; or random (each host proposes rows, the compute server draws a host per cluster)',
      (v: string) => (v === 'random' ? 'random' : listOf('--init', initPair)(v)),
    )
    .option('--max-iter <n>', 'iteration limit', integerFlag('--max-iter', 1), 100)
    .option('--tolerance <x>', 'stop when every centre moves less than this (normalised units)', numberFlag('--tolerance', 0, true), 1e-4)
    .option('--normalize <n>', 'private normalisation: none, mean (seed 003) or zscore', oneOf('--normalize', ['none', 'mean', 'zscore']), 'mean')
    .option('--fraction-bits <f>', 'fixed-point precision', integerFlag('--fraction-bits', 0, 52), 16)
    .option('--max-abs <x>', 'largest |value| any host holds', numberFlag('--max-abs', 0, true), 2 ** 20)
    .option('--host-timeout <s>', 'seconds to wait for a host before the job fails naming it', numberFlag('--host-timeout', 0, true), 300)
    .option(
      '--epsilon <e>',
      'differentially private totals: both servers add Laplace noise shares, epsilon in total over the moments and all iterations',
      numberFlag('--epsilon', 0, true),
    )
    .option('--wait', 'follow the job until it ends and print its result')
    .addHelpText('after', example('ciphermine host create --identity a.id --hosts p-1,p-2,p-3 --columns x,y --k 2 --init 0:0,2:5'))
    .action(async (o) => {
      const client = QueryClient.fromIdentity(loadIdentity(o.identity));
      const spec: FederatedKMeansSpec = {
        hosts: o.hosts,
        columns: o.columns,
        k: o.k,
        init: o.init,
        maxIter: o.maxIter,
        tolerance: o.tolerance,
        normalize: o.normalize,
        fractionBits: o.fractionBits,
        maxAbs: o.maxAbs,
        hostTimeoutSeconds: o.hostTimeout,
        ...(o.epsilon !== undefined ? { epsilon: o.epsilon } : {}),
      };
      const id = await client.submit('federated-kmeans', spec);
      console.error(`job ${id} created: each host runs  ciphermine host join --identity <its id file> --csv <its csv> --job ${id}`);
      if (!o.wait) return print({ id });
      const s = await client.waitFor(id, progressReporter());
      if (s.state === 'failed') throw new ParameterError(`job ${id} failed: ${s.error}`);
      print({ id, ...(await client.rawResult(id, federatedKmeansResult)) });
    });
  cmd
    .command('join')
    .description("take part in a federated k-means job with a local CSV (it is read here and never sent); prints this host's result")
    .requiredOption('--identity <file>', 'your identity file (host register)')
    .requiredOption('--csv <file>', 'your records, with a header row')
    .requiredOption('--job <id>', 'the job to join')
    .option('--ignore-columns <a,b>', 'columns that are not features (labels, ids)', list, [])
    .option('--quiet', 'no progress on stderr')
    .addHelpText('after', example('ciphermine host join --identity host.id --csv local.csv --ignore-columns label --job job-...'))
    .action(async (o) => {
      const host = Host.fromIdentity(loadIdentity(o.identity));
      const table = parseNumericCsv(readFileSync(o.csv, 'utf8'), o.ignoreColumns);
      const say = (m: string) => o.quiet || console.error(`host: ${m}`);
      const r = await host.join(o.job, table, { onEvent: say });
      say(`${r.converged ? 'converged' : 'stopped at the iteration limit'} after ${r.iterations} iterations`);
      print(hostOutput(r));
    });
}
