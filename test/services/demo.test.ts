/** `ciphermine demo` end to end, as a user runs it: both servers as child processes. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { testDatabase } from './test-database.js';

const main = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
/** On the PostgreSQL run the demo's compute server uses it too (`demo --database postgres://...`). */
const database = async () => {
  const url = await testDatabase();
  return url ? ['--database', url] : [];
};

describe('ciphermine demo', () => {
  it('clusters the shipped iris data with three owners and agrees with plaintext Lloyd', async () => {
    const { stdout } = await promisify(execFile)(process.execPath, [main, 'demo', '--key-bits', '512', '--json', ...(await database())], {
      timeout: 120_000,
    });
    const lines = stdout.trim().split('\n');
    const r = JSON.parse(lines[lines.length - 1]!);
    assert.equal(r.agreesWithPlaintext, true);
    assert.equal(r.centroids.length, 3);
    assert.equal(r.centroids[0].length, 4);
    assert.equal(r.assignments.length, 150);
    assert.equal(
      r.sizes.reduce((a: number, b: number) => a + b, 0),
      150,
    );
    assert.equal(r.converged, true);
    assert.ok(r.seconds.total > 0 && r.seconds.iterations > 0 && r.seconds.conversion > 0);
  });

  it("demo stats publishes a DP mean of five owners' wages with the documented JSON shape", async () => {
    for (const args of [
      ['--mode', 'pmdp'],
      ['--mode', 'spmdp', '--blocks', '4'],
    ]) {
      const { stdout } = await promisify(execFile)(
        process.execPath,
        [main, 'demo', 'stats', '--key-bits', '512', '--json', ...args, ...(await database())],
        {
          timeout: 120_000,
        },
      );
      const r = JSON.parse(stdout.trim().split('\n').pop()!);
      assert.equal(typeof r.published, 'number');
      assert.ok(r.exact > 40 && r.exact < 70, `exact clipped mean ${r.exact}`);
      // epsilon 1 on a sum clipped to [0, 150] over 200 records: the error is a few units at most
      assert.ok(Math.abs(r.published - r.exact) < 20, `published ${r.published} vs exact ${r.exact}`);
      assert.equal(r.epsilon, 1);
      assert.equal(r.mode, args[1]);
      assert.equal(r.blocks, args[3] ? 4 : null);
      assert.deepEqual(Object.values(r.budgetRemaining), [3, 3, 3, 3, 3]);
      assert.ok(r.seconds.total > 0);
    }
  });

  it('demo nn trains on iris with three owners (standardised on the servers) and matches the plaintext training', async () => {
    const { stdout } = await promisify(execFile)(
      process.execPath,
      [
        main,
        'demo',
        'nn',
        '--data',
        'data/iris.csv',
        '--layers',
        '4,8,3',
        '--epochs',
        '3',
        '--batch',
        '16',
        '--lr',
        '0.5',
        '--key-bits',
        '512',
        '--json',
      ],
      { timeout: 240_000, cwd: fileURLToPath(new URL('../../..', import.meta.url)) },
    );
    const r = JSON.parse(stdout.trim().split('\n').pop()!);
    assert.deepEqual(r.layers, [4, 8, 3]);
    assert.equal(r.standardised, true);
    assert.equal(r.ownersAgree, true);
    assert.ok(Math.abs(r.testAccuracy - r.plaintextTestAccuracy) <= 0.05, `${r.testAccuracy} vs ${r.plaintextTestAccuracy}`);
    assert.ok(r.secondsPerEpoch > 0 && r.offlineSecondsPerEpoch >= 0 && r.provider === 'dealer' && r.epochs === 3);
  });

  it('refuses bad flags with a clear message', async () => {
    await assert.rejects(promisify(execFile)(process.execPath, [main, 'demo', '--k', '200', '--key-bits', '512']), /fewer than k|larger than/);
  });
});
