/**
 * The `ciphermine` command as a user runs it, against real servers: registration never overwrites
 * an identity, bad numbers and the wrong kind of identity get clear errors, and a job's result can
 * be fetched again by id.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { startServices, type Services } from './services-harness.js';
import { DataOwner } from '../../src/clients/data-owner.js';
import { QueryClient } from '../../src/clients/query-client.js';
import { RemoteError } from '../../src/protocols/index.js';
import { withDatasetContext, withDatasetsContext } from '../../src/services/dataset-reader.js';
import type { DatasetRow } from '../../src/services/store/index.js';
import { ComputeServerApi } from '../../src/clients/api.js';
import { loadIdentity } from '../../src/clients/identity.js';

const main = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

describe('ciphermine CLI', () => {
  let s: Services;
  const cli = (...args: string[]) =>
    promisify(execFile)(process.execPath, [main, ...args], { env: { ...process.env, CIPHERMINE_SERVER: s.cs.url }, timeout: 60_000 });
  const fails = (args: string[], re: RegExp) =>
    assert.rejects(cli(...args), (e: Error & { stderr?: string }) => re.test(e.stderr ?? '') || assert.fail(e.stderr));
  before(async () => {
    s = await startServices();
  });
  after(() => s.close());

  it('registers, uploads, runs k-means, and fetches the result again by job id', async () => {
    const owner = join(s.dir, 'owner.id');
    const analyst = join(s.dir, 'analyst.id');
    const csv = join(s.dir, 'points.csv');
    writeFileSync(csv, 'x,y\n0,0\n0,1\n10,10\n10,11\n');
    await cli('owner', 'register', '--identity', owner);
    const { id: clientId } = JSON.parse((await cli('client', 'register', '--identity', analyst)).stdout);
    await fails(['owner', 'register', '--identity', owner], /already holds an identity/);
    const { dataset } = JSON.parse((await cli('owner', 'upload', '--identity', owner, '--csv', csv, '--min-cluster-size', '1')).stdout);
    await cli('owner', 'grant', '--identity', owner, '--dataset', dataset, '--client', clientId);
    await fails(
      ['client', 'kmeans', '--identity', analyst, '--datasets', dataset, '--k', 'abc'],
      /--k must be a whole number of at least 2, got 'abc'/,
    );
    await fails(['owner', 'upload', '--identity', analyst, '--csv', csv], /query client's; data owner commands need a data owner's identity/);
    const run = await cli('client', 'kmeans', '--identity', analyst, '--datasets', dataset, '--k', '2', '--init-indices', '0,2');
    assert.match(run.stderr, /job job-[0-9a-f-]+ submitted/);
    const first = JSON.parse(run.stdout);
    assert.deepEqual(first.sizes, [2, 2]);
    const again = JSON.parse((await cli('client', 'result', '--identity', analyst, '--job', first.job)).stdout);
    assert.deepEqual(again, first);
    const jobs = JSON.parse((await cli('client', 'jobs', '--identity', analyst)).stdout);
    assert.equal(jobs[0].id, first.job);
  });

  it('refuses each bad flag with a message naming it', async () => {
    const id = join(s.dir, 'flags.id');
    await cli('client', 'register', '--identity', id);
    const kmeans = ['client', 'kmeans', '--identity', id, '--datasets', 'ds-x'];
    await fails([...kmeans, '--k', 'abc'], /--k must be a whole number of at least 2, got 'abc'/);
    await fails([...kmeans, '--k', '1'], /--k must be a whole number of at least 2, got '1'/);
    await fails([...kmeans, '--k', '3', '--init-indices', '0,x'], /--init-indices must be a whole number of at least 0, got 'x'/);
    const stats = ['query', 'stats', '--identity', id, '--datasets', 'ds-x', '--column', 'c'];
    await fails([...stats, '--kind', 'mean', '--epsilon', '1', '--lo', 'abc'], /--lo must be a decimal number, got 'abc'/);
    await fails([...stats, '--kind', 'histogram', '--epsilon', '1', '--edges', '1,x'], /--edges must be a decimal number, got 'x'/);
    await fails([...stats, '--kind', 'median', '--epsilon', '1'], /--kind must be one of count, sum, mean, histogram, mode, got 'median'/);
    await fails([...stats, '--kind', 'sum', '--epsilon', '0'], /--epsilon must be a decimal number above 0, got '0'/);
    const owner = join(s.dir, 'flags-owner.id');
    await cli('owner', 'register', '--identity', owner);
    await fails(
      ['owner', 'upload', '--identity', owner, '--csv', 'x.csv', '--epsilon-budget', '-1'],
      /--epsilon-budget must be a decimal number of at least 0, got '-1'/,
    );
    const hex = join(s.dir, 'hex.csv');
    writeFileSync(hex, 'x,y\n1,2\n3,0x10\n');
    await fails(['owner', 'upload', '--identity', owner, '--csv', hex], /line 3, column y: '0x10' is not a finite number/);
    const thousands = join(s.dir, 'thousands.csv');
    writeFileSync(thousands, 'x,y\n1,"1,000"\n');
    await fails(['owner', 'upload', '--identity', owner, '--csv', thousands], /line 2, column y: '1,000' is not a finite number/);
  });

  it('uploads 1,707 x 30 through the CLI with progress, resumes an interrupted upload, revokes and deletes', async () => {
    const ownerId = join(s.dir, 'wide-owner.id');
    const analystId = join(s.dir, 'wide-analyst.id');
    await cli('owner', 'register', '--identity', ownerId);
    const { id: clientId } = JSON.parse((await cli('client', 'register', '--identity', analystId)).stdout);
    const csv = join(s.dir, 'wide.csv');
    const header = Array.from({ length: 30 }, (_, j) => `c${j}`).join(',');
    const rows = Array.from({ length: 1707 }, (_, i) => Array.from({ length: 30 }, (_, j) => ((i * 31 + j * 17) % 2000) / 100 - 10).join(','));
    writeFileSync(csv, `${header}\n${rows.join('\n')}\n`);
    const up = await cli('owner', 'upload', '--identity', ownerId, '--csv', csv, '--name', 'wide');
    const wide = JSON.parse(up.stdout);
    assert.equal(wide.rows, 1707);
    assert.match(up.stderr, /rows encrypted and sent 1707\/1707/);

    // An upload that stops after its first chunk (the process died, say) is finished by --resume.
    const owner = await DataOwner.fromIdentity(loadIdentity(ownerId));
    let stopped = '';
    await assert.rejects(
      owner.uploadCsvFile(csv, {
        chunkRows: 500,
        onProgress: () => {
          throw new Error('interrupted');
        },
      }),
      /interrupted/,
    );
    for (const d of await owner.datasets()) if (d.state === 'uploading') stopped = d.id;
    assert.ok(stopped, 'the interrupted dataset is listed as uploading');
    const resumed = await cli('owner', 'upload', '--identity', ownerId, '--csv', csv, '--resume', stopped, '--chunk-rows', '500');
    assert.equal(JSON.parse(resumed.stdout).dataset, stopped);
    const listed = JSON.parse((await cli('owner', 'datasets', '--identity', ownerId)).stdout) as Array<{
      id: string;
      state: string;
      chunks: unknown[];
    }>;
    assert.deepEqual(
      listed.map((d) => [d.id, d.state]),
      [
        [wide.dataset, 'ready'],
        [stopped, 'ready'],
      ],
    );
    assert.equal(listed[1]!.chunks.length, 4, 'the resumed upload kept its 500-row chunks');

    await cli('owner', 'grant', '--identity', ownerId, '--dataset', stopped, '--client', clientId);
    assert.equal(JSON.parse((await cli('client', 'datasets', '--identity', analystId)).stdout).length, 1);
    await cli('owner', 'revoke', '--identity', ownerId, '--dataset', stopped, '--client', clientId);
    assert.deepEqual(JSON.parse((await cli('client', 'datasets', '--identity', analystId)).stdout), []);
    await fails(['client', 'kmeans', '--identity', analystId, '--datasets', stopped, '--k', '2'], /not granted|may not use/);
    await fails(['owner', 'revoke', '--identity', ownerId, '--dataset', stopped, '--client', clientId], /is not granted to/);
    await cli('owner', 'delete', '--identity', ownerId, '--dataset', stopped);
    await cli('owner', 'delete', '--identity', ownerId, '--dataset', wide.dataset);
    assert.deepEqual(JSON.parse((await cli('owner', 'datasets', '--identity', ownerId)).stdout), []);
    await fails(['owner', 'delete', '--identity', ownerId, '--dataset', stopped], /no dataset/);
  });

  it('the API refuses duplicate columns, and a range error names the dataset and column', async () => {
    const owner = await DataOwner.register(s.cs.url, 'careless owner');
    const api = new ComputeServerApi(s.cs.url, owner.identity().token);
    await assert.rejects(
      api.request('POST', '/v1/datasets', { name: 'd', columns: ['a', 'a'], fractionBits: 16, maxAbs: 1, rows: 1 }),
      /column names must be distinct/,
    );
    // The key server reports the position of a value that overflowed its slot; the job names it.
    // (Whether an out-of-range value overflows depends on its blinding, so this is checked on the
    // error itself rather than on a lying upload, which is caught only with high probability.)
    const d = { id: 'ds-1', name: 'readings', columns: ['a', 'b', 'c'], maxAbs: 1 } as DatasetRow;
    const fromKeyServer = new RemoteError('ERR_VALUE_RANGE', 'value 4 of the batch exceeds its declared range', 400, { index: 4 });
    const named = withDatasetContext(fromKeyServer, d, { firstValue: 3 }) as Error;
    assert.match(named.message, /^dataset 'readings' \(ds-1\), column 'b': a value exceeds the declared range ±1/);
    assert.match((withDatasetsContext(fromKeyServer, [d], 'c') as Error).message, /^dataset 'readings' \(ds-1, ±1\), column 'c': /);
    assert.match((withDatasetsContext(fromKeyServer, [d, { ...d, id: 'ds-2', name: 'more' }]) as Error).message, /^one of the datasets 'readings'/);
    const other = new RemoteError('ERR_REMOTE', 'x', 502);
    assert.equal(withDatasetContext(other, d, { column: 'a' }), other);
  });

  it('every command has a description, every option a help text, and an example', async () => {
    const commands = [
      ['key-server', 'start'],
      ['compute-server', 'start'],
      ['dealer', 'start'],
      ['owner', 'register'],
      ['owner', 'upload'],
      ['owner', 'datasets'],
      ['owner', 'grant'],
      ['owner', 'revoke'],
      ['owner', 'delete'],
      ['client', 'register'],
      ['client', 'datasets'],
      ['client', 'kmeans'],
      ['client', 'status'],
      ['client', 'result'],
      ['client', 'jobs'],
      ['query', 'stats'],
      ['demo'],
    ];
    for (const c of commands) {
      const help = (await cli(...c, '--help')).stdout;
      const [usage, description] = help.split('\n').filter((l) => l.trim() !== '');
      assert.match(usage!, /^Usage: ciphermine/);
      assert.ok(description && !description.startsWith('Options:'), `${c.join(' ')} has a description`);
      assert.match(help, /Example:\n {2}\$ ciphermine /, `${c.join(' ')} has an example`);
      const options = help.slice(help.indexOf('Options:')).split('\n').slice(1);
      for (const line of options.filter((l) => /^ {2}-/.test(l)))
        assert.match(line, /^ {2}\S.*\S {2,}\S/, `${c.join(' ')}: '${line.trim()}' has help`);
    }
    assert.match((await cli('--help')).stdout, /Roles \(each its own command group\):/);
  });
});
