/**
 * Killing the key server during a job and starting it again: the job waits, resumes from its last
 * checkpoint (the conversion and finished iterations are not redone) and ends with the same result
 * as plaintext Lloyd's.
 */
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FixedPointCodec, readKeyFile } from '../../src/crypto/index.js';
import { parseNumericCsv } from '../../src/clients/csv.js';
import { DataOwner } from '../../src/clients/data-owner.js';
import { QueryClient, type JobStatus } from '../../src/clients/query-client.js';
import { lloyd } from '../../src/analytics/kmeans-plain.js';
import { startComputeServer, type ComputeServerHandle } from '../../src/services/compute-server.js';
import { startChildServer, type ChildServer } from '../../src/cli/child-server.js';

describe('key server restart during a job', () => {
  const cleanup: Array<() => Promise<void>> = [];
  after(async () => {
    for (const f of cleanup.reverse()) await f();
  });

  it('the job finishes from its last checkpoint with the same result', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cm-restart-'));
    const ksArgs = (port: string) => ['key-server', 'start', '--data-dir', join(dir, 'ks'), '--port', port, '--key-bits', '1024', '--workers', '1'];
    let ks: ChildServer = await startChildServer(ksArgs('0'));
    cleanup.push(() => ks.stop());
    const port = new URL(ks.url).port;
    const cs: ComputeServerHandle = await startComputeServer({
      dataDir: join(dir, 'cs'),
      port: 0,
      keyServerUrl: ks.url,
      channelKey: readKeyFile(ks.info.channelKey!),
      workers: 1,
      retryForMs: 60_000,
    });
    cleanup.push(() => cs.close());

    const table = parseNumericCsv(readFileSync(new URL('../../../data/iris.csv', import.meta.url), 'utf8'), ['label']);
    const codec = new FixedPointCodec({ fractionBits: 16, maxAbs: 8 });
    const owner = await DataOwner.register(cs.url, 'owner');
    const client = await QueryClient.register(cs.url, 'client');
    const ds = await owner.upload('iris', table, codec);
    await owner.grant(ds, client.id);
    const init = [0, 1, 2]; // a poor start: many iterations
    const job = await client.submitKMeans({ datasets: [ds], k: 3, maxIter: 100, initIndices: init });

    let st: JobStatus;
    do {
      await new Promise((r) => setTimeout(r, 30));
      st = await client.status(job);
    } while (st.iteration < 2 && st.state === 'running');
    assert.equal(st.state, 'running', 'the job must still be running when the key server dies');
    const killedAt = st.iteration;
    ks.process.kill('SIGKILL');
    await new Promise((r) => ks.process.once('exit', r));
    const phases = new Set<string>();
    for (let i = 0; i < 20; i++) {
      await new Promise((r) => setTimeout(r, 50));
      phases.add((await client.status(job)).phase);
    }
    assert.ok(phases.has('waiting for the key server'), `phases seen: ${[...phases]}`);
    assert.equal((await client.status(job)).state, 'running');

    ks = await startChildServer(ksArgs(port));
    const final = await client.waitFor(job);
    assert.equal(final.state, 'done', final.error ?? '');
    assert.ok(final.iteration > killedAt);
    const conversions = cs.store.db.prepare('SELECT COUNT(*) AS n FROM job_records WHERE job_id = ?').get(job) as { n: number };
    assert.equal(conversions.n, 1);

    const r = await client.result(job);
    const plain = lloyd(table.rows.map((row) => codec.encodeRow(row)), init, 100);
    assert.deepEqual(r.assignments, plain.assignments);
    assert.deepEqual(r.sums, plain.sums);
    assert.equal(r.iterations, plain.iterations);
  });
});
