import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { add, randomBelow, toSigned, type Ciphertext } from '../../src/crypto/index.js';
import {
  sct,
  sctBounded,
  sctOwnerPacks,
  packValues,
  ownerSlotBits,
  secureMultiply,
  secureSquare,
  secureDistances,
  secureCompare,
  secureArgmin,
  deltaBits,
  checkDistanceBudget,
  BitBudgetError,
  unpack,
  innerDistances,
  blindCentroids,
  shareRecords,
  newShareId,
  type RecordShare,
} from '../../src/protocols/index.js';
import { harness, type Harness } from './harness.js';
import { randomSigned } from '../helpers.js';

function randomSmall(bound: bigint): bigint {
  return randomBelow(2n * bound + 1n) - bound;
}

for (const kind of ['memory', 'http'] as const) {
  describe(`protocols over the ${kind} transport, 512-bit N`, () => {
    let h: Harness;
    before(async () => {
      h = await harness(kind);
    });
    after(() => h.close());

    it('SCT moves ciphertexts to another key without changing the plaintext', async () => {
      const N = h.owner.publicKey.params.N;
      const ms = [0n, 1n, -1n, N / 2n, -(N / 2n - 1n), ...Array.from({ length: 20 }, () => randomSigned(N))];
      const job = h.core.createJobKey(); // plain SCT starts only from a job key (the key server's policy)
      const out = await sct(h.alice, job.encryptBatch(ms), h.target.publicKey);
      assert.ok(out.every((c) => c.publicKey.equals(h.target.publicKey)));
      assert.deepEqual(h.target.decryptBatch(out), ms);
    });

    it('bounded, packed SCT moves values below 2^bits exactly, negatives and the bound included', async () => {
      const bits = 40;
      const B = (1n << BigInt(bits)) - 1n;
      const ms = [0n, 1n, -1n, B, -B, ...Array.from({ length: 40 }, () => randomSmall(B))];
      const job = h.core.createJobKey(); // bounded SCT goes only into a job key
      const out = await sctBounded(h.alice, h.owner.publicKey.encryptBatch(ms), job, bits);
      assert.deepEqual(h.core.msk.decryptBatch(out), ms);
    });

    it("an owner's packs convert to one ciphertext per value, exactly; a column selection answers only that column", async () => {
      const bits = 21;
      const B = (1n << BigInt(bits)) - 1n;
      const ms = [0n, 1n, -1n, B, -B, -B, B, ...Array.from({ length: 60 }, () => randomSmall(B))];
      const N = h.owner.publicKey.params.N;
      const slotBits = ownerSlotBits(B);
      const packs = h.owner.publicKey.encryptBatch(packValues(ms, N, slotBits));
      assert.ok(packs.length < ms.length / 5, `${packs.length} packs for ${ms.length} values`);
      const job = h.core.createJobKey();
      assert.deepEqual(h.core.msk.decryptBatch(await sctOwnerPacks(h.alice, packs, ms.length, job, bits)), ms);
      const kms = await sctOwnerPacks(h.alice, packs, ms.length, job, bits, { kms: true });
      assert.ok(kms.every((c) => c.A === 1n));
      assert.deepEqual(h.core.msk.decryptBatch(kms), ms);
      const column = await sctOwnerPacks(h.alice, packs, ms.length, job, bits, { select: { stride: 3, at: 1 } });
      assert.deepEqual(
        h.core.msk.decryptBatch(column),
        ms.filter((_, i) => i % 3 === 1),
      );
    });

    it("an owner's pack with a value beyond its range is refused with the value's position", async () => {
      const bits = 21;
      const B = (1n << BigInt(bits)) - 1n;
      const N = h.owner.publicKey.params.N;
      const ms = Array.from({ length: 20 }, () => randomSmall(B));
      ms[13] = 1n << 62n; // an owner who encoded far beyond the range it declared (into the slot's guard bit)
      const packs = h.owner.publicKey.encryptBatch(packValues(ms, N, ownerSlotBits(B)));
      await assert.rejects(
        sctOwnerPacks(h.alice, packs, ms.length, h.core.createJobKey(), bits),
        (e: Error & { code?: string; detail?: { index: number } }) => {
          assert.equal(e.code, 'ERR_VALUE_RANGE');
          assert.equal(e.detail!.index, 13);
          return true;
        },
      );
      // A pack count that cannot hold the values is refused before anything is sent.
      await assert.rejects(sctOwnerPacks(h.alice, packs.slice(1), ms.length, h.core.createJobKey(), bits), /cannot hold/);
    });

    it('SM and secure square equal the plaintext products (mod N), negatives and zeros included', async () => {
      const pk = h.owner.publicKey;
      const N = pk.params.N;
      const bound = 1n << 200n; // products stay below N/2 at 512 bits
      const a = [0n, 0n, -1n, bound, -bound, ...Array.from({ length: 20 }, () => randomSmall(bound))];
      const b = [0n, 5n, -1n, -bound, -bound, ...Array.from({ length: 20 }, () => randomSmall(bound))];
      const prod = await secureMultiply(h.alice, pk.encryptBatch(a), pk.encryptBatch(b));
      assert.deepEqual(
        h.owner.decryptBatch(prod),
        a.map((x, i) => x * b[i]!),
      );
      const sq = await secureSquare(h.alice, pk.encryptBatch(a));
      assert.deepEqual(
        h.owner.decryptBatch(sq),
        a.map((x) => x * x),
      );
      // Large operands: the identity holds modulo N.
      const big = [randomSigned(N), randomSigned(N)];
      const pbig = await secureMultiply(h.alice, pk.encryptBatch(big), pk.encryptBatch([big[1]!, big[0]!]));
      assert.equal(h.owner.decrypt(pbig[0]!), toSigned((((big[0]! * big[1]!) % N) + N) % N, N));
    });

    it('SDM gives Omega_ij = sum (|c_j| d - s_j)^2', async () => {
      const pk = h.owner.publicKey;
      const D = 1n << 30n;
      const n = 6,
        m = 3,
        k = 3;
      const recs = Array.from({ length: n }, () => Array.from({ length: m }, () => randomSmall(D)));
      const sizes = [1n, 4n, 7n];
      const sums = sizes.map((c) => Array.from({ length: m }, () => randomSmall(D) * c));
      const omegas = await secureDistances(
        h.alice,
        recs.map((r) => pk.encryptBatch(r)),
        sums.map((s) => pk.encryptBatch(s)),
        sizes,
        { maxAbs: D, maxCount: 7 },
      );
      for (let i = 0; i < n; i++) {
        for (let j = 0; j < k; j++) {
          const want = recs[i]!.reduce((acc, d, a) => acc + (sizes[j]! * d - sums[j]![a]!) ** 2n, 0n);
          assert.equal(h.owner.decrypt(omegas[i]![j]!), want);
        }
      }
    });

    it('shared-record distances give phi_ij = -2 |c_j| <x_i, s_j> + ||s_j||^2 in KMS form; a lost share is refused', async () => {
      const D = 1n << 20n;
      const n = 7,
        m = 3;
      const sizes = [1n, 3n, 9n];
      const recs = [
        Array(m).fill(0n),
        Array(m).fill(D - 1n),
        Array(m).fill(1n - D),
        ...Array.from({ length: n - 3 }, () => Array.from({ length: m }, () => randomSmall(D - 1n))),
      ];
      const jobKey = h.core.createJobKey();
      const share: RecordShare = { id: newShareId(), blinds: [] };
      const flat = await sctBounded(
        h.alice,
        recs.flat().map((x) => h.owner.publicKey.encrypt(x)),
        jobKey,
        21,
        { kms: true, share: { ...share, offset: 0 } },
      );
      const records = recs.map((_, i) => flat.slice(i * m, (i + 1) * m));
      // Centroid sums: sums of |c_j| records (with repeats), as the k-means loop makes them.
      const members = sizes.map((c) => Array.from({ length: Number(c) }, () => Number(randomBelow(BigInt(n)))));
      const sums = members.map((idx) => Array.from({ length: m }, (_, d) => idx.map((i) => records[i]![d]!).reduce(add)));
      const plainSums = members.map((idx) => Array.from({ length: m }, (_, d) => idx.reduce((acc, i) => acc + recs[i]![d]!, 0n)));
      const bounds = { maxAbs: D, maxCount: 9 };
      const centroids = await blindCentroids(h.alice, sums, sizes, bounds);
      const phis = await innerDistances(h.alice, share, 2, records.slice(2), centroids);
      const msk = h.core.msk;
      for (let i = 2; i < n; i++) {
        for (let j = 0; j < sizes.length; j++) {
          const s = plainSums[j]!;
          const want = -2n * sizes[j]! * recs[i]!.reduce((acc, x, d) => acc + x * s[d]!, 0n) + s.reduce((acc, x) => acc + x * x, 0n);
          assert.equal(phis[i - 2]![j]!.A, 1n);
          assert.equal(msk.decrypt(phis[i - 2]![j]!), want);
        }
      }
      // A share the key server does not have: a typed refusal, and sharing again works.
      const lost = { id: newShareId(), blinds: share.blinds };
      await assert.rejects(innerDistances(h.alice, lost, 0, records, centroids), (e: Error & { code?: string }) => e.code === 'ERR_UNKNOWN_SHARE');
      const again = await shareRecords(h.alice, records, 21);
      const phi0 = await innerDistances(h.alice, again, 0, records.slice(0, 1), centroids);
      assert.equal(
        msk.decrypt(phi0[0]![0]!),
        plainSums[0]!.reduce((acc, x) => acc + x * x, 0n),
      );
      // The key server's policy: plain SCT only from a job key, bounded SCT only into one.
      const notJobKey = (e: Error & { code?: string }) => e.code === 'ERR_NOT_JOB_KEY';
      await assert.rejects(sct(h.alice, [h.owner.publicKey.encrypt(1n)], h.target.publicKey), notJobKey);
      await assert.rejects(sctBounded(h.alice, [h.owner.publicKey.encrypt(1n)], h.target.publicKey, 8), notJobKey);
      // KMS form is only for job keys.
      await assert.rejects(
        sctBounded(h.alice, [h.owner.publicKey.encrypt(1n)], h.target.publicKey, 8, { kms: true }),
        (e: Error & { code?: string }) => e.code === 'ERR_NOT_JOB_KEY',
      );
    });

    it('SDC returns whether a is at least as near as b, ties to a', async () => {
      const pk = h.owner.publicKey;
      const cases: Array<[bigint, bigint, bigint, bigint]> = [
        [10n, 20n, 1n, 1n],
        [20n, 10n, 1n, 1n],
        [7n, 7n, 1n, 1n],
        [0n, 0n, 3n, 5n],
        [4n * 9n, 9n * 4n, 2n, 3n], // equal distances at different sizes: tie
        [100n, 1n, 1n, 10n],
        [0n, 1n, 1n, 1n],
        [1n, 0n, 1n, 1n],
      ];
      for (let i = 0; i < 12; i++) cases.push([randomBelow(1n << 60n), randomBelow(1n << 60n), 1n + randomBelow(50n), 1n + randomBelow(50n)]);
      const got = await secureCompare(
        h.alice,
        cases.map(([oa, ob, ca, cb]) => ({ omegaA: pk.encrypt(oa), omegaB: pk.encrypt(ob), sizeA: ca, sizeB: cb })),
        140,
      );
      assert.deepEqual(
        got,
        cases.map(([oa, ob, ca, cb]) => cb * cb * oa - ca * ca * ob <= 0n),
      );
    });

    it('SMDM returns the plaintext argmin with ties to the lower index', async () => {
      const pk = h.owner.publicKey;
      const rows: bigint[][] = [
        [5n, 5n, 5n, 5n],
        [9n, 3n, 3n, 1n],
        [0n, 0n, 7n, 0n],
        [8n, 6n, 4n, 4n],
        ...Array.from({ length: 10 }, () => Array.from({ length: 4 }, () => randomBelow(1000n))),
      ];
      const sizes = [1n, 1n, 1n, 1n];
      const best = await secureArgmin(
        h.alice,
        rows.map((r) => pk.encryptBatch(r)),
        sizes,
        80,
      );
      assert.deepEqual(
        best,
        rows.map((r) => r.indexOf(r.reduce((a, b) => (b < a ? b : a)))),
      );
    });
  });
}

