/**
 * Prometheus metrics (issue 17, item 5): each server serves GET /metrics on a listener of its own,
 * with per-method channel requests and seconds at the key server and the dealer, and job phases,
 * ended jobs, queue depth and route counts at the compute server; never ids or data.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FixedPointCodec, readKeyFile } from '../../src/crypto/index.js';
import { DataOwner } from '../../src/clients/data-owner.js';
import { QueryClient } from '../../src/clients/query-client.js';
import { startDealerServer, type DealerServerHandle } from '../../src/services/dealer-server.js';
import { startServices, type Services } from './services-harness.js';

async function scrape(url: string): Promise<string> {
  const res = await fetch(url);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /text\/plain/);
  return res.text();
}

/** The value of the first sample of `name` whose labels include all of `labels`. */
function sample(text: string, name: string, labels: Record<string, string>): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) return Number(line.split(' ').pop());
  }
  return undefined;
}

describe('metrics', () => {
  let s: Services;
  let dealer: DealerServerHandle;
  before(async () => {
    dealer = await startDealerServer({ dataDir: mkdtempSync(join(tmpdir(), 'cm-metrics-')), port: 0, keyServerPort: 0, metrics: { port: 0 } });
    s = await startServices(
      512,
      { metrics: { port: 0 }, dealer: { url: dealer.computeServerUrl, key: readKeyFile(dealer.keyFiles.computeServer) } },
      { metrics: { port: 0 }, dealer: { url: dealer.keyServerUrl, key: readKeyFile(dealer.keyFiles.keyServer) } },
    );
  });
  after(async () => {
    await s.close();
    await dealer.close();
  });

  it('count requests, phases and jobs per process, and show no ids', async () => {
    const owner = await DataOwner.register(s.cs.url, 'o');
    const client = await QueryClient.register(s.cs.url, 'c');
    const rows = Array.from({ length: 12 }, (_, i) => [i % 2 ? 10 + i / 10 : i / 10, i % 3]);
    const id = await owner.upload('t', { columns: ['x', 'y'], rows }, new FixedPointCodec({ fractionBits: 8, maxAbs: 64 }), { minClusterSize: 1 });
    await owner.grant(id, client.id);
    await client.kmeans({ datasets: [id], k: 2, maxIter: 10, initIndices: [0, 1] });

    const ks = await scrape(s.ks.metricsUrl!);
    assert.ok(sample(ks, 'ciphermine_channel_requests_total', { method: 'sct-packed', outcome: 'ok', role: 'key-server' })! >= 1);
    assert.ok(sample(ks, 'ciphermine_channel_request_seconds_total', { method: 'sct-packed' })! > 0);
    assert.notEqual(sample(ks, 'ciphermine_engine_sessions', {}), undefined);
    assert.match(ks, /ciphermine_process_cpu_seconds_total/);

    const cs = await scrape(s.cs.metricsUrl!);
    assert.ok(sample(cs, 'ciphermine_job_phase_seconds_total', { kind: 'kmeans', phase: 'conversion' })! > 0);
    assert.equal(sample(cs, 'ciphermine_jobs_ended_total', { kind: 'kmeans', state: 'done' }), 1);
    assert.equal(sample(cs, 'ciphermine_jobs_waiting', {}), 0);
    assert.ok(sample(cs, 'ciphermine_http_requests_total', { route: 'PUT /v1/datasets/:id/chunks/:idx', status: '2xx' })! >= 1);

    const d = await scrape(dealer.metricsUrl!);
    assert.ok(sample(d, 'ciphermine_channel_requests_total', { method: 'seed', role: 'dealer' })! >= 2);
    for (const text of [ks, cs, d]) {
      assert.ok(!text.includes(id) && !text.includes(client.id) && !text.includes(owner.id), 'no ids in metrics');
    }
  });

  it('serve only GET /metrics', async () => {
    const other = await fetch(s.cs.metricsUrl!.replace('/metrics', '/v1/jobs'));
    assert.equal(other.status, 404);
    const post = await fetch(s.ks.metricsUrl!, { method: 'POST' });
    assert.equal(post.status, 404);
  });
});
