/**
 * `ciphermine owner ...`, `ciphermine client ...` and `ciphermine query ...`: the data owner's (DO)
 * and query client's (QC) commands, a thin layer over the library's DataOwner and QueryClient.
 * Results go to stdout as one JSON line; progress and job ids go to stderr.
 */
import { requireCertFingerprint } from '../crypto/tls.js';
import { GRANT_SCOPES } from '../services/store/store.js';
import { requireFingerprint } from '../clients/pins.js';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { basename } from 'node:path';
import { parseNumericCsv, textColumn } from '../clients/csv.js';
import { readKeyFile, writeKeyFile } from '../crypto/keyfile.js';
import { generateIdKey } from '../crypto/id-hash.js';
import type { ModelFile } from '../clients/model-decryption.js';
import { argmax, predictScores } from '../analytics/mlp.js';
import type { Command } from 'commander';
import { ParameterError } from '../crypto/errors.js';
import { WorkerPool } from '../crypto/pool.js';
import { DataOwner } from '../clients/data-owner.js';
import { QueryClient, type FollowOptions } from '../clients/query-client.js';
import { loadIdentity, saveIdentity } from '../clients/identity.js';
import { revokeToken, rotateToken } from '../clients/tokens.js';
import { integerFlag, list, listOf, numberFlag, numberList, oneOf } from './parse.js';
import { progressReporter, uploadReporter } from './progress.js';

const server = process.env.CIPHERMINE_SERVER ?? 'http://127.0.0.1:7400';
const print = (value: unknown) => console.log(JSON.stringify(value));

/** Registration makes new keys: an existing identity file is never overwritten by accident. */
function refuseOverwrite(path: string, force: boolean | undefined): void {
  if (!existsSync(path)) return;
  if (!force) {
    throw new ParameterError(
      `${path} already holds an identity; choose another file, or pass --force to replace it (its keys, and access to its datasets, are lost)`,
    );
  }
  console.error(`warning: replacing ${path}; the identity it held, its keys and its access to its datasets and results are lost`);
}

const example = (...lines: string[]) => `\nExample:\n${lines.map((l) => `  $ ${l}`).join('\n')}\n`;
const owner = async (path: string) => DataOwner.fromIdentity(loadIdentity(path));
const client = (path: string) => QueryClient.fromIdentity(loadIdentity(path));
const follow = (): FollowOptions => ({ onSubmitted: (id) => console.error(`job ${id} submitted`), onStatus: progressReporter() });

const IDENTITY_HELP = 'identity file made by register (holds your secret keys; keep it private)';

export function addPartyCommands(program: Command): void {
  addOwnerCommands(program);
  addClientCommands(program);
  addQueryCommands(program);
  addTokenCommands(program);
  addTrainCommands(program);
}

function addTrainCommands(program: Command): void {
  program
    .command('predict')
    .description('apply a released model (owner decrypt-model) to a local CSV: prints the prediction of every row, and the accuracy with --label')
    .requiredOption('--model <file>', 'the model JSON')
    .requiredOption('--csv <file>', "rows with the model's feature columns (others are ignored)")
    .option('--label <column>', 'compare with this column and print the accuracy')
    .action((o) => {
      const model = JSON.parse(readFileSync(o.model, 'utf8')) as ModelFile;
      if (model.format !== 'ciphermine-mlp/v1') throw new ParameterError(`${o.model} is not a Ciphermine model`);
      const table = parseNumericCsv(readFileSync(o.csv, 'utf8'));
      const at = model.features.map((f) => {
        const j = table.columns.indexOf(f);
        if (j < 0) throw new ParameterError(`${o.csv} has no column '${f}', which the model needs`);
        return j;
      });
      const scores = predictScores(
        model,
        table.rows.map((r) => at.map((j) => r[j]!)),
      );
      const predictions = scores.map((s) => (model.task === 'classification' ? model.classes![argmax(s)]! : s[0]!));
      const label = o.label === undefined ? -1 : table.columns.indexOf(o.label);
      if (o.label !== undefined && label < 0) throw new ParameterError(`${o.csv} has no column '${o.label}'`);
      const accuracy = label < 0 ? undefined : predictions.filter((p, i) => p === table.rows[i]![label]).length / predictions.length;
      print({ predictions, accuracy });
    });
}

