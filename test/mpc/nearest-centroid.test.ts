/**
 * The k-means assignment on shares (mpc/nearest-centroid.ts): with a dealer, the nearest cluster of
 * every record from the key server's share and the iteration's encrypted sums equals the plaintext
 * rule (Omega_j / |c_j|^2 smallest, ties to the lower index), across session blocks; what the key
 * server opens is uniform whatever the data (two-sample KS with a negative control); malformed or
 * unauthorised sessions are refused and the key server keeps serving.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { add, randomBelow, readKeyFile, type Ciphertext } from '../../src/crypto/index.js';
import { newShareId, sctBounded, deltaBits, recordLayout, unpackSums, shareRecordPacks, type RecordShare } from '../../src/protocols/index.js';
import { centroidTerms, nearestCentroids, NEAREST_CENTROID } from '../../src/mpc/nearest-centroid.js';
import { startRemote } from '../../src/mpc/server-channel.js';
import { startDealerServer, type DealerServerHandle } from '../../src/services/dealer-server.js';
import { dealerProviders, TrustedDealer } from '../../src/mpc/provider/dealer.js';
import * as wide from '../../src/mpc/wide-ring.js';
import { harness, ksSameDistribution, type Harness } from '../protocols/harness.js';
import { secureKMeans } from '../../src/analytics/kmeans-secure.js';
import { lloyd } from '../../src/analytics/kmeans-plain.js';

/** argmin_j Omega_ij / |c_j|^2 with Omega_ij = || |c_j| x_i - S_j ||^2, by cross-multiplying, ties to the lower index. */
function reference(xs: bigint[][], sums: bigint[][], sizes: bigint[]): number[] {
  const omega = (x: bigint[], j: number) => x.reduce((acc, v, d) => acc + (sizes[j]! * v - sums[j]![d]!) ** 2n, 0n);
  return xs.map((x) => sizes.reduce((best, _, j) => (omega(x, j) * sizes[best]! ** 2n < omega(x, best) * sizes[j]! ** 2n ? j : best), 0));
}

