import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { FixedPointCodec, randomBelow } from '../../src/crypto/index.js';
import { lloyd } from '../../src/analytics/kmeans-plain.js';
import { secureKMeans, KMeansInputError } from '../../src/analytics/kmeans-secure.js';
import { newShareId, type RecordShare } from '../../src/protocols/inner-distances.js';
import { parseNumericCsv } from '../../src/clients/csv.js';
import { sct, sctBounded } from '../../src/protocols/index.js';
import { harness } from '../protocols/harness.js';
import { testSystem } from '../helpers.js';

function irisEncoded(codec: FixedPointCodec): bigint[][] {
  const t = parseNumericCsv(readFileSync(new URL('../../../data/iris.csv', import.meta.url), 'utf8'), ['label']);
  return t.rows.map((r) => codec.encodeRow(r));
}

describe('plaintext Lloyd reference', () => {
  it('ties go to the lower index, empty clusters keep their state, convergence stops on a repeat', () => {
    const data = [[0n], [0n], [10n], [10n]];
    const first = lloyd(data, [0, 1], 1);
    assert.deepEqual(first.assignments, [0, 0, 0, 0]); // clusters 0 and 1 start equal: everything ties to 0
    assert.deepEqual(first.sizes, [4n, 1n]); // cluster 1 emptied and kept its initial sum and size
    assert.deepEqual(first.sums, [[20n], [0n]]);
    assert.equal(first.converged, false);
    const r = lloyd(data, [0, 1], 10);
    assert.deepEqual(r.assignments, [1, 1, 0, 0]);
    assert.equal(r.converged, true);
    assert.equal(r.iterations, 3);
    const two = lloyd([[0n], [1n], [10n], [11n]], [0, 3], 10);
    assert.deepEqual(two.assignments, [0, 0, 1, 1]);
    assert.equal(two.iterations, 2);
  });
});