describe('protocols at 2048-bit N over HTTP, both servers with worker pools', () => {
  let h: Harness;
  before(async () => {
    h = await harness('http', 2048, true);
  });
  after(() => h.close());

  it('SCT, SM, square, SDC and SMDM decrypt to the plaintext answers', async () => {
    const pk = h.owner.publicKey;
    const N = pk.params.N;
    const ms = [0n, -1n, N / 2n, ...Array.from({ length: 9 }, () => randomSigned(N))];
    assert.deepEqual(h.target.decryptBatch(await sct(h.alice, h.core.createJobKey().encryptBatch(ms), h.target.publicKey)), ms);
    const a = [0n, -5n, 1n << 900n, -(1n << 1000n), 1n, 2n, 3n, 4n, -9n, 0n];
    const b = [7n, -5n, -(1n << 1000n), -(1n << 1000n), -1n, 2n, -3n, 4n, 9n, 0n];
    assert.deepEqual(
      h.owner.decryptBatch(await secureMultiply(h.alice, pk.encryptBatch(a), pk.encryptBatch(b))),
      a.map((x, i) => x * b[i]!),
    );
    assert.deepEqual(
      h.owner.decryptBatch(await secureSquare(h.alice, pk.encryptBatch(a))),
      a.map((x) => x * x),
    );
    const rows = [
      [3n, 1n, 2n],
      [2n, 2n, 9n],
      [7n, 6n, 5n],
    ];
    assert.deepEqual(
      await secureArgmin(
        h.alice,
        rows.map((r) => pk.encryptBatch(r)),
        [1n, 1n, 1n],
        64,
      ),
      [1, 0, 2],
    );
  });

  it('a job in KMS form: bounded SCT with a share, shared-record distances and SMDM give the plaintext argmin', async () => {
    const D = (1n << 24n) - 1n;
    const recs = [
      [0n, 0n],
      [D, -D],
      [-D, D],
      [5n, -7n],
      [D, D],
      [-D, -D],
    ];
    const jobKey = h.core.createJobKey();
    const share: RecordShare = { id: newShareId(), blinds: [] };
    const flat = await sctBounded(
      h.alice,
      recs.flat().map((x) => h.owner.publicKey.encrypt(x)),
      jobKey,
      25,
      { kms: true, share: { ...share, offset: 0 } },
    );
    const records = recs.map((_, i) => flat.slice(2 * i, 2 * i + 2));
    // Clusters: {0, 3} and {1} and {4, 5}; sums by homomorphic addition as in the k-means loop.
    const members = [[0, 3], [1], [4, 5]];
    const sums = members.map((idx) => [0, 1].map((d) => idx.map((i) => records[i]![d]!).reduce(add)));
    const sizes = members.map((idx) => BigInt(idx.length));
    const phis = await innerDistances(h.alice, share, 0, records, await blindCentroids(h.alice, sums, sizes, { maxAbs: D, maxCount: 6 }));
    const best = await secureArgmin(h.alice, phis, sizes, deltaBits({ maxAbs: D, dims: 2, maxCount: 6 }));
    const plain = recs.map((x) => {
      const d = members.map((idx) =>
        x.reduce((acc, v, a) => {
          const s = idx.reduce((t, i) => t + recs[i]![a]!, 0n);
          const n = BigInt(idx.length);
          return acc + ((n * v - s) ** 2n * (6n * 6n)) / (n * n);
        }, 0n),
      );
      return d.indexOf(d.reduce((p, q) => (q < p ? q : p)));
    });
    assert.deepEqual(best, plain);
  });
});

