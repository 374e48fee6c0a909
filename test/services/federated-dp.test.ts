/**
 * Differentially private federated k-means: both servers add discrete Laplace shares to every
 * iteration's totals under encryption. The released totals' errors (released minus the exact totals
 * of the same assignment, rebuilt here from the hosts' data) must have the mean and variance of the
 * noise the job claims; and a spec asking for z-scores with epsilon is refused.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { FixedPointCodec } from '../../src/crypto/index.js';
import { parseNumericCsv } from '../../src/clients/csv.js';
import { addClusters, localClusterStats, nextState, normalizeRow } from '../../src/analytics/federated-kmeans.js';
import { roundNoise } from '../../src/services/jobs/kinds/federated-kmeans-noise.js';
import { variance } from '../../src/crypto/noise/mechanisms.js';
import { startServices, type Services } from './services-harness.js';
import { registerHosts, specFor, split, type FederatedRun } from './federated-helpers.js';
import type { ApiError } from '../../src/clients/api.js';

const iris = () => parseNumericCsv(readFileSync(new URL('../../../data/iris.csv', import.meta.url), 'utf8'), ['label']);

describe('federated k-means with differentially private totals (512-bit keys)', () => {
  let s: Services;
  const computeServerNoise: bigint[] = [];
  before(async () => {
    s = await startServices(512, { unsafeNoiseControlForTests: { onComputeServerNoise: (v) => computeServerNoise.push(...v) } });
  });
  after(() => s.close());

  it('the errors of the released sums have the claimed Laplace variance', async () => {
    const table = iris();
    const epsilon = 40;
    const o: FederatedRun & { epsilon: number } = {
      k: 3,
      init: [0, 51, 101],
      normalize: 'none',
      tolerance: 2 ** -40,
      maxIter: 12,
      fractionBits: 8,
      maxAbs: 8,
      epsilon,
    };
    const parties = await registerHosts(s.cs.url, 3);
    const { parts, init } = split(table, 3, o.init);
    const jobId = await parties[0]!.client.submit('federated-kmeans', {
      ...specFor(
        parties.map((p) => p.client.id),
        table,
        init,
        o,
      ),
      epsilon,
    });
    const outcomes = await Promise.all(parties.map((p, h) => p.host.join(jobId, parts[h]!, { pollMs: 20 })));
    const status = await parties[0]!.client.waitFor(jobId);
    assert.equal(status.state, 'done', status.error ?? '');
    const result = await parties[0]!.client.rawResult(
      jobId,
      (await import('../../src/services/jobs/kinds/federated-kmeans-schema.js')).federatedKmeansResult,
    );
    assert.equal(result.epsilon, epsilon);
    assert.equal(outcomes[0]!.iterations, 12, 'noisy centres keep moving: the job runs to its limit');
    assert.ok(
      computeServerNoise.some((x) => x !== 0n),
      'the compute server added noise shares',
    );

    // Rebuild each iteration's exact totals from the hosts' data and the centres they used.
    const codec = new FixedPointCodec({ fractionBits: 8, maxAbs: 8 });
    const z = outcomes[0]!.normalizer;
    const hostRows = parts.map((p) => p.rows.map((r) => normalizeRow(z, codec.encodeRow(r))));
    const union = hostRows.flat();
    let state = { sums: o.init.map((i) => union[i]!), sizes: o.init.map(() => 1n) };
    const sumErrors: number[] = [];
    const countErrors: number[] = [];
    for (const released of outcomes[0]!.rounds) {
      const exact = hostRows.map((rows) => localClusterStats(rows, state).totals).reduce(addClusters);
      released.sums.forEach((sum, j) => sum.forEach((x, a) => sumErrors.push(Number(x - exact.sums[j]![a]!))));
      released.sizes.forEach((c, j) => countErrors.push(Number(c - exact.sizes[j]!)));
      state = nextState(state, released);
    }
    for (const other of outcomes.slice(1)) assert.deepEqual(other.rounds, outcomes[0]!.rounds, 'every host got the same noisy totals');
    const specs = roundNoise({ epsilon, maxIter: 12, k: 3, columns: table.columns, normalize: 'none', fractionBits: 8, maxAbs: 8 }, 'round-1')!;
    const claimed = variance(specs[0]!);
    const mean = sumErrors.reduce((a, b) => a + b, 0) / sumErrors.length;
    const sampleVar = sumErrors.reduce((a, b) => a + (b - mean) ** 2, 0) / (sumErrors.length - 1);
    assert.equal(sumErrors.length, 12 * 3 * 4);
    // 144 Laplace samples: the sample variance is within about 20 % of the truth (1 sd); allow 3 sd.
    assert.ok(sampleVar > 0.4 * claimed && sampleVar < 1.6 * claimed, `sample variance ${sampleVar}, claimed ${claimed}`);
    assert.ok(Math.abs(mean) < 4 * Math.sqrt(claimed / sumErrors.length), `mean error ${mean}`);
    const countVar = countErrors.reduce((a, b) => a + b * b, 0) / countErrors.length;
    assert.ok(countVar < 10 * variance(specs[specs.length - 1]!) + 1, `count error variance ${countVar}`);
  });

  it('refuses z-scores with epsilon', async () => {
    const table = iris();
    const hosts = await registerHosts(s.cs.url, 2);
    const { init } = split(table, 2, [0, 1, 2]);
    await assert.rejects(
      hosts[0]!.client.submit('federated-kmeans', {
        ...specFor(
          hosts.map((h) => h.client.id),
          table,
          init,
          { k: 3, init: [0, 1, 2], normalize: 'zscore' },
        ),
        epsilon: 1,
      }),
      (e: ApiError) => e.status === 400 && /z-scores/.test(e.message),
    );
  });
});
