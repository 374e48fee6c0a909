/**
 * Either server killed mid-job (SIGKILL, no clean shutdown) and started again: the job resumes from
 * its last checkpoint or stored intermediate, finished phases are not redone, and the result is the
 * one an uninterrupted run gives (k-means: exactly plaintext Lloyd's; a DP query: charged once).
 */
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FixedPointCodec, readKeyFile } from '../../src/crypto/index.js';
import { parseNumericCsv, type NumericTable } from '../../src/clients/csv.js';
import { DataOwner } from '../../src/clients/data-owner.js';
import { QueryClient, type JobStatus } from '../../src/clients/query-client.js';
import { lloyd } from '../../src/analytics/kmeans-plain.js';
import { startComputeServer, type ComputeServerHandle } from '../../src/services/compute-server.js';
import { startKeyServer, type KeyServerHandle } from '../../src/services/key-server.js';
import { startDealerServer } from '../../src/services/dealer-server.js';
import { startChildServer, type ChildServer } from '../../src/cli/child-server.js';
import { saveIdentity } from '../../src/clients/identity.js';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
import { testDatabase } from './test-database.js';

const iris = () => parseNumericCsv(readFileSync(new URL('../../../data/iris.csv', import.meta.url), 'utf8'), ['label']);
const irisCodec = new FixedPointCodec({ fractionBits: 16, maxAbs: 8 });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls until `ready` holds for the job's status, returning that status. */
async function until(client: QueryClient, job: string, ready: (s: JobStatus) => boolean): Promise<JobStatus> {
  for (;;) {
    const s = await client.status(job);
    if (ready(s) || s.state === 'done' || s.state === 'failed') return s;
    await sleep(20);
  }
}

const iterationsDone = (s: JobStatus) => (s.progress?.unit === 'iteration' ? s.progress.done : 0);

/** The job's decrypted result is exactly plaintext Lloyd's on the same data from the same start. */
async function assertEqualsLloyd(client: QueryClient, job: string, table: NumericTable, init: number[]): Promise<void> {
  const r = await client.kmeansResult(job);
  const plain = lloyd(
    table.rows.map((row) => irisCodec.encodeRow(row)),
    init,
    100,
  );
  assert.deepEqual(r.assignments, plain.assignments);
  assert.deepEqual(r.sums, plain.sums);
  assert.equal(r.iterations, plain.iterations);
  assert.equal(r.converged, plain.converged);
}

async function kill(child: ChildServer): Promise<void> {
  child.process.kill('SIGKILL');
  if (child.process.exitCode === null && child.process.signalCode === null) await new Promise((r) => child.process.once('exit', r));
}

describe('key server restart during a job', () => {
  const cleanup: Array<() => Promise<void>> = [];
  after(async () => {
    for (const f of cleanup.reverse()) await f();
  });

  for (const provider of ['ot', 'dealer'] as const) {
    it(`the job finishes from its last checkpoint with the same result (${provider}${provider === 'dealer' ? ': assignment on shares, the share re-made from the record packs' : ''})`, async () => {
      await keyServerRestart(provider);
    });
  }

  async function keyServerRestart(provider: 'ot' | 'dealer') {
    const dir = mkdtempSync(join(tmpdir(), 'cm-restart-'));
    const dealer = provider === 'dealer' ? await startDealerServer({ dataDir: join(dir, 'dealer'), port: 0, keyServerPort: 0 }) : undefined;
    if (dealer) cleanup.push(() => dealer.close());
    const viaDealer = dealer ? ['--dealer', dealer.keyServerUrl, '--dealer-key', dealer.keyFiles.keyServer] : [];
    const ksArgs = (port: string) => [
      'key-server',
      'start',
      '--data-dir',
      join(dir, 'ks'),
      '--port',
      port,
      '--key-bits',
      '1024',
      '--workers',
      '1',
      ...viaDealer,
    ];
    let ks: ChildServer = await startChildServer(ksArgs('0'));
    cleanup.push(() => ks.stop());
    const port = new URL(ks.url).port;
    const cs: ComputeServerHandle = await startComputeServer({
      dataDir: join(dir, 'cs'),
      database: await testDatabase(),
      port: 0,
      keyServerUrl: ks.url,
      channelKey: readKeyFile(ks.info.channelKey!),
      workers: 1,
      retryForMs: 60_000,
      dealer: dealer && { url: dealer.computeServerUrl, key: readKeyFile(dealer.keyFiles.computeServer) },
    });
    cleanup.push(() => cs.close());

    const table = iris();
    const owner = await DataOwner.register(cs.url, 'owner');
    const client = await QueryClient.register(cs.url, 'client');
    const ds = await owner.upload('iris', table, irisCodec);
    await owner.grant(ds, client.id);
    const init = [0, 1, 2]; // a poor start: many iterations
    const job = await client.submitKMeans({ datasets: [ds], k: 3, maxIter: 100, initIndices: init });

    const st = await until(client, job, (s) => iterationsDone(s) >= 2);
    assert.equal(st.state, 'running', 'the job must still be running when the key server dies');
    const killedAt = iterationsDone(st);
    await kill(ks);
    const phases = new Set<string>();
    for (let i = 0; i < 20; i++) {
      await sleep(50);
      phases.add((await client.status(job)).phase);
    }
    assert.ok(phases.has('waiting for the key server'), `phases seen: ${[...phases]}`);
    assert.equal((await client.status(job)).state, 'running');

    ks = await startChildServer(ksArgs(port));
    const after = new Set<string>();
    const final = await client.waitFor(job, (s) => after.add(s.phase), 5);
    assert.equal(final.state, 'done', final.error ?? '');
    assert.ok(iterationsDone(final) > killedAt);
    assert.ok(!after.has('conversion'), `the conversion was not redone (phases after the restart: ${[...after]})`);

    await assertEqualsLloyd(client, job, table, init);
    if (dealer)
      assert.ok(
        dealer.served.some((s) => s.request !== 'seed' && s.request.kind === 'wideMatmul'),
        'the iterations ran on shares',
      );
  }
});

