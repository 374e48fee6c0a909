/** The federated commands as a user runs them: `host register`, `host create`, `host join` and `demo federated`. */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { startServices, type Services } from './services-harness.js';

const main = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const cli = (...args: string[]) => promisify(execFile)(process.execPath, [main, ...args], { timeout: 120_000 });
const lastJson = (stdout: string) => JSON.parse(stdout.trim().split('\n').pop()!);

describe('federated k-means from the command line (512-bit keys)', () => {
  let s: Services;
  before(async () => {
    s = await startServices();
  });
  after(() => s.close());

  it('every host command and demo federated has a description, option help and an example', async () => {
    for (const c of [
      ['host', 'register'],
      ['host', 'create'],
      ['host', 'join'],
      ['demo', 'federated'],
    ]) {
      const help = (await cli(...c, '--help')).stdout;
      const [usage, description] = help.split('\n').filter((l) => l.trim() !== '');
      assert.match(usage!, /^Usage: ciphermine/);
      assert.ok(description && !description.startsWith('Options:'), `${c.join(' ')} has a description`);
      assert.match(help, /Example:\n {2}\$ ciphermine /, `${c.join(' ')} has an example`);
      for (const line of help
        .slice(help.indexOf('Options:'))
        .split('\n')
        .slice(1)
        .filter((l) => /^ {2}-/.test(l)))
        assert.match(line, /^ {2}\S.*\S {2,}\S/, `${c.join(' ')}: '${line.trim()}' has help`);
    }
  });

  it('two hosts register, one creates the job, both join with their own CSV and end with the same centres', async () => {
    const ids = [join(s.dir, 'a.id'), join(s.dir, 'b.id')];
    const parties = [];
    for (const [i, f] of ids.entries())
      parties.push(lastJson((await cli('host', 'register', '--identity', f, '--server', s.cs.url, '--name', `h${i}`)).stdout).id);
    const csvs = [join(s.dir, 'a.csv'), join(s.dir, 'b.csv')];
    writeFileSync(csvs[0]!, 'x,y,label\n0,0,1\n1,0,1\n0,1,1\n10,10,2\n');
    writeFileSync(csvs[1]!, 'x,y,label\n11,10,2\n10,11,2\n1,1,1\n');
    const created = lastJson(
      (
        await cli(
          'host',
          'create',
          '--identity',
          ids[0]!,
          '--hosts',
          parties.join(','),
          '--columns',
          'x,y',
          '--k',
          '2',
          '--init',
          '0:0,1:0',
          '--max-abs',
          '16',
        )
      ).stdout,
    );
    const outs = await Promise.all(
      ids.map((f, i) => cli('host', 'join', '--identity', f, '--csv', csvs[i]!, '--job', created.id, '--ignore-columns', 'label', '--quiet')),
    );
    const [a, b] = outs.map((o) => lastJson(o.stdout));
    assert.deepEqual(a.sums, b.sums);
    assert.deepEqual(a.sizes, [4, 3]);
    assert.deepEqual([...a.assignments, ...b.assignments], [0, 0, 0, 1, 1, 1, 0]);
    assert.equal(a.converged, true);
  });

  it('demo federated --json: five hosts on wine with z-scores agree with plaintext Lloyd', async () => {
    const wine = fileURLToPath(new URL('../../../test/fixtures/wine.csv', import.meta.url));
    const { stdout } = await cli(
      'demo',
      'federated',
      '--key-bits',
      '512',
      '--data',
      wine,
      '--hosts',
      '5',
      '--normalize',
      'zscore',
      '--k',
      '3',
      '--json',
    );
    const r = lastJson(stdout);
    assert.equal(r.agreesWithPlaintext, true);
    assert.equal(r.assignments.length, 178);
    assert.equal(r.centroids.length, 3);
    assert.equal(r.centroids[0].length, 13);
    assert.equal(
      r.sizes.reduce((x: number, y: number) => x + y, 0),
      178,
    );
    assert.ok(r.iterations > 1 && r.seconds.total > 0);
  });
});
