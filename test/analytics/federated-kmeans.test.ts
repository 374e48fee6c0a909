import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { FixedPointCodec } from '../../src/crypto/index.js';
import { lloyd } from '../../src/analytics/kmeans-plain.js';
import { parseNumericCsv } from '../../src/clients/csv.js';
import {
  addClusters,
  isqrt,
  localClusterStats,
  localMoments,
  movedLessThan,
  nextState,
  normalizeRow,
  roundDiv,
} from '../../src/analytics/federated-kmeans.js';
import { federatedReference } from '../../src/analytics/federated-kmeans-plain.js';

function iris(f: number): bigint[][] {
  const t = parseNumericCsv(readFileSync(new URL('../../../data/iris.csv', import.meta.url), 'utf8'), ['label']);
  const codec = new FixedPointCodec({ fractionBits: f, maxAbs: 10 });
  return t.rows.map((r) => codec.encodeRow(r));
}

describe('federated k-means arithmetic', () => {
  it('integer helpers round as documented', () => {
    assert.equal(roundDiv(5n, 2n), 3n);
    assert.equal(roundDiv(-5n, 2n), -2n);
    assert.equal(roundDiv(-7n, 3n), -2n);
    assert.equal(isqrt(99n), 9n);
    assert.equal(isqrt(100n), 10n);
    assert.equal(isqrt((1n << 200n) + 5n), 1n << 100n);
  });

  it('with no normalisation and a tiny tolerance it is plaintext Lloyd (same sums, sizes, iterations)', () => {
    const data = iris(8);
    const init = [0, 50, 100];
    const plain = lloyd(data, init, 50);
    const fed = federatedReference(data, init, { k: 3, maxIter: 50, tolerance: 2 ** -40, normalize: 'none', fractionBits: 8 });
    assert.ok(plain.converged && fed.converged);
    assert.deepEqual(fed.sums, plain.sums);
    assert.deepEqual(fed.sizes, plain.sizes);
    assert.deepEqual(fed.assignments, plain.assignments);
    // Lloyd stops at the iteration whose assignment repeats, which is the one whose centres do not move.
    assert.equal(fed.iterations, plain.iterations);
  });

  it('per-host moments and cluster sums add up to the union (mean and zscore)', () => {
    const data = iris(12);
    const hosts = [data.slice(0, 40), data.slice(40, 97), data.slice(97)];
    for (const kind of ['mean', 'zscore'] as const) {
      const union = localMoments(data, 4);
      const parts = hosts.map((h) => localMoments(h, 4));
      const summed = parts.reduce((a, b) => ({
        sums: a.sums.map((x, i) => x + b.sums[i]!),
        squares: a.squares.map((x, i) => x + b.squares[i]!),
        count: a.count + b.count,
      }));
      assert.deepEqual(summed, union);
      const z = { kind, moments: union, fractionBits: 12 };
      const rows = data.map((r) => normalizeRow(z, r));
      const colMean = [0, 1, 2, 3].map((a) => rows.reduce((s, r) => s + Number(r[a]!), 0) / rows.length / 4096);
      colMean.forEach((x) => assert.ok(Math.abs(x) < 1e-3, `normalised column mean ${x}`));
      if (kind === 'zscore') {
        const sd = [0, 1, 2, 3].map((a) => Math.sqrt(rows.reduce((s, r) => s + (Number(r[a]!) / 4096) ** 2, 0) / rows.length));
        sd.forEach((x) => assert.ok(Math.abs(x - 1) < 1e-3, `normalised column sd ${x}`));
      }
      const state = { sums: [rows[0]!, rows[60]!, rows[120]!], sizes: [1n, 1n, 1n] };
      const local = hosts.map(
        (h) =>
          localClusterStats(
            h.map((r) => normalizeRow(z, r)),
            state,
          ).totals,
      );
      assert.deepEqual(local.reduce(addClusters), localClusterStats(rows, state).totals);
    }
  });

  it('an empty cluster keeps its centre; the tolerance compares exact shifts', () => {
    const prev = { sums: [[10n], [1000n]], sizes: [1n, 1n] };
    const next = nextState(prev, { sums: [[30n], [0n]], sizes: [2n, 0n] });
    assert.deepEqual(next, { sums: [[30n], [1000n]], sizes: [2n, 1n] });
    // centre 0 moved from 10 to 15 encoded units = 5/16 with f = 4
    assert.equal(movedLessThan(prev, next, 5 / 16, 4), false);
    assert.equal(movedLessThan(prev, next, 5 / 16 + 2 ** -30, 4), true);
  });
});