function addTokenCommands(program: Command): void {
  const cmd = program.command('token').description("your bearer token at the compute server (an owner's or a client's)");
  cmd
    .command('rotate')
    .description('replace the token in the identity file; the old one is refused (401) from now on')
    .requiredOption('--identity <file>', IDENTITY_HELP)
    .addHelpText('after', example('ciphermine token rotate --identity .ciphermine/alice.id'))
    .action(async (o) => {
      saveIdentity(o.identity, await rotateToken(loadIdentity(o.identity)));
      print({ rotated: true });
    });
  cmd
    .command('revoke')
    .description("revoke the identity's token with no replacement (a leaked identity file): every later request with it is refused (401)")
    .requiredOption('--identity <file>', IDENTITY_HELP)
    .addHelpText('after', example('ciphermine token revoke --identity .ciphermine/alice.id'))
    .action(async (o) => {
      await revokeToken(loadIdentity(o.identity));
      print({ revoked: true });
    });
}

const EXPECT_CERT_HELP =
  "refuse unless the compute server's TLS certificate has this SHA-256 fingerprint (it prints it at start); without it the certificate seen now is pinned";
const EXPECT_PARAMS_HELP = 'refuse unless the public parameters have this fingerprint (the key server prints it at start; compare it out of band)';

function addOwnerCommands(program: Command): void {
  const cmd = program.command('owner').description('data owner (DO): encrypt and upload tables under your own key, decide who may use them');
  cmd
    .command('register')
    .description('make your BCP and X25519 keys, register with the compute server, save them in an identity file (mode 0600)')
    .requiredOption('--identity <file>', 'where to save keys and token (refused if it exists)')
    .option('--server <url>', 'the compute server', server)
    .option('--name <name>', 'display name the servers show', 'data owner')
    .option('--force', 'replace an existing identity file (its keys, and access to its datasets, are lost)')
    .option('--expect-params <fingerprint>', EXPECT_PARAMS_HELP, requireFingerprint)
    .option('--expect-cert <sha256>', EXPECT_CERT_HELP, (v: string) => requireCertFingerprint(v))
    .addHelpText('after', example('ciphermine owner register --identity .ciphermine/alice.id --name "Hospital A"'))
    .action(async (o) => {
      refuseOverwrite(o.identity, o.force);
      const d = await DataOwner.register(o.server, o.name, { expectParams: o.expectParams, expectCert: o.expectCert });
      saveIdentity(o.identity, d.identity());
      print({ id: d.id });
    });
  cmd
    .command('upload')
    .description('encrypt a CSV file under your key, wrap it in AES-GCM for the compute server, upload it in chunks (any size)')
    .requiredOption('--identity <file>', IDENTITY_HELP)
    .requiredOption('--csv <file>', 'a header row, then decimal numbers (no hex, no thousands separators)')
    .option('--name <name>', "dataset name shown to clients you grant (default: the file's base name)")
    .option('--ignore-columns <a,b>', 'columns to leave out (labels, ids)', list, [])
    .option('--fraction-bits <f>', 'fixed-point precision in bits', integerFlag('--fraction-bits', 0, 52), 16)
    .option('--max-abs <x>', "declared largest |value|, which jobs may learn (default: the data's, rounded up)", numberFlag('--max-abs', 0, true))
    .option('--epsilon-budget <e>', 'total epsilon DP queries may spend on this dataset (default: none allowed)', numberFlag('--epsilon-budget', 0))
    .option(
      '--min-cluster-size <n>',
      'k-means results with a cluster smaller than this are not released (default 5)',
      integerFlag('--min-cluster-size', 1),
    )
    .option(
      '--max-delta <d>',
      'the largest delta one Gaussian DP query may spend on this dataset (default 1e-6; 0 allows no Gaussian queries)',
      numberFlag('--max-delta', 0),
    )
    .option(
      '--delta-budget <d>',
      'the total delta all Gaussian DP queries together may spend on this dataset (default 1e-5)',
      numberFlag('--delta-budget', 0),
    )
    .option(
      '--for <purpose>',
      "analytics (k-means and DP statistics; the default), training (neural networks: secret-shared values) or prediction (secret-shared, no label: for a client's predict jobs)",
      oneOf('--for', ['analytics', 'training', 'prediction']),
      'analytics',
    )
    .option('--label <column>', 'training: the label column (a part of a vertical table without the labels has none)')
    .option(
      '--id-column <column>',
      'training, vertical partitioning: the column that identifies each record across owners (only its keyed hash is sent)',
    )
    .option('--id-key <file>', 'training, vertical partitioning: the 32-byte key the owners share (ciphermine owner id-key)')
    .option('--classes <a,b>', "training: the classes in one-hot order, the same at every owner (default: this file's labels, sorted)", numberList)
    .option('--task <t>', 'training: classification (the default) or regression', oneOf('--task', ['classification', 'regression']), 'classification')
    .option('--resume <dataset>', 'finish an interrupted upload of this dataset from the same file (sent chunks are skipped)')
    .option('--chunk-rows <n>', 'rows per uploaded chunk (default: as many as fit 8 MiB of ciphertexts)', integerFlag('--chunk-rows', 1))
    .addHelpText(
      'after',
      example(
        'ciphermine owner upload --identity .ciphermine/alice.id --csv data/iris.csv --ignore-columns label --epsilon-budget 2',
        'ciphermine owner upload --identity .ciphermine/alice.id --csv big.csv --resume ds-...   # after an interruption',
      ),
    )
    .action(async (o) => {
      const d = await owner(o.identity);
      const pool = new WorkerPool();
      try {
        const opts = {
          name: o.name,
          ignoreColumns: o.ignoreColumns,
          fractionBits: o.fractionBits,
          maxAbs: o.maxAbs,
          epsilonBudget: o.epsilonBudget,
          minClusterSize: o.minClusterSize,
          maxDelta: o.maxDelta,
          deltaBudget: o.deltaBudget,
          chunkRows: o.chunkRows,
          pool,
          onProgress: uploadReporter(),
        };
        if (o.for === 'training') {
          if (!o.label && !o.idColumn) throw new ParameterError('a training upload names its label column (--label)');
          if (!!o.idColumn !== !!o.idKey) throw new ParameterError('a part of a vertical table gives both --id-column and --id-key');
          if (o.resume) throw new ParameterError('a training upload cannot be resumed: upload it again');
          const text = readFileSync(o.csv, 'utf8');
          const table = parseNumericCsv(text, [...(o.ignoreColumns ?? []), ...(o.idColumn ? [o.idColumn] : [])]);
          const ids = o.idColumn ? { values: textColumn(text, o.idColumn), key: readKeyFile(o.idKey) } : undefined;
          const id = await d.uploadForTraining(o.name ?? basename(o.csv), table, { ...opts, label: o.label, classes: o.classes, task: o.task, ids });
          print({ dataset: id, rows: table.rows.length, columns: table.columns });
        } else if (o.for === 'prediction') {
          if (o.resume) throw new ParameterError('a prediction upload cannot be resumed: upload it again');
          const table = parseNumericCsv(readFileSync(o.csv, 'utf8'), o.ignoreColumns);
          const id = await d.uploadForPrediction(o.name ?? basename(o.csv), table, opts);
          print({ dataset: id, rows: table.rows.length, columns: table.columns });
        } else print(o.resume ? await d.resumeCsvFile(o.resume, o.csv, opts) : await d.uploadCsvFile(o.csv, opts));
      } finally {
        await pool.close();
      }
    });
  cmd
    .command('id-key')
    .description(
      'make the 32-byte key owners of a vertically partitioned table share to hash their id column (written 0600; pass it to the others out of band)',
    )
    .requiredOption('--out <file>', 'where to write the key')
    .option('--force', 'replace an existing key file')
    .addHelpText('after', example('ciphermine owner id-key --out ids.key'))
    .action((o) => {
      refuseOverwrite(o.out, o.force);
      writeKeyFile(o.out, generateIdKey());
      print({ idKey: o.out });
    });
  cmd
    .command('decrypt-model')
    .description(
      "take part in the joint decryption of a model trained on your data (every owner of the model runs it; it waits for the others' parts)",
    )
    .requiredOption('--identity <file>', IDENTITY_HELP)
    .requiredOption('--job <id>', 'the training job')
    .requiredOption('--out <file>', 'where to write the model (JSON)')
    .option('--wait <seconds>', "how long to wait for the other owners' parts", integerFlag('--wait', 0), 600)
    .addHelpText('after', example('ciphermine owner decrypt-model --identity .ciphermine/alice.id --job job-... --out model.json'))
    .action(async (o) => {
      const model = await (await owner(o.identity)).decryptModel(o.job, o.wait * 1000);
      writeFileSync(o.out, JSON.stringify(model));
      print({ model: o.out, layers: model.layers });
    });
  cmd
    .command('datasets')
    .description('your datasets: name, columns, rows, upload state, privacy budget spent, and the clients granted')
    .requiredOption('--identity <file>', IDENTITY_HELP)
    .addHelpText('after', example('ciphermine owner datasets --identity .ciphermine/alice.id'))
    .action(async (o) => {
      const d = await owner(o.identity);
      print(await Promise.all((await d.datasets()).map((ds) => d.dataset(ds.id))));
    });
  cmd
    .command('grant')
    .description('let a query client run jobs on one of your datasets')
    .requiredOption('--identity <file>', IDENTITY_HELP)
    .requiredOption('--dataset <id>', 'your dataset (printed by upload, listed by owner datasets)')
    .requiredOption('--client <id>', "the query client's id (printed by its client register)")
    .option(
      '--scope <kinds>',
      'the job kinds allowed, comma-separated: kmeans (exact centroids and assignments, not DP), stats (DP statistics), train, predict, model (the trained model itself, to the client, under its key); granting again replaces them',
      listOf('--scope', oneOf('--scope', GRANT_SCOPES)),
      ['kmeans', 'stats'],
    )
    .addHelpText(
      'after',
      example(
        'ciphermine owner grant --identity .ciphermine/alice.id --dataset ds-... --client qc-... --scope stats   # DP statistics only',
        'ciphermine owner grant --identity .ciphermine/alice.id --dataset ds-... --client qc-... --scope kmeans,stats',
      ),
    )
    .action(async (o) => {
      await (await owner(o.identity)).grant(o.dataset, o.client, o.scope);
      print({ granted: o.client, dataset: o.dataset, scopes: o.scope });
    });
  cmd
    .command('revoke')
    .description("withdraw a client's grant: its later jobs may not use the dataset (jobs already running finish)")
    .requiredOption('--identity <file>', IDENTITY_HELP)
    .requiredOption('--dataset <id>', 'your dataset')
    .requiredOption('--client <id>', 'the query client to withdraw')
    .addHelpText('after', example('ciphermine owner revoke --identity .ciphermine/alice.id --dataset ds-... --client qc-...'))
    .action(async (o) => {
      await (await owner(o.identity)).revoke(o.dataset, o.client);
      print({ revoked: o.client, dataset: o.dataset });
    });
  cmd
    .command('delete')
    .description('delete a dataset (complete or interrupted) with its chunks and grants; refused while a job reads it')
    .requiredOption('--identity <file>', IDENTITY_HELP)
    .requiredOption('--dataset <id>', 'your dataset')
    .addHelpText('after', example('ciphermine owner delete --identity .ciphermine/alice.id --dataset ds-...'))
    .action(async (o) => {
      await (await owner(o.identity)).deleteDataset(o.dataset);
      print({ deleted: o.dataset });
    });
}

