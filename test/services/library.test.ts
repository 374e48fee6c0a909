/**
 * Ciphermine as a library: the package's own name resolves through `exports` to typed entry points,
 * and the README's "Use it from TypeScript" example (examples/quickstart.ts, quoted verbatim in the
 * README) runs against real servers and prints what it promises.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { startServices, type Services } from './services-harness.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));

describe('the library API', () => {
  let s: Services;
  before(async () => {
    s = await startServices();
  });
  after(() => s.close());

  it("import from 'ciphermine' gives the client classes, the servers and the job framework", async () => {
    const lib = await import('ciphermine');
    for (const name of ['DataOwner', 'QueryClient', 'parseNumericCsv', 'startKeyServer', 'startComputeServer', 'defineJobKind', 'ERROR_CODES']) {
      assert.ok(name in lib, `${name} is exported`);
    }
  });

  it('the README quotes examples/quickstart.ts verbatim', () => {
    const example = readFileSync(`${root}examples/quickstart.ts`, 'utf8').trim();
    const readme = readFileSync(`${root}README.md`, 'utf8');
    assert.ok(readme.includes(example), 'README.md must contain examples/quickstart.ts exactly');
  });

  it('the quickstart runs against real servers: k-means sizes and a DP mean', async () => {
    const { stdout } = await promisify(execFile)(process.execPath, [`${root}dist/examples/quickstart.js`], {
      cwd: root,
      env: { ...process.env, CIPHERMINE_SERVER: s.cs.url },
      timeout: 120_000,
    });
    const sizes = /sizes \[ (\d+), (\d+), (\d+) \]/.exec(stdout);
    assert.ok(sizes, stdout);
    assert.equal(Number(sizes[1]) + Number(sizes[2]) + Number(sizes[3]), 150);
    const mean = /mean petal length, epsilon 0.5: (-?[\d.]+)/.exec(stdout);
    assert.ok(mean && Math.abs(Number(mean[1]) - 3.758) < 3, stdout);
  });
});
