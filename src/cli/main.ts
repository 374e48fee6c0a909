#!/usr/bin/env node
/** The `ciphermine` command. */
import { Command, InvalidArgumentError } from 'commander';
import { integer, integerList, list, number } from './parse.js';
import { addServerCommands } from './servers.js';
import { addPartyCommands } from './parties.js';
import { runDemo, SHIPPED_IRIS } from './demo.js';
import { runStatsDemo } from './demo-stats.js';

const int = integer;
const intList = integerList;

const program = new Command('ciphermine')
  .description('privacy-preserving data mining over data encrypted under many keys, on two non-colluding servers')
  .showHelpAfterError()
  .enablePositionalOptions(); // so `demo stats --json` gives --json to stats, not to demo

addServerCommands(program);
addPartyCommands(program);

const demo = program
  .command('demo')
  .description('run k-means end to end: both servers as processes, several owners, one query client')
  .option('--data <file>', 'CSV with a header row', SHIPPED_IRIS)
  .option('--ignore-columns <a,b>', 'columns that are not features (default: label, when present)', list)
  .option('--k <k>', 'number of clusters', int, 3)
  .option('--init-indices <i,j,...>', '0-based rows used as initial centroids (default: the first k distinct rows)', intList)
  .option('--max-iter <n>', 'iteration limit', int, 100)
  .option('--key-bits <bits>', 'size of N', int, 2048)
  .option('--owners <n>', 'data owners the rows are split among', int, 3)
  .option('--fraction-bits <f>', 'fixed-point precision', int, 16)
  .option('--database <url>', 'run the compute server on this PostgreSQL (postgres://...; default: SQLite in a temporary directory)')
  .option('--json', 'print one JSON object as the last line')
  .option('--verbose', "show the servers' logs")
  .action(async (o) => {
    const result = await runDemo({ ...o, json: !!o.json });
    if (o.json) console.log(JSON.stringify(result));
    if (!result.agreesWithPlaintext) process.exitCode = 1;
  });

demo
  .command('stats')
  .description("seed 001's example: five owners' wages, their mean published with differential privacy")
  .option('--epsilon <e>', 'privacy loss of the query', number, 1)
  .option('--mode <m>', 'pmdp (one party adds the noise) or spmdp (both servers add a share)', 'pmdp')
  .option('--blocks <b>', 'sample-and-aggregate over this many blocks', int)
  .option('--key-bits <bits>', 'size of N', int, 2048)
  .option('--owners <n>', 'data owners', int, 5)
  .option('--per-owner <n>', 'wages per owner', int, 40)
  .option('--budget <e>', 'privacy budget each owner sets', number, 4)
  .option('--database <url>', 'run the compute server on this PostgreSQL (postgres://...; default: SQLite in a temporary directory)')
  .option('--json', 'print one JSON object as the last line')
  .action(async (o) => {
    if (o.mode !== 'pmdp' && o.mode !== 'spmdp') throw new InvalidArgumentError('--mode is pmdp or spmdp');
    const r = await runStatsDemo({ ...o, json: !!o.json });
    if (o.json) console.log(JSON.stringify(r));
  });

program.parseAsync().catch((e: Error & { code?: string }) => {
  console.error(`ciphermine: ${e.message}`);
  process.exit(1);
});