function addClientCommands(program: Command): void {
  const cmd = program.command('client').description('query client (QC): run jobs on datasets granted to you; only you can decrypt the results');
  cmd
    .command('register')
    .description('make your BCP key, register with the compute server, save it in an identity file (mode 0600)')
    .requiredOption('--identity <file>', 'where to save key and token (refused if it exists)')
    .option('--server <url>', 'the compute server', server)
    .option('--name <name>', 'display name the servers show', 'query client')
    .option('--force', 'replace an existing identity file (its key, and the results of its jobs, are lost)')
    .option('--expect-params <fingerprint>', EXPECT_PARAMS_HELP, requireFingerprint)
    .option('--expect-cert <sha256>', EXPECT_CERT_HELP, (v: string) => requireCertFingerprint(v))
    .addHelpText('after', example('ciphermine client register --identity .ciphermine/analyst.id'))
    .action(async (o) => {
      refuseOverwrite(o.identity, o.force);
      const q = await QueryClient.register(o.server, o.name, { expectParams: o.expectParams, expectCert: o.expectCert });
      saveIdentity(o.identity, q.identity());
      print({ id: q.id });
    });
  cmd
    .command('datasets')
    .description('the datasets granted to you: id, name, columns, declared range (row counts are not shown to clients)')
    .requiredOption('--identity <file>', IDENTITY_HELP)
    .addHelpText('after', example('ciphermine client datasets --identity .ciphermine/analyst.id'))
    .action(async (o) => print(await client(o.identity).datasets()));
  cmd
    .command('train')
    .description(
      'train a neural network (seed 002) on granted training uploads: the two servers train on secret shares; the model is released to the data owners, who decrypt it together (owner decrypt-model)',
    )
    .requiredOption('--identity <file>', IDENTITY_HELP)
    .requiredOption('--datasets <a,b>', 'granted training uploads with the same columns and classes', list)
    .requiredOption('--layers <a,b,c>', 'widths from input to output, e.g. 64,32,10', listOf('--layers', integerFlag('--layers', 1)))
    .option('--epochs <n>', 'passes over the data', integerFlag('--epochs', 1), 10)
    .option('--batch <n>', 'mini-batch size', integerFlag('--batch', 1), 64)
    .option('--lr <x>', 'learning rate', numberFlag('--lr', 0, true), 0.5)
    .option('--loss <l>', 'softmax (classification) or mse; default by the task', oneOf('--loss', ['softmax', 'mse']))
    .option('--standardise', 'standardise every feature on the servers first (global mean and deviation, never opened; they leave with the model)')
    .option(
      '--provider <p>',
      "the engine's correlated randomness: dealer (the servers' dealer) or ot (the two servers alone); default: the servers' setting",
      oneOf('--provider', ['dealer', 'ot']),
    )
    .option('--seed <s>', 'seeds the initial weights and the batch order', 'ciphermine')
    .addHelpText('after', example('ciphermine client train --identity .ciphermine/analyst.id --datasets ds-...,ds-... --layers 64,32,10 --epochs 30'))
    .action(async (o) => {
      const r = await client(o.identity).train(
        {
          datasets: o.datasets,
          layers: o.layers,
          epochs: o.epochs,
          batchSize: o.batch,
          learningRate: o.lr,
          loss: o.loss,
          seed: o.seed,
          standardise: !!o.standardise,
          provider: o.provider,
        },
        follow(),
      );
      const { model: _model, jointKey: _key, losses: _losses, ...summary } = r;
      print(summary);
    });
  cmd
    .command('predict')
    .description(
      'predict with a model you trained, still in shares at the servers, on granted secret-shared uploads (owner upload --for prediction); only you receive the predictions',
    )
    .requiredOption('--identity <file>', IDENTITY_HELP)
    .requiredOption('--model <job>', 'the train job whose model is used')
    .requiredOption('--datasets <a,b>', "granted uploads with the model's feature columns (scope predict)", list)
    .addHelpText('after', example('ciphermine client predict --identity .ciphermine/analyst.id --model job-... --datasets ds-...'))
    .action(async (o) => print(await client(o.identity).predict({ model: o.model, datasets: o.datasets }, follow())));
  cmd
    .command('release-model')
    .description(
      'receive a model you trained under your own key and open it (every owner of the training data must have granted you scope model); writes the same JSON as owner decrypt-model',
    )
    .requiredOption('--identity <file>', IDENTITY_HELP)
    .requiredOption('--model <job>', 'the train job whose model is released')
    .requiredOption('--out <file>', 'where to write the model (JSON)')
    .addHelpText('after', example('ciphermine client release-model --identity .ciphermine/analyst.id --model job-... --out model.json'))
    .action(async (o) => {
      const { releaseJob, ...model } = await client(o.identity).releaseModel(o.model, follow());
      writeFileSync(o.out, JSON.stringify(model), { mode: 0o600 });
      print({ model: o.out, job: releaseJob, layers: model.layers });
    });
  cmd
    .command('kmeans')
    .description('run exact k-means on granted datasets: prints the job id at once, follows it (through server restarts), decrypts the result')
    .requiredOption('--identity <file>', IDENTITY_HELP)
    .requiredOption('--datasets <a,b>', 'granted dataset ids with the same columns, in order', list)
    .requiredOption('--k <k>', 'number of clusters', integerFlag('--k', 2))
    .option('--max-iter <n>', 'iteration limit', integerFlag('--max-iter', 1), 100)
    .option(
      '--init-indices <i,j>',
      'initial centroids: record numbers, 0-based over the datasets in order (default: the first k)',
      listOf('--init-indices', integerFlag('--init-indices', 0)),
    )
    .option(
      '--multiplicative-comparison',
      "INSECURE opt-in: the seed's multiplicative SDC instead of the hidden argmin; the key server then reads " +
        'log2 |Delta| of every distance comparison to within about one bit (docs/leakage.md)',
    )
    .addHelpText('after', example('ciphermine client kmeans --identity .ciphermine/analyst.id --datasets ds-...,ds-... --k 3'))
    .action(async (o) => {
      const r = await client(o.identity).kmeans(
        {
          datasets: o.datasets,
          k: o.k,
          maxIter: o.maxIter,
          initIndices: o.initIndices,
          comparison: o.multiplicativeComparison ? 'multiplicative' : 'hidden',
        },
        follow(),
      );
      print(kmeansOutput(r.jobId, r));
    });
  cmd
    .command('status')
    .description("a job's state, phase, progress and timings")
    .requiredOption('--identity <file>', IDENTITY_HELP)
    .requiredOption('--job <id>', 'a job id (printed when the job was submitted, listed by client jobs)')
    .addHelpText('after', example('ciphermine client status --identity .ciphermine/analyst.id --job job-...'))
    .action(async (o) => print(await client(o.identity).status(o.job)));
  cmd
    .command('result')
    .description('the decrypted result of a finished job (k-means or DP statistics), any time later; waits while it runs')
    .requiredOption('--identity <file>', IDENTITY_HELP)
    .requiredOption('--job <id>', 'a job id (printed when the job was submitted, listed by client jobs)')
    .addHelpText('after', example('ciphermine client result --identity .ciphermine/analyst.id --job job-...'))
    .action(async (o) => {
      const q = client(o.identity);
      const s = await q.waitFor(o.job, progressReporter());
      if (s.kind === 'kmeans') print(kmeansOutput(o.job, await q.kmeansResult(o.job)));
      else if (s.kind === 'stats') print({ job: o.job, ...(await q.statsResult(o.job)) });
      else throw new ParameterError(`job ${o.job} is of kind ${s.kind}, which this command does not decode`);
    });
  cmd
    .command('jobs')
    .description('your jobs, newest first, with their state')
    .requiredOption('--identity <file>', IDENTITY_HELP)
    .option('--limit <n>', 'at most this many', integerFlag('--limit', 1, 1000), 100)
    .addHelpText('after', example('ciphermine client jobs --identity .ciphermine/analyst.id --limit 10'))
    .action(async (o) => print(await client(o.identity).jobs(o.limit)));
}