describe('encrypted k-means equals plaintext Lloyd from the same start (512-bit keys, in-memory)', () => {
  it('iris, k = 3, under the job key after SCT from several owner keys', async () => {
    const h = await harness('memory');
    const codec = new FixedPointCodec({ fractionBits: 8, maxAbs: 10 });
    const data = irisEncoded(codec);
    const owners = [h.owner, h.target];
    const encrypted = data.map((row, i) => owners[i % 2]!.publicKey.encryptBatch(row));
    const jobKey = h.core.createJobKey();
    const converted: import('../../src/crypto/index.js').Ciphertext[][] = [];
    for (const owner of owners) {
      const mine = encrypted.filter((_, i) => i % 2 === owners.indexOf(owner));
      const flat = await sctBounded(h.alice, mine.flat(), jobKey, 32);
      for (let r = 0; r < mine.length; r++) converted.push(flat.slice(r * 4, r * 4 + 4));
    }
    // restore file order: owner 0 had even rows, owner 1 odd rows
    const half = Math.ceil(data.length / 2);
    const records = data.map((_, i) => converted[i % 2 === 0 ? i / 2 : half + (i - 1) / 2]!);
    const init = [0, 50, 100];
    const checkpoints: number[] = [];
    const secure = await secureKMeans(h.alice, records, {
      k: 3,
      maxIter: 30,
      initIndices: init,
      maxAbs: codec.maxEncoded,
      onCheckpoint: (cp) => void checkpoints.push(cp.iteration),
    });
    const plain = lloyd(data, init, 30);
    assert.deepEqual(secure.assignments, plain.assignments);
    assert.deepEqual(secure.sizes, plain.sizes);
    assert.equal(secure.iterations, plain.iterations);
    assert.equal(secure.converged, plain.converged);
    const msk = testSystem(512).msk;
    assert.deepEqual(
      secure.sums.map((s) => s.map((c) => msk.decrypt(c))),
      plain.sums,
    );
    assert.deepEqual(
      checkpoints,
      Array.from({ length: secure.iterations - 1 }, (_, i) => i + 1),
    );
  });

  it('seeded synthetic data with negative values, k = 4', async () => {
    const h = await harness('memory');
    const centres = [
      [-50, -50, 0],
      [50, -50, 10],
      [-50, 50, -10],
      [50, 50, 0],
    ];
    const data: bigint[][] = [];
    for (let i = 0; i < 60; i++) {
      const c = centres[i % 4]!;
      data.push(c.map((x) => BigInt(x * 16) + randomBelow(400n) - 200n));
    }
    const records = data.map((row) => h.owner.publicKey.encryptBatch(row));
    const init = [0, 1, 2, 3];
    const secure = await secureKMeans(h.alice, records, { k: 4, maxIter: 20, initIndices: init, maxAbs: 2000n, chunkRecords: 7 });
    const plain = lloyd(data, init, 20);
    assert.deepEqual(secure.assignments, plain.assignments);
    assert.deepEqual(
      secure.sums.map((s) => s.map((c) => h.owner.decrypt(c))),
      plain.sums,
    );
  });

  it('KMS-form records with a key-server share (the service path), share lost mid-run, k = 4, negatives', async () => {
    const h = await harness('memory');
    const centres = [
      [-50, -50, 0],
      [50, -50, 10],
      [-50, 50, -10],
      [50, 50, 0],
    ];
    const data: bigint[][] = [];
    for (let i = 0; i < 80; i++) data.push(centres[i % 4]!.map((x) => BigInt(x * 16) + randomBelow(400n) - 200n));
    const jobKey = h.core.createJobKey();
    const share: RecordShare = { id: newShareId(), blinds: [] };
    const flat = await sctBounded(
      h.alice,
      data.flat().map((x) => h.owner.publicKey.encrypt(x)),
      jobKey,
      11,
      { kms: true, share: { ...share, offset: 0 } },
    );
    assert.ok(flat.every((c) => c.A === 1n));
    const records = data.map((_, i) => flat.slice(i * 3, i * 3 + 3));
    const init = [0, 1, 2, 3];
    let evicted = false;
    let reshared = 0;
    h.core.observer = (protocol) => void (protocol === 'share' && reshared++);
    const secure = await secureKMeans(h.alice, records, {
      k: 4,
      maxIter: 20,
      initIndices: init,
      maxAbs: 2000n,
      valueBits: 11,
      chunkRecords: 30,
      share,
      // After the first iteration the key server loses the share (as after a restart): the loop
      // must share again and go on.
      onCheckpoint: async (cp) => {
        if (cp.iteration === 1) evicted = await h.core.shares.drop(share.id);
      },
    });
    const plain = lloyd(data, init, 20);
    assert.deepEqual(secure.assignments, plain.assignments);
    assert.deepEqual(secure.sizes, plain.sizes);
    assert.equal(secure.iterations, plain.iterations);
    assert.ok(evicted && secure.iterations >= 2 && reshared > 0);
    const msk = testSystem(512).msk;
    assert.deepEqual(
      secure.sums.map((s) => s.map((c) => msk.decrypt(c))),
      plain.sums,
    );
  });

  it('refuses k larger than the record count and bad initial indices', async () => {
    const h = await harness('memory');
    const records = [[h.owner.publicKey.encrypt(1n)], [h.owner.publicKey.encrypt(2n)]];
    await assert.rejects(secureKMeans(h.alice, records, { k: 3, maxIter: 5, initIndices: [0, 1, 1], maxAbs: 10n }), KMeansInputError);
    await assert.rejects(secureKMeans(h.alice, records, { k: 2, maxIter: 5, initIndices: [0, 0], maxAbs: 10n }), KMeansInputError);
    await assert.rejects(secureKMeans(h.alice, records, { k: 2, maxIter: 5, initIndices: [0, 5], maxAbs: 10n }), KMeansInputError);
  });
});
