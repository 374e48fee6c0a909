/**
 * Grants with scope and the owners' floor on cluster sizes: a client granted only DP statistics
 * cannot run k-means (and the other way round), a re-grant replaces the scopes, a revoked grant
 * stops later jobs, and a k-means run whose clusters fall below the owners' minimum (k = n, every
 * record its own start) releases nothing.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { FixedPointCodec } from '../../src/crypto/index.js';
import { DataOwner } from '../../src/clients/data-owner.js';
import { QueryClient } from '../../src/clients/query-client.js';
import { ApiError } from '../../src/clients/api.js';
import { startServices, type Services } from './services-harness.js';

const codec = new FixedPointCodec({ fractionBits: 8, maxAbs: 100 });
const rows = Array.from({ length: 8 }, (_, i) => [i, (i * 3) % 5]);

describe('grants with scope, minimum cluster size', () => {
  let s: Services;
  let owner: DataOwner;
  let client: QueryClient;
  let dataset: string;
  before(async () => {
    s = await startServices(512);
    owner = await DataOwner.register(s.cs.url, 'owner');
    client = await QueryClient.register(s.cs.url, 'client');
    dataset = await owner.upload('eight', { columns: ['a', 'b'], rows }, codec, { epsilonBudget: 10 });
  });
  after(() => s.close());

  const forbidden = (kind: string) => (e: unknown) => e instanceof ApiError && e.status === 403 && new RegExp(`${kind} jobs`).test(e.message);

  it('a stats-only grant refuses k-means; a kmeans-only grant refuses DP statistics', async () => {
    await owner.grant(dataset, client.id, ['stats']);
    await assert.rejects(client.submitKMeans({ datasets: [dataset], k: 2 }), forbidden('kmeans'));
    const answer = await client.stats({ datasets: [dataset], column: 'a', kind: 'count', epsilon: 1 });
    assert.equal(typeof answer.value, 'number');
    await owner.grant(dataset, client.id, ['kmeans']);
    await assert.rejects(client.stats({ datasets: [dataset], column: 'a', kind: 'count', epsilon: 1 }), forbidden('stats'));
  });

  it('k = n with every record a start is refused at release: clusters below the minimum of 5', async () => {
    await owner.grant(dataset, client.id, ['kmeans', 'stats']);
    await assert.rejects(client.kmeans({ datasets: [dataset], k: 8, initIndices: [0, 1, 2, 3, 4, 5, 6, 7] }), (e: Error) =>
      /below the owners' minimum cluster size of 5: no result is released/.test(e.message),
    );
  });

  it('an owner may lower the minimum for its dataset; a revoked grant stops later jobs', async () => {
    const small = await owner.upload('eight-small', { columns: ['a', 'b'], rows }, codec, { minClusterSize: 1 });
    await owner.grant(small, client.id, ['kmeans']);
    const r = await client.kmeans({ datasets: [small], k: 2 });
    assert.equal(
      r.sizes.map(Number).reduce((a, b) => a + b, 0),
      8,
    );
    await owner.revoke(small, client.id);
    await assert.rejects(client.submitKMeans({ datasets: [small], k: 2 }), (e: unknown) => e instanceof ApiError && e.status === 403);
  });
});