function kmeansOutput(job: string, r: { centroids: number[][]; sizes: number[]; assignments: number[]; iterations: number; converged: boolean }) {
  return { job, centroids: r.centroids, sizes: r.sizes, assignments: r.assignments, iterations: r.iterations, converged: r.converged };
}

function addQueryCommands(program: Command): void {
  const query = program.command('query').description('differentially private queries (query client)');
  query
    .command('stats')
    .description('count, sum, mean, histogram or mode of one column of granted datasets, published with differential privacy')
    .requiredOption('--identity <file>', IDENTITY_HELP)
    .requiredOption('--datasets <a,b>', 'granted dataset ids', list)
    .requiredOption('--column <name>', 'the column to aggregate (present in every dataset)')
    .requiredOption('--kind <kind>', 'count | sum | mean | histogram | mode', oneOf('--kind', ['count', 'sum', 'mean', 'histogram', 'mode']))
    .requiredOption('--epsilon <e>', "privacy loss charged to every dataset's budget", numberFlag('--epsilon', 0, true))
    .option('--lo <x>', 'lower clipping bound (sum, mean)', numberFlag('--lo'))
    .option('--hi <x>', 'upper clipping bound (sum, mean)', numberFlag('--hi'))
    .option('--edges <a,b,...>', 'increasing bin edges (histogram, mode)', listOf('--edges', numberFlag('--edges')))
    .option('--mechanism <m>', 'laplace | gaussian', oneOf('--mechanism', ['laplace', 'gaussian']), 'laplace')
    .option('--delta <d>', 'delta of the Gaussian mechanism, in (0, 1)', numberFlag('--delta', 0, true))
    .option('--mode <m>', 'pmdp (the compute server adds the noise) | spmdp (both servers add a share)', oneOf('--mode', ['pmdp', 'spmdp']), 'pmdp')
    .option('--blocks <b>', 'sample-and-aggregate over this many blocks (mean; with --block-size)', integerFlag('--blocks', 2))
    .option(
      '--block-size <s>',
      'sample-and-aggregate: records per block, public (the released mean is over a sample of blocks * size records; with fewer records, empty slots count as 0)',
      integerFlag('--block-size', 1),
    )
    .addHelpText(
      'after',
      example(
        'ciphermine query stats --identity .ciphermine/analyst.id --datasets ds-... --column petal_length --kind mean --lo 0 --hi 10 --epsilon 0.5',
      ),
    )
    .action(async (o) => {
      const spec = {
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
        blockSize: o.blockSize,
      };
      print(await client(o.identity).stats(spec, follow()));
    });
}