describe('bit budgets', () => {
  it('refuse a distance computation that would not fit below N/2 with 40 bits of blinding', () => {
    const N = 1n << 511n;
    checkDistanceBudget(N, { maxAbs: 1n << 20n, dims: 4, maxCount: 150 });
    assert.throws(() => checkDistanceBudget(1n << 200n, { maxAbs: 1n << 60n, dims: 13, maxCount: 100000 }), BitBudgetError);
    assert.ok(deltaBits({ maxAbs: 1n << 20n, dims: 4, maxCount: 150 }) < 200);
  });

  it('SDC works at the edge of the budget (blinding between 40 and 64 bits, one slot per pack)', async () => {
    const h = await harness('memory');
    const pk = h.owner.publicKey;
    const dBits = pk.params.bits - 4 - 50;
    const got = await secureCompare(
      h.alice,
      [
        { omegaA: pk.encrypt(3n), omegaB: pk.encrypt(5n), sizeA: 1n, sizeB: 1n },
        { omegaA: pk.encrypt(5n), omegaB: pk.encrypt(3n), sizeA: 1n, sizeB: 1n },
      ],
      dBits,
    );
    assert.deepEqual(got, [true, false]);
  });

  it('unpacking refuses slots outside their declared range instead of corrupting neighbours', () => {
    const N = (1n << 511n) + 1n;
    assert.deepEqual(unpack([(5n << 10n) | 7n], N, 10, 2), [7n, 5n]);
    assert.throws(() => unpack([(600n << 10n) | 7n], N, 10, 2), /declared range/);
    assert.throws(() => unpack([1n << 25n], N, 10, 2), /declared range/);
  });

  it('SDC refuses when the comparison values leave too little room', async () => {
    const h = await harness('memory');
    const c = h.owner.publicKey.encrypt(1n) as Ciphertext;
    await assert.rejects(secureCompare(h.alice, [{ omegaA: c, omegaB: c, sizeA: 1n, sizeB: 1n }], 500), BitBudgetError);
  });
});
