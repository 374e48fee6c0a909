/**
 * What the key server learns. Every plaintext it decrypts is recorded; for two very different data
 * sets (all zeros, and all near the encoding bound) the recordings must be indistinguishable.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
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
  differenceBits,
  sdcMultiplierBits,
  innerDistances,
  blindCentroids,
  newShareId,
} from '../../src/protocols/index.js';
import { add, randomBelow } from '../../src/crypto/index.js';
import { harness, ksSameDistribution, type Harness } from './harness.js';

const BATCH = 300;

describe('leakage: the key server sees data-independent values', () => {
  let h: Harness;
  let seen: Map<string, bigint[]>;
  before(async () => {
    h = await harness('memory');
    seen = new Map();
    h.core.observer = (protocol, values) => {
      const list = seen.get(protocol) ?? [];
      list.push(...values);
      seen.set(protocol, list);
    };
  });
  after(() => h.close());

  /** Values Bob decrypted during f, scaled to [0, 1). */
  async function record(protocol: string, f: () => Promise<unknown>, scale?: bigint): Promise<number[]> {
    seen.clear();
    await f();
    const range = scale ?? h.owner.publicKey.params.N;
    return (seen.get(protocol) ?? []).map((v) => Number((v * 1_000_000n) / range) / 1_000_000);
  }

  const bound = 1n << 200n;
  const zeros = () => Array.from({ length: BATCH }, () => 0n);
  const nearBound = () => Array.from({ length: BATCH }, () => bound - randomBelow(1000n));

  for (const [name, protocol, run] of [
    ['SCT', 'sct', (h: Harness, xs: bigint[]) => sct(h.alice, h.core.createJobKey().encryptBatch(xs), h.target.publicKey)],
    [
      'SCT, bounded and packed (the conversion to the job key)',
      'sct-packed',
      (h: Harness, xs: bigint[]) => sctBounded(h.alice, h.owner.publicKey.encryptBatch(xs), h.core.createJobKey(), 201),
    ],
    [
      "SCT of an owner's packs (the conversion of an owner-packed upload)",
      'sct-packed',
      (h: Harness, xs: bigint[]) => {
        const pk = h.owner.publicKey;
        const packs = pk.encryptBatch(packValues(xs, pk.params.N, ownerSlotBits(bound)));
        return sctOwnerPacks(h.alice, packs, xs.length, h.core.createJobKey(), 201);
      },
    ],
    ['SM', 'mul', (h: Harness, xs: bigint[]) => secureMultiply(h.alice, h.owner.publicKey.encryptBatch(xs), h.owner.publicKey.encryptBatch(xs))],
    ['secure square', 'square', (h: Harness, xs: bigint[]) => secureSquare(h.alice, h.owner.publicKey.encryptBatch(xs))],
    [
      'SDM (packed, statistical blinding: the unpacked slot values)',
      'sdm',
      (h: Harness, xs: bigint[]) => {
        const pk = h.owner.publicKey;
        const recs = xs.slice(0, BATCH / 2).map((x) => pk.encryptBatch([x, x]));
        return secureDistances(h.alice, recs, [pk.encryptBatch([0n, 0n])], [1n], { maxAbs: bound, maxCount: 1 });
      },
    ],
  ] as const) {
    it(`${name}: zeros and near-bound data give indistinguishable views (two-sample KS, alpha 0.001)`, async () => {
      // SDM's slots are blinded by r uniform in [0, 2^(beta + 40)), beta = bits(2 * bound).
      const scale =
        protocol === 'sdm'
          ? 1n << BigInt(differenceBits({ maxAbs: bound, maxCount: 1, dims: 2 }) + 40)
          : protocol === 'sct-packed'
            ? 1n << 241n
            : undefined;
      const a = await record(protocol, () => run(h, zeros()), scale);
      const b = await record(protocol, () => run(h, nearBound()), scale);
      assert.ok(a.length >= BATCH && b.length === a.length, `recorded ${a.length} and ${b.length}`);
      const ks = ksSameDistribution(a, b);
      assert.ok(ks.same, `KS statistic ${ks.d} exceeds ${ks.critical}`);
      // And each view is uniform on [0, 1): compare with a uniform sample.
      const ku = ksSameDistribution(
        a,
        Array.from({ length: a.length }, () => Math.random()),
      );
      assert.ok(ku.same, `not uniform: KS ${ku.d} > ${ku.critical}`);
    });
  }

  it('shared-record distances: the share and the per-chunk centroid values are data-independent (KS, alpha 0.001)', async () => {
    const pk = h.owner.publicKey;
    const D = 1n << 30n;
    const bounds = { maxAbs: D, maxCount: 4 };
    // Blinds are uniform in [0, 2^(v + 40)) above 2^v, v = 31 for records and bits(2 n^2 D) for centroids.
    const shareScale = 1n << 72n;
    const centroidScale = 1n << BigInt(BigInt(2n * 16n * D).toString(2).length + 41);
    const views = async (x: bigint) => {
      const jobKey = h.core.createJobKey();
      const share = { id: newShareId(), blinds: [] as bigint[] };
      seen.clear();
      const flat = await sctBounded(
        h.alice,
        Array.from({ length: 2 * BATCH }, () => pk.encrypt(x)),
        jobKey,
        31,
        { kms: true, share: { ...share, offset: 0 } },
      );
      const shareView = (seen.get('sct-packed') ?? []).map((v) => Number((v * 1_000_000n) / shareScale) / 1_000_000);
      const records = Array.from({ length: BATCH }, (_, i) => flat.slice(2 * i, 2 * i + 2));
      seen.clear();
      // One blinding per iteration: 40 iterations with the same centroid sums, one chunk each.
      const sums = [records[0]!, records[1]!].map((r) => r.map((v) => add(add(v, v), add(v, v))));
      for (let c = 0; c < 40; c++)
        await innerDistances(h.alice, share, c, records.slice(c, c + 1), await blindCentroids(h.alice, sums, [4n, 4n], bounds));
      const innerView = (seen.get('inner') ?? []).map((v) => Number((v * 1_000_000n) / centroidScale) / 1_000_000);
      return { shareView, innerView };
    };
    const a = await views(0n);
    const b = await views(D - 1n);
    for (const key of ['shareView', 'innerView'] as const) {
      assert.ok(a[key].length >= 300 && a[key].length === b[key].length, `${key}: ${a[key].length} values`);
      const ks = ksSameDistribution(a[key], b[key]);
      assert.ok(ks.same, `${key}: KS statistic ${ks.d} exceeds ${ks.critical}`);
    }
  });

  it('negative control: the KS test does reject views that depend on the data', () => {
    // What Bob would see without blinding: the plaintexts themselves, scaled the same way.
    const zerosView = Array.from({ length: BATCH }, () => 0);
    const boundView = Array.from({ length: BATCH }, () => 2 ** -311 * (1 + Math.random()));
    assert.ok(!ksSameDistribution(zerosView, boundView).same);
    // Weak blinding (r below 2^8 instead of uniform in Z_N) is caught too.
    const weak = (m: number) => Array.from({ length: BATCH }, () => (m + Math.floor(Math.random() * 256)) / 512);
    assert.ok(!ksSameDistribution(weak(0), weak(200)).same);
  });

  it('SDC: the sign the key server sees is a fair coin whatever the data; magnitude leaks log2|Delta| to about 2 bits', async () => {
    const pk = h.owner.publicKey;
    const N = pk.params.N;
    const n = 600;
    const dBits = 120;
    // All comparisons have a much nearer than b: a data-dependent sign without the coin.
    const omegasA = Array.from({ length: n }, (_, i) => BigInt(i + 1));
    const omegasB = omegasA.map((x) => x * 1000n + randomBelow(1n << 60n));
    seen.clear();
    const got = await secureCompare(
      h.alice,
      omegasA.map((oa, i) => ({ omegaA: pk.encrypt(oa), omegaB: pk.encrypt(omegasB[i]!), sizeA: 1n, sizeB: 1n })),
      dBits,
    );
    assert.ok(got.every(Boolean));
    const views = seen.get('sdc')!;
    const negatives = views.filter((v) => v > N / 2n).length;
    // Binomial(600, 1/2): 4.5 standard deviations is about 55.
    assert.ok(Math.abs(negatives - n / 2) < 55, `${negatives} of ${n} negative`);
    // Magnitude: Bob's best guess of log2|Delta'| is log2|view| - (rho - 1).
    const rho = sdcMultiplierBits(N, dBits);
    const errors = views.map((v, i) => {
      const mag = v > N / 2n ? N - v : v;
      const delta = 2n * (omegasB[i]! - omegasA[i]!) + 1n;
      return Math.abs(mag.toString(2).length - (rho - 1) - delta.toString(2).length);
    });
    const mean = errors.reduce((a, b) => a + b, 0) / errors.length;
    // Documented in the README: Bob learns log2|Delta| to within about 1 to 2 bits.
    assert.ok(mean < 2.5, `mean error ${mean} bits`);
    console.log(`SDC magnitude leakage: Bob estimates log2|Delta'| with mean absolute error ${mean.toFixed(2)} bits`);
  });
});
