#!/usr/bin/env node
/** The `ciphermine` command. */
import { checkKeyBits } from '../crypto/params-policy.js';
import { Command } from 'commander';
import { integerFlag, list, listOf, numberFlag, oneOf } from './parse.js';
import { addServerCommands } from './servers.js';
import { addPartyCommands } from './parties.js';
import { runDemo, SHIPPED_IRIS } from './demo.js';
import { runNnDemo, SHIPPED_DIGITS } from './demo-nn.js';
import { runStatsDemo } from './demo-stats.js';
import { runFederatedDemo } from './demo-federated.js';
import { addHostCommands } from './hosts.js';

const program = new Command('ciphermine')
  .description('privacy-preserving data mining over data encrypted under many keys, on two non-colluding servers')
  .addHelpText(
    'after',
    `
Roles (each its own command group):
  key-server      the key server (KMS): holds the master key; one process, its own terminal
  compute-server  the compute server (CCS): stores uploads, runs jobs; the only server clients talk to
  dealer          optional trusted third party giving the servers correlated randomness (never data)
  owner           a data owner (DO): encrypts and uploads tables under its own key, grants clients
  client, query   a query client (QC): runs k-means and DP statistics on granted data, decrypts results
  host            a host of federated k-means (seed 003): keeps its records, sends only encrypted sums
  demo            everything above in one command, on temporary state

Example:
  $ ciphermine demo                       # k-means on iris, both servers as child processes
  $ ciphermine owner upload --help        # every command has --help with an example
`,
  )
  .showHelpAfterError()
  .enablePositionalOptions(); // so `demo stats --json` gives --json to stats, not to demo

addServerCommands(program);
addPartyCommands(program);
addHostCommands(program);

const demo = program
  .command('demo')
  .description('run k-means end to end: both servers as processes, several owners, one query client')
  .option('--data <file>', 'CSV with a header row', SHIPPED_IRIS)
  .option('--ignore-columns <a,b>', 'columns that are not features (default: label, when present)', list)
  .option('--k <k>', 'number of clusters', integerFlag('--k', 2), 3)
  .option(
    '--init-indices <i,j,...>',
    '0-based rows used as initial centroids (default: the first k distinct rows)',
    listOf('--init-indices', integerFlag('--init-indices', 0)),
  )
  .option('--max-iter <n>', 'iteration limit', integerFlag('--max-iter', 1), 100)
  .option('--key-bits <bits>', 'size of N (at least 2048)', (v: string) => checkKeyBits(integerFlag('--key-bits', 256)(v)), 2048)
  .option('--owners <n>', 'data owners the rows are split among', integerFlag('--owners', 1), 3)
  .option('--fraction-bits <f>', 'fixed-point precision', integerFlag('--fraction-bits', 0, 52), 16)
  .option('--database <url>', 'run the compute server on this PostgreSQL (postgres://...; default: SQLite in a temporary directory)')
  .option(
    '--provider <p>',
    'ot: no third party, homomorphic distances; dealer: also start a dealer, and the iterations assign on shares',
    oneOf('--provider', ['dealer', 'ot']),
    'ot',
  )
  .option('--json', 'print one JSON object as the last line')
  .option('--verbose', "show the servers' logs")
  .addHelpText('after', '\nExample:\n  $ ciphermine demo --data data/wine.csv --k 3 --ignore-columns label --json\n')
  .action(async (o) => {
    const result = await runDemo({ ...o, json: !!o.json });
    if (o.json) console.log(JSON.stringify(result));
    if (!result.agreesWithPlaintext) process.exitCode = 1;
  });

demo
  .command('stats')
  .description("seed 001's example: five owners' wages, their mean published with differential privacy")
  .option('--epsilon <e>', 'privacy loss of the query', numberFlag('--epsilon', 0, true), 1)
  .option('--mode <m>', 'pmdp (one party adds the noise) or spmdp (both servers add a share)', oneOf('--mode', ['pmdp', 'spmdp']), 'pmdp')
  .option('--blocks <b>', 'sample-and-aggregate over this many blocks', integerFlag('--blocks', 2))
  .option('--key-bits <bits>', 'size of N (at least 2048)', (v: string) => checkKeyBits(integerFlag('--key-bits', 256)(v)), 2048)
  .option('--owners <n>', 'data owners', integerFlag('--owners', 1), 5)
  .option('--per-owner <n>', 'wages per owner', integerFlag('--per-owner', 1), 40)
  .option('--budget <e>', 'privacy budget each owner sets', numberFlag('--budget', 0), 4)
  .option('--database <url>', 'run the compute server on this PostgreSQL (postgres://...; default: SQLite in a temporary directory)')
  .option('--json', 'print one JSON object as the last line')
  .addHelpText('after', '\nExample:\n  $ ciphermine demo stats --mode spmdp --blocks 4\n')
  .action(async (o) => {
    const r = await runStatsDemo({ ...o, json: !!o.json });
    if (o.json) console.log(JSON.stringify(r));
  });

