/** `ciphermine demo` end to end, as a user runs it: both servers as child processes. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';

const main = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

describe('ciphermine demo', () => {
  it('clusters the shipped iris data with three owners and agrees with plaintext Lloyd', async () => {
    const { stdout } = await promisify(execFile)(process.execPath, [main, 'demo', '--key-bits', '512', '--json'], { timeout: 120_000 });
    const lines = stdout.trim().split('\n');
    const r = JSON.parse(lines[lines.length - 1]!);
    assert.equal(r.agreesWithPlaintext, true);
    assert.equal(r.centroids.length, 3);
    assert.equal(r.centroids[0].length, 4);
    assert.equal(r.assignments.length, 150);
    assert.equal(r.sizes.reduce((a: number, b: number) => a + b, 0), 150);
    assert.equal(r.converged, true);
    assert.ok(r.seconds.total > 0 && r.seconds.iterations > 0 && r.seconds.conversion > 0);
  });

  it('refuses bad flags with a clear message', async () => {
    await assert.rejects(promisify(execFile)(process.execPath, [main, 'demo', '--k', '200', '--key-bits', '512']), /fewer than k|larger than/);
  });
});
