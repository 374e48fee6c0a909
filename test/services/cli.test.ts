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
    const { dataset } = JSON.parse((await cli('owner', 'upload', '--identity', owner, '--csv', csv)).stdout);
    await cli('owner', 'grant', '--identity', owner, '--dataset', dataset, '--client', clientId);
    await fails(['client', 'kmeans', '--identity', analyst, '--datasets', dataset, '--k', 'abc'], /expected an integer, got 'abc'/);
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
});
