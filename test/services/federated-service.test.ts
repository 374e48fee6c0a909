/**
 * Federated k-means through the real services (seed 003): hosts keep their shares of a table and
 * take part over HTTP; every host ends with the centres, sizes and iteration count of plaintext
 * Lloyd's on the union from the same start, after the same private normalisation, exactly.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parseNumericCsv } from '../../src/clients/csv.js';
import { startServices, fixture, type Services } from './services-harness.js';
import { assertEqualsReference, federate, registerHosts, specFor, split, type FederatedRun } from './federated-helpers.js';
import { FixedPointCodec } from '../../src/crypto/index.js';
import { normalizeRow } from '../../src/analytics/federated-kmeans.js';
import { lloydWithTolerance } from '../../src/analytics/federated-kmeans-plain.js';

const iris = () => parseNumericCsv(readFileSync(new URL('../../../data/iris.csv', import.meta.url), 'utf8'), ['label']);

function synthetic(n: number) {
  const centres = [
    [-40, -40, 5],
    [40, -40, -5],
    [-40, 40, 0],
    [40, 40, 10],
  ];
  let seed = 777;
  const rand = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31 - 0.5;
  return { columns: ['x', 'y', 'z'], rows: Array.from({ length: n }, (_, i) => centres[i % 4]!.map((c) => c + 30 * rand())) };
}

describe('federated k-means through the services (512-bit keys)', () => {
  let s: Services;
  before(async () => {
    s = await startServices();
  });
  after(() => s.close());

  it('iris, k = 3, three hosts, private mean: equals plaintext Lloyd on the union', async () => {
    const table = iris();
    const o: FederatedRun = { k: 3, init: [0, 51, 101], normalize: 'mean', maxAbs: 8 };
    const { outcomes, status } = await federate(s.cs.url, table, 3, o);
    assert.equal(status.state, 'done', status.error ?? '');
    assertEqualsReference(outcomes, table, o);
    assert.ok(outcomes[0]!.converged);
  });

  it('wine, k = 3, two hosts, z-scores, 13 attributes', async () => {
    const table = parseNumericCsv(fixture('wine.csv'), ['label']);
    const o: FederatedRun = { k: 3, init: [0, 60, 130], normalize: 'zscore', fractionBits: 12, maxAbs: 1700 };
    const { outcomes } = await federate(s.cs.url, table, 2, o);
    assertEqualsReference(outcomes, table, o);
  });

  it('seeded synthetic data with negative values, k = 4, five hosts, a coarse tolerance and an iteration limit', async () => {
    const table = synthetic(90);
    for (const o of [
      { k: 4, init: [0, 1, 2, 3], normalize: 'none', tolerance: 0.5, fractionBits: 10, maxAbs: 64 },
      { k: 4, init: [5, 6, 7, 8], normalize: 'mean', maxIter: 2, fractionBits: 10, maxAbs: 64 },
    ] satisfies FederatedRun[]) {
      const { outcomes, status } = await federate(s.cs.url, table, 5, o);
      assertEqualsReference(outcomes, table, o);
      assert.equal((status as { state: string }).state, 'done');
    }
  });

  it('a random start: hosts propose rows, the centres are records of the union, the rest is Lloyd from them', async () => {
    const table = iris();
    const parties = await registerHosts(s.cs.url, 3);
    const { parts } = split(table, 3, []);
    const o = { k: 3, init: [], normalize: 'mean', fractionBits: 16, maxAbs: 8 } as const;
    const spec = {
      ...specFor(
        parties.map((p) => p.client.id),
        table,
        [],
        { ...o, init: [] },
      ),
      init: 'random' as const,
    };
    const jobId = await parties[0]!.client.submit('federated-kmeans', spec);
    const outcomes = await Promise.all(parties.map((p, h) => p.host.join(jobId, parts[h]!, { pollMs: 20 })));
    const codec = new FixedPointCodec({ fractionBits: 16, maxAbs: 8 });
    const z = outcomes[0]!.normalizer;
    const rows = table.rows.map((r) => normalizeRow(z, codec.encodeRow(r)));
    const start = outcomes[0]!.initial;
    for (const c of start)
      assert.ok(
        rows.some((r) => r.every((x, a) => x === c[a])),
        'an initial centre is a record',
      );
    const ref = lloydWithTolerance(rows, { sums: start, sizes: start.map(() => 1n) }, { maxIter: 50, tolerance: 1e-4, fractionBits: 16 });
    for (const out of outcomes) {
      assert.deepEqual(out.initial, start);
      assert.deepEqual(out.sums, ref.sums);
      assert.deepEqual(out.sizes, ref.sizes);
      assert.equal(out.iterations, ref.iterations);
    }
    assert.deepEqual(
      outcomes.flatMap((x) => x.assignments),
      ref.assignments,
    );
  });

  // Every data set with every host count the issue names (2, 3 and 5): the splits differ, the result must not.
  for (const [name, load, o] of [
    ['iris', iris, { k: 3, init: [0, 51, 101], normalize: 'mean', maxAbs: 8 }],
    [
      'wine',
      () => parseNumericCsv(fixture('wine.csv'), ['label']),
      { k: 3, init: [0, 60, 130], normalize: 'zscore', fractionBits: 12, maxAbs: 1700 },
    ],
    ['synthetic', () => synthetic(90), { k: 4, init: [0, 1, 2, 3], normalize: 'mean', fractionBits: 10, maxAbs: 64 }],
  ] as const) {
    it(`${name} split across 2, 3 and 5 hosts equals plaintext Lloyd on the union each time`, async () => {
      const table = load();
      for (const hosts of [2, 3, 5]) {
        const run: FederatedRun = { ...o, init: [...o.init] };
        const { outcomes, status } = await federate(s.cs.url, table, hosts, run);
        assert.equal((status as { state: string }).state, 'done', `${hosts} hosts`);
        assertEqualsReference(outcomes, table, run);
      }
    });
  }

  it('an empty cluster keeps its centre', async () => {
    // Two identical starts: every record ties to the first, the second cluster empties and stays.
    const table = { columns: ['x'], rows: [[0], [0], [10], [10], [0], [10]] };
    const o: FederatedRun = { k: 2, init: [0, 1], normalize: 'none', maxIter: 1, fractionBits: 4, maxAbs: 16 };
    const { outcomes } = await federate(s.cs.url, table, 2, o);
    assertEqualsReference(outcomes, table, o);
    assert.deepEqual(outcomes[0]!.sizes, [6n, 1n]);
    assert.deepEqual(outcomes[0]!.sums[1], [0n]);
  });
});