describe('compute server killed mid-job', () => {
  let ks: KeyServerHandle;
  let cs: ChildServer;
  let csArgs: (port: string) => string[];
  let keyServerSaw: string[] = [];
  const cleanup: Array<() => Promise<void>> = [];
  after(async () => {
    for (const f of cleanup.reverse()) await f();
  });

  let dealerServed: () => string[] = () => [];
  /** With `dealer`, both servers also take a dealer, and k-means iterations run on shares. */
  const startBoth = async (withDealer = false) => {
    // A second pair replaces the first: stop it now, since the cleanup below sees only the latest.
    if (cs) await cs.stop();
    if (ks) await ks.close();
    const first = !cs;
    const dir = mkdtempSync(join(tmpdir(), 'cm-cs-kill-'));
    const dealer = withDealer ? await startDealerServer({ dataDir: join(dir, 'dealer'), port: 0, keyServerPort: 0 }) : undefined;
    if (dealer) {
      cleanup.push(() => dealer.close());
      dealerServed = () => dealer.served.map((s) => (s.request === 'seed' ? 'seed' : s.request.kind));
    }
    const ksDealer = dealer && { url: dealer.keyServerUrl, key: readKeyFile(dealer.keyFiles.keyServer) };
    ks = await startKeyServer({ dataDir: join(dir, 'ks'), port: 0, keyBits: 512, workers: 1, dealer: ksDealer });
    ks.core.observer = (protocol) => keyServerSaw.push(protocol);
    if (first) cleanup.push(() => ks.close());
    const database = await testDatabase();
    csArgs = (port) => [
      'compute-server',
      'start',
      '--data-dir',
      join(dir, 'cs'),
      '--port',
      port,
      '--key-server',
      ks.url,
      '--channel-key',
      ks.channelKeyPath,
      '--workers',
      '1',
      ...(database ? ['--database', database] : []),
      ...(dealer ? ['--dealer', dealer.computeServerUrl, '--dealer-key', dealer.keyFiles.computeServer] : []),
    ];
    cs = await startChildServer(csArgs('0'));
    if (first) cleanup.push(() => cs.stop());
  };

  /** Kills the compute server, checks that nothing answers, and starts it again on the same port. */
  const killAndRestart = async () => {
    const port = new URL(cs.url).port;
    await kill(cs);
    keyServerSaw = [];
    cs = await startChildServer(csArgs(port));
  };

  /** Iris from a poor start (many iterations), uploaded, granted and submitted; returns once two iterations are done. */
  const irisJobPastTwoIterations = async () => {
    const table = iris();
    const owner = await DataOwner.register(cs.url, 'owner');
    const client = await QueryClient.register(cs.url, 'client');
    const ds = await owner.upload('iris', table, irisCodec);
    await owner.grant(ds, client.id);
    const init = [0, 1, 2];
    const job = await client.submitKMeans({ datasets: [ds], k: 3, maxIter: 100, initIndices: init });
    const st = await until(client, job, (s) => iterationsDone(s) >= 2);
    assert.equal(st.state, 'running', 'the job must still be running when the compute server dies');
    return { table, client, init, job };
  };

  it('k-means resumes from its last checkpoint and equals plaintext Lloyd', async () => {
    await startBoth();
    const { table, client, init, job } = await irisJobPastTwoIterations();
    assert.ok(keyServerSaw.includes('sct-packed'), 'the first run converted the records');
    await killAndRestart();

    const final = await client.waitFor(job);
    assert.equal(final.state, 'done', final.error ?? '');
    assert.ok(!keyServerSaw.includes('sct-packed'), 'the conversion was not redone after the restart');
    await assertEqualsLloyd(client, job, table, init);
  });

  it('with a dealer, k-means on shares resumes from its checkpoint, re-shares its record packs and equals plaintext Lloyd', async () => {
    await startBoth(true);
    const { table, client, init, job } = await irisJobPastTwoIterations();
    await killAndRestart();
    // (Unpacking the clusters' sums also goes through sct-packed, so the phases tell the conversion apart.)
    const phases = new Set<string>();
    const final = await client.waitFor(job, (s) => phases.add(s.phase), 5);
    assert.equal(final.state, 'done', final.error ?? '');
    assert.ok(!phases.has('conversion'), `the conversion was not redone after the restart (phases: ${[...phases]})`);
    assert.ok(keyServerSaw.includes('share'), 'the restarted compute server shared the record packs again');
    assert.ok(dealerServed().includes('wideMatmul'), 'the iterations ran on shares');
    await assertEqualsLloyd(client, job, table, init);
  });

  it('a DP query resumes from its converted column and is charged once', async () => {
    const codec = new FixedPointCodec({ fractionBits: 8, maxAbs: 200 });
    const owner = await DataOwner.register(cs.url, 'hospital');
    const client = await QueryClient.register(cs.url, 'statistician');
    const rows = Array.from({ length: 1500 }, (_, i) => [(i * 37) % 150]);
    const ds = await owner.upload('wages', { columns: ['wage'], rows }, codec, { epsilonBudget: 2 });
    await owner.grant(ds, client.id);
    const job = await client.submit('stats', { datasets: [ds], column: 'wage', kind: 'sum', lo: 10, hi: 100, epsilon: '0.5' });
    const st = await until(client, job, (s) => s.phase === 'computation');
    assert.equal(st.state, 'running', 'the query must still be computing when the compute server dies');
    await killAndRestart();

    const final = await client.waitFor(job);
    assert.equal(final.state, 'done', final.error ?? '');
    assert.ok(!keyServerSaw.includes('sct-packed'), 'the column was not converted again');
    const r = await client.statsResult(job);
    assert.equal(r.budgetRemaining[ds], 1.5, 'charged exactly once');
    const exact = rows.reduce((a, [x]) => a + Math.min(100, Math.max(10, x!)), 0);
    // Laplace noise of scale 100 / 0.5 = 200: far beyond 4000 with probability e^-20.
    assert.ok(Math.abs(r.value! - exact) < 4000, `${r.value} vs ${exact}`);
  });

  it('`client kmeans` follows its job through the restart and prints the result', async () => {
    const table = iris();
    const owner = await DataOwner.register(cs.url, 'owner');
    const client = await QueryClient.register(cs.url, 'client');
    const ds = await owner.upload('iris', table, irisCodec);
    await owner.grant(ds, client.id);
    const identity = join(mkdtempSync(join(tmpdir(), 'cm-cli-kill-')), 'analyst.id');
    saveIdentity(identity, client.identity());
    const init = [0, 1, 2];
    const cli = spawn(
      process.execPath,
      [MAIN, 'client', 'kmeans', '--identity', identity, '--datasets', ds, '--k', '3', '--init-indices', init.join(',')],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let stdout = '';
    let stderr = '';
    cli.stdout.on('data', (d) => (stdout += d));
    cli.stderr.on('data', (d) => (stderr += d));
    const exited = new Promise<number | null>((r) => cli.once('exit', r));
    while (!/job (job-[0-9a-f-]+) submitted/.test(stderr)) await sleep(20);
    const job = /job (job-[0-9a-f-]+) submitted/.exec(stderr)![1]!;
    const st = await until(client, job, (s) => iterationsDone(s) >= 2);
    assert.equal(st.state, 'running', 'the job must still be running when the compute server dies');
    await killAndRestart();

    assert.equal(await exited, 0, stderr);
    const printed = JSON.parse(stdout.trim().split('\n').at(-1)!);
    assert.equal(printed.job, job);
    await assertEqualsLloyd(client, job, table, init);
    assert.deepEqual(printed.assignments, (await client.kmeansResult(job)).assignments);
  });
});