demo
  .command('nn')
  .description('seed 002: owners upload secret-shared labelled data, the two servers train a neural network, the owners decrypt it jointly')
  .option('--data <file>', 'labelled CSV with a header row', SHIPPED_DIGITS)
  .option('--label <column>', 'the label column', 'label')
  .option(
    '--layers <a,b>',
    'hidden layer widths (input and output come from the data), or all widths, e.g. 64,32,10',
    listOf('--layers', integerFlag('--layers', 1)),
    [32],
  )
  .option('--no-standardise', 'scale each feature by its public range before the upload instead of standardising on the servers')
  .option('--epochs <n>', 'passes over the training rows', integerFlag('--epochs', 1), 30)
  .option('--batch <n>', 'mini-batch size', integerFlag('--batch', 1), 192)
  .option('--lr <x>', 'learning rate', numberFlag('--lr', 0, true), 1)
  .option('--owners <n>', 'data owners the training rows are split among', integerFlag('--owners', 1), 3)
  .option(
    '--provider <p>',
    'correlated randomness: dealer (a third process) or ot (the two servers alone)',
    oneOf('--provider', ['dealer', 'ot']),
    'dealer',
  )
  .option('--seed <s>', 'seeds the initial weights and the batch order', 'ciphermine')
  .option('--key-bits <bits>', 'size of N (at least 2048)', (v: string) => checkKeyBits(integerFlag('--key-bits', 256)(v)), 2048)
  .option('--verbose', "show the servers' logs")
  .option('--json', 'print one JSON object as the last line')
  .addHelpText(
    'after',
    '\nExample:\n  $ ciphermine demo nn --epochs 30 --provider dealer --json\n  $ ciphermine demo nn --data data/iris.csv --layers 8 --epochs 20 --batch 16 --lr 0.5\n',
  )
  .action(async (o) => {
    const r = await runNnDemo({ ...o, hidden: o.layers, standardise: o.standardise !== false, json: !!o.json });
    if (o.json) console.log(JSON.stringify(r));
  });

demo
  .command('federated')
  .description(
    'seed 003: hosts keep their shares of a table, the servers only add encrypted per-cluster sums; checked against plaintext Lloyd on the union',
  )
  .option('--data <file>', 'CSV with a header row', SHIPPED_IRIS)
  .option('--ignore-columns <a,b>', 'columns that are not features (default: label, when present)', list)
  .option('--k <k>', 'number of clusters', integerFlag('--k', 2), 3)
  .option(
    '--init-indices <i,j,...>',
    '0-based rows of the whole table used as initial centres (default: the first k distinct rows)',
    listOf('--init-indices', integerFlag('--init-indices', 0)),
  )
  .option('--max-iter <n>', 'iteration limit', integerFlag('--max-iter', 1), 100)
  .option('--hosts <n>', 'host processes the rows are split among', integerFlag('--hosts', 2), 3)
  .option('--normalize <n>', 'private normalisation: none, mean (seed 003) or zscore', oneOf('--normalize', ['none', 'mean', 'zscore']), 'mean')
  .option('--tolerance <x>', 'stop when every centre moves less than this (normalised units)', numberFlag('--tolerance', 0, true), 1e-4)
  .option('--key-bits <bits>', 'size of N (at least 2048)', (v: string) => checkKeyBits(integerFlag('--key-bits', 256)(v)), 2048)
  .option('--fraction-bits <f>', 'fixed-point precision', integerFlag('--fraction-bits', 0, 52), 16)
  .option('--json', 'print one JSON object as the last line')
  .option(
    '--epsilon <e>',
    'differentially private totals (the result then differs from plaintext Lloyd by the noise)',
    numberFlag('--epsilon', 0, true),
  )
  .option('--verbose', "show the servers' and hosts' logs")
  .addHelpText('after', '\nExample:\n  $ ciphermine demo federated --hosts 5 --normalize zscore --json\n')
  .action(async (o) => {
    const r = await runFederatedDemo({ ...o, json: !!o.json });
    if (o.json) console.log(JSON.stringify(r));
    if (!r.agreesWithPlaintext && o.epsilon === undefined) process.exitCode = 1;
  });

program.parseAsync().catch((e: Error & { code?: string }) => {
  console.error(`ciphermine: ${e.message}`);
  process.exit(1);
});