describe('the assignment on shares (dealer)', () => {
  let h: Harness;
  let dealer: DealerServerHandle;
  before(async () => {
    dealer = await startDealerServer({ dataDir: mkdtempSync(join(tmpdir(), 'cm-nearest-')), port: 0, keyServerPort: 0 });
    h = await harness('memory', 512, false, {
      computeServer: { url: dealer.computeServerUrl, key: readKeyFile(dealer.keyFiles.computeServer) },
      keyServer: { url: dealer.keyServerUrl, key: readKeyFile(dealer.keyFiles.keyServer) },
    });
  });
  after(async () => {
    await h.close();
    await dealer.close();
  });

  /** n records of m values below 2^bits, converted to a job key with the key server keeping the share. */
  async function sharedRecords(xs: bigint[][], bits: number) {
    const jobKey = h.core.createJobKey();
    const share: RecordShare = { id: newShareId(), blinds: [] };
    const flat = await sctBounded(h.alice, h.owner.publicKey.encryptBatch(xs.flat()), jobKey, bits, { kms: true, share: { ...share, offset: 0 } });
    const m = xs[0]!.length;
    return { share, records: xs.map((_, i) => flat.slice(i * m, (i + 1) * m)) };
  }

  for (const [k, m] of [
    [2, 1],
    [3, 2],
    [5, 3],
  ] as const) {
    it(`k = ${k}, m = ${m}: equals the plaintext rule, ties included, across blocks`, async () => {
      const n = 60;
      const bits = 12;
      const xs = Array.from({ length: n }, () => Array.from({ length: m }, () => randomBelow(1n << BigInt(bits)) - (1n << BigInt(bits - 1))));
      const { share, records } = await sharedRecords(xs, bits);
      // Sums of |c_j| records with repeats, as the loop makes them; cluster 1 a copy of cluster 0 so that every record ties.
      const sizes = Array.from({ length: k }, (_, j) => BigInt(1 + ((j * 3) % 4)));
      sizes[1] = sizes[0]!;
      const members = sizes.map((c) => Array.from({ length: Number(c) }, () => Number(randomBelow(BigInt(n)))));
      members[1] = members[0]!;
      const sums: Ciphertext[][] = members.map((idx) =>
        Array.from({ length: m }, (_, d) => idx.map((i) => records[i]![d]!).reduce((a, b) => add(a, b))),
      );
      const plain = members.map((idx) => Array.from({ length: m }, (_, d) => idx.reduce((acc, i) => acc + xs[i]![d]!, 0n)));
      const bounds = { maxAbs: 1n << BigInt(bits), dims: m, maxCount: n };
      const terms = await centroidTerms(h.alice, sums, sizes, bounds, deltaBits(bounds));
      const got = [...(await nearestCentroids(h.alice, share, 0, 25, terms)), ...(await nearestCentroids(h.alice, share, 25, n - 25, terms))];
      assert.deepEqual(got, reference(xs, plain, sizes));
      assert.ok(!got.includes(1), 'a tie between clusters 0 and 1 goes to 0');
    });
  }

  it('records one to a pack: sums unpack to their values, and a fresh share from the packs (a restarted key server) assigns the same', async () => {
    const n = 40;
    const m = 3;
    const bits = 12;
    const xs = Array.from({ length: n }, () => Array.from({ length: m }, () => randomBelow(1n << BigInt(bits)) - (1n << BigInt(bits - 1))));
    const jobKey = h.core.createJobKey();
    const layout = recordLayout(jobKey.params.N, m, n, bits)!;
    const share: RecordShare = { id: newShareId(), blinds: [] };
    // Two calls, as the conversion makes them: whole records each.
    const first = await sctBounded(h.alice, h.owner.publicKey.encryptBatch(xs.slice(0, 10).flat()), jobKey, bits, {
      kms: true,
      share: { ...share, offset: 0 },
      records: layout,
    });
    const rest = await sctBounded(h.alice, h.owner.publicKey.encryptBatch(xs.slice(10).flat()), jobKey, bits, {
      kms: true,
      share: { ...share, offset: 10 * m },
      records: layout,
    });
    const packs = [...first, ...rest];
    assert.equal(packs.length, n, 'one ciphertext per record');
    assert.ok(packs.every((c) => c.A === 1n));
    const sizes = [7n, 1n, 12n];
    const members = sizes.map((c, j) => Array.from({ length: Number(c) }, (_, t) => (j * 13 + t * 3) % n));
    const sums = members.map((idx) => idx.map((i) => packs[i]!).reduce((a, b) => add(a, b)));
    const plain = members.map((idx) => Array.from({ length: m }, (_, d) => idx.reduce((acc, i) => acc + xs[i]![d]!, 0n)));
    const values = await unpackSums(h.alice, sums, sizes, layout, n);
    assert.deepEqual(
      values.map((row) => h.core.msk.decryptBatch(row)),
      plain,
    );
    const bounds = { maxAbs: 1n << BigInt(bits), dims: m, maxCount: n };
    const terms = await centroidTerms(h.alice, values, sizes, bounds, deltaBits(bounds));
    const want = reference(xs, plain, sizes);
    assert.deepEqual(await nearestCentroids(h.alice, share, 0, n, terms), want);
    const again = await shareRecordPacks(h.alice, packs, layout);
    assert.notEqual(again.id, share.id);
    assert.deepEqual(await nearestCentroids(h.alice, again, 0, n, terms), want);
  });

  it('k-means on record packs equals plaintext Lloyd, and carries on when the key server loses the share (a restart)', async () => {
    const n = 48;
    const m = 2;
    const bits = 10;
    const xs = Array.from({ length: n }, (_, i) => [BigInt(((i % 3) * 300 + i * 7) % 500) - 250n, BigInt((i % 3) * 150) - 200n]);
    const jobKey = h.core.createJobKey();
    const layout = recordLayout(jobKey.params.N, m, n, bits)!;
    const share: RecordShare = { id: newShareId(), blinds: [] };
    const packs = await sctBounded(h.alice, h.owner.publicKey.encryptBatch(xs.flat()), jobKey, bits, {
      kms: true,
      share: { ...share, offset: 0 },
      records: layout,
    });
    const init = [0, 1, 2];
    const plain = lloyd(xs, init, 20);
    let dropped = false;
    const run = await secureKMeans(
      h.alice,
      packs.map((c) => [c]),
      {
        k: 3,
        maxIter: 20,
        initIndices: init,
        maxAbs: 1n << BigInt(bits),
        valueBits: bits,
        share,
        recordLayout: layout,
        chunkRecords: 20,
        // After the first iteration the key server forgets every share, as a restart does.
        onCheckpoint: async () => {
          if (!dropped) await h.core.shares.drop(share.id);
          dropped = true;
        },
      },
    );
    assert.deepEqual(run.assignments, plain.assignments);
    assert.deepEqual(run.sizes, plain.sizes);
    assert.deepEqual(
      run.sums.map((row) => h.core.msk.decryptBatch(row)),
      plain.sums,
    );
    assert.equal(run.iterations, plain.iterations);
    assert.ok(dropped);
  });

  it("the key server's openings are uniform whatever the data; a view that depends on the data is caught", async () => {
    const seen: bigint[] = [];
    h.core.observer = (protocol, values) => protocol === NEAREST_CENTROID && seen.push(...values);
    const bits = 12;
    const view = async (value: bigint) => {
      seen.length = 0;
      const xs = Array.from({ length: 8 }, () => [value, value]);
      const { share, records } = await sharedRecords(xs, bits);
      const bounds = { maxAbs: 1n << BigInt(bits), dims: 2, maxCount: 8 };
      const out: number[] = [];
      for (let rep = 0; rep < 12; rep++) {
        const terms = await centroidTerms(h.alice, [records[0]!, records[1]!, records[2]!], [1n, 1n, 1n], bounds, deltaBits(bounds));
        await nearestCentroids(h.alice, share, 0, 8, terms);
        const beta = terms.slotBits - 42;
        out.push(...seen.map((v) => Number((v * 1_000_000n) >> BigInt(beta + 40)) / 1_000_000));
        seen.length = 0;
      }
      return out;
    };
    const zeros = await view(0n);
    const high = await view((1n << BigInt(bits - 1)) - 1n);
    assert.ok(ksSameDistribution(zeros, high).same, 'V + r and G + r do not depend on the data');
    // Negative control: the same values without the masks are told apart at once.
    assert.ok(
      !ksSameDistribution(
        zeros.map(() => 0),
        high.map((_, i) => (i % 7) / 7),
      ).same,
    );
    h.core.observer = undefined;
  });

  it('the dealer makes wide matrix triples: C = A B in Z_2^l from the two shares', async () => {
    const [p0, p1] = dealerProviders();
    const [t0, t1] = await Promise.all([p0.wideMatmulTriple(130, 3, 2, 4), p1.wideMatmulTriple(130, 3, 2, 4)]);
    const a = wide.add(t0.a, t1.a);
    const b = wide.add(t0.b, t1.b);
    assert.deepEqual(wide.toBigints(wide.add(t0.c, t1.c)), wide.toBigints(wide.matmul(a, b, 3, 2, 4)));
    // Empty or oversized requests are refused before any work (a zero dimension would hide a huge A).
    const dealer = new TrustedDealer();
    await assert.rejects(dealer.correction({ kind: 'wideMatmul', bits: 512, m: 8192, k: 8192, n: 0 }), /malformed or larger/);
    await assert.rejects(dealer.correction({ kind: 'wideMatmul', bits: 1024, m: 1, k: 1, n: 1 }), /malformed or larger/);
    await assert.rejects(dealer.correction({ kind: 'wideMatmul', bits: 128, m: 4096, k: 64, n: 64 }), /malformed or larger/);
  });

  it('refuses malformed and unknown-share sessions and keeps serving', async () => {
    const pk = h.core.createJobKey();
    const ok = { key: pk.fingerprint, share: newShareId(), first: 0, records: 4, k: 2, m: 1, deltaBits: 40, slotBits: 100, provider: 'dealer' };
    await assert.rejects(startRemote(h.alice.transport, NEAREST_CENTROID, 'nc-bad-1', ok), /share/);
    await assert.rejects(startRemote(h.alice.transport, NEAREST_CENTROID, 'nc-bad-2', { ...ok, records: 1 << 20 }));
    await assert.rejects(startRemote(h.alice.transport, NEAREST_CENTROID, 'nc-bad-3', { ...ok, provider: undefined }));
    await assert.rejects(startRemote(h.alice.transport, NEAREST_CENTROID, 'nc-bad-4', { ...ok, key: h.owner.publicKey.fingerprint }));
    // Still serving.
    const { share, records } = await sharedRecords([[1n], [9n]], 8);
    const terms = await centroidTerms(h.alice, [[records[0]![0]!], [records[1]![0]!]], [1n, 1n], { maxAbs: 256n, dims: 1, maxCount: 2 }, 60);
    assert.deepEqual(await nearestCentroids(h.alice, share, 0, 2, terms), [0, 1]);
  });
});
