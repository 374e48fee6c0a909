/**
 * k-means through the real services: owners upload under their own keys over HTTP, a granted query
 * client runs the job and decrypts; the result must equal plaintext Lloyd's on the same fixed-point
 * data from the same start.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { FixedPointCodec } from '../../src/crypto/index.js';
import { parseNumericCsv, type NumericTable } from '../../src/clients/csv.js';
import { DataOwner } from '../../src/clients/data-owner.js';
import { QueryClient } from '../../src/clients/query-client.js';
import { lloyd } from '../../src/analytics/kmeans-plain.js';
import { startServices, fixture, type Services } from './services-harness.js';

const iris = () => parseNumericCsv(readFileSync(new URL('../../../data/iris.csv', import.meta.url), 'utf8'), ['label']);

async function clusterAcrossOwners(
  s: Services,
  table: NumericTable,
  owners: number,
  k: number,
  init: number[],
  codec: FixedPointCodec,
  pack: (owner: number) => boolean = () => true,
) {
  const client = await QueryClient.register(s.cs.url, 'analyst');
  const per = Math.ceil(table.rows.length / owners);
  const datasets: string[] = [];
  for (let w = 0; w < owners; w++) {
    const owner = await DataOwner.register(s.cs.url, `hospital ${w}`);
    const id = await owner.upload(`part ${w}`, { columns: table.columns, rows: table.rows.slice(w * per, (w + 1) * per) }, codec, {
      chunkRows: 40,
      pack: pack(w),
    });
    await owner.grant(id, client.id);
    datasets.push(id);
  }
  const job = await client.submitKMeans({ datasets, k, maxIter: 50, initIndices: init });
  const status = await client.waitFor(job);
  assert.equal(status.state, 'done', status.error ?? '');
  return client.kmeansResult(job);
}

function assertEqualsPlaintext(
  outcome: Awaited<ReturnType<typeof clusterAcrossOwners>>,
  table: NumericTable,
  codec: FixedPointCodec,
  init: number[],
) {
  const encoded = table.rows.map((r) => codec.encodeRow(r));
  const plain = lloyd(encoded, init, 50);
  assert.deepEqual(outcome.assignments, plain.assignments);
  assert.deepEqual(outcome.sizes, plain.sizes.map(Number));
  assert.deepEqual(outcome.sums, plain.sums);
  assert.equal(outcome.iterations, plain.iterations);
  assert.equal(outcome.converged, plain.converged);
  const scale = 2 ** codec.fractionBits;
  outcome.centroids.forEach((c, j) =>
    c.forEach((x, a) => assert.ok(Math.abs(x - Number(plain.sums[j]![a]!) / Number(plain.sizes[j]!) / scale) <= 1 / scale)),
  );
}

describe('k-means through the services (512-bit keys)', () => {
  let s: Services;
  before(async () => {
    s = await startServices();
  });
  after(() => s.close());

  it('iris, k = 3, three owners: equals plaintext Lloyd from the same start', async () => {
    const table = iris();
    const codec = new FixedPointCodec({ fractionBits: 16, maxAbs: 8 });
    const init = [0, 51, 101];
    assertEqualsPlaintext(await clusterAcrossOwners(s, table, 3, 3, init, codec), table, codec, init);
  });

  it('owner-packed and one-value-per-ciphertext uploads mix in one job: equals plaintext Lloyd', async () => {
    const table = iris();
    const codec = new FixedPointCodec({ fractionBits: 16, maxAbs: 8 });
    const init = [0, 51, 101];
    assertEqualsPlaintext(await clusterAcrossOwners(s, table, 3, 3, init, codec, (w) => w !== 1), table, codec, init);
    // A packed upload records the slot width its range implies; an unpacked one none.
    const owner = await DataOwner.register(s.cs.url, 'packer');
    const id = await owner.upload('packed', { columns: table.columns, rows: table.rows.slice(0, 40) }, codec, { chunkRows: 40 });
    const d = (await owner.datasets()).find((x) => x.id === id)!;
    assert.equal(d.packSlotBits, codec.maxEncoded.toString(2).length + 42);
    const plain = await owner.upload('plain', { columns: table.columns, rows: table.rows.slice(0, 40) }, codec, { pack: false });
    assert.equal((await owner.datasets()).find((x) => x.id === plain)!.packSlotBits, null);
  });

  it('wine, k = 3, two owners, 13 attributes: equals plaintext Lloyd', async () => {
    const table = parseNumericCsv(fixture('wine.csv'), ['label']);
    const codec = new FixedPointCodec({ fractionBits: 12, maxAbs: 1700 });
    const init = [0, 60, 130];
    assertEqualsPlaintext(await clusterAcrossOwners(s, table, 2, 3, init, codec), table, codec, init);
  });

  it('seeded synthetic data with negative values, k = 4, four owners', async () => {
    const centres = [
      [-40, -40],
      [40, -40],
      [-40, 40],
      [40, 40],
    ];
    let seed = 12345;
    const rand = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31 - 0.5;
    const rows = Array.from({ length: 80 }, (_, i) => centres[i % 4]!.map((c) => c + 20 * rand()));
    const table = { columns: ['x', 'y'], rows };
    const codec = new FixedPointCodec({ fractionBits: 10, maxAbs: 64 });
    const init = [0, 1, 2, 3];
    const out = await clusterAcrossOwners(s, table, 4, 4, init, codec);
    assertEqualsPlaintext(out, table, codec, init);
    assert.ok(
      out.centroids.some((c) => c[0]! < 0 && c[1]! < 0),
      'a cluster in the negative quadrant',
    );
  });
});
