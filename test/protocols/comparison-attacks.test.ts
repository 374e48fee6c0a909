/**
 * The comparison that DP clipping and histogram bins use, attacked as the key server would attack
 * it. The seed-style comparison (multiplicative blinding, `secureLessThan`) let the key server name
 * each record's nearest histogram edge and pin values by the maximum over queries; the engine's
 * comparison (`hiddenLessThan`, blinded decryption into shares, exact sign on shares) must leave
 * both attacks at chance, while the old one, attacked the same way, serves as the negative control.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { secureArgmin, secureLessThan } from '../../src/protocols/index.js';
import { hiddenArgmin, HIDDEN_ARGMIN } from '../../src/mpc/hidden-argmin.js';
import { hiddenLessThan, HIDDEN_LESS_THAN } from '../../src/mpc/hidden-less-than.js';
import { ksSameDistribution, recordingHarness, type Harness } from './harness.js';

const VALUE_BITS = 12;
const EDGES = [0n, 10n, 20n, 30n, 40n, 50n, 60n, 70n, 80n];

describe('comparison attacks: the key server cannot place values', () => {
  let h: Harness;
  let seen: Map<string, bigint[]>;
  before(async () => {
    ({ h, seen } = await recordingHarness());
  });
  after(() => h.close());

  /** What the key server decrypted (as signed integers) while comparing every x with every edge. */
  async function view(kind: 'hidden' | 'seed', xs: bigint[], edges: bigint[]): Promise<bigint[]> {
    seen.clear();
    const pk = h.owner.publicKey;
    const cts = edges.flatMap(() => xs.map((x) => pk.encrypt(x)));
    const thresholds = edges.flatMap((e) => xs.map(() => e));
    const out =
      kind === 'hidden' ? await hiddenLessThan(h.alice, cts, thresholds, VALUE_BITS) : await secureLessThan(h.alice, cts, thresholds, VALUE_BITS);
    // The outcomes are right either way.
    out.forEach((c, i) => assert.equal(h.owner.decrypt(c), cts[i] && xs[i % xs.length]! < thresholds[i]! ? 1n : 0n));
    const N = pk.params.N;
    const values = seen.get(kind === 'hidden' ? HIDDEN_LESS_THAN : 'lt') ?? [];
    return values.map((v) => (v > N / 2n ? v - N : v));
  }

  /** For each record, the edge whose comparison showed the smallest magnitude: the key server's guess of the nearest edge. */
  function nearestEdgeGuesses(v: bigint[], n: number): number[] {
    return Array.from({ length: n }, (_, i) => {
      let best = 0;
      for (let e = 1; e < EDGES.length; e++) {
        const abs = (x: bigint) => (x < 0n ? -x : x);
        if (abs(v[e * n + i]!) < abs(v[best * n + i]!)) best = e;
      }
      return best;
    });
  }

  const records = Array.from({ length: 120 }, (_, i) => BigInt((i * 37) % 81));
  const nearest = records.map((x) => EDGES.reduce((b, e, j) => (abs(e - x) < abs(EDGES[b]! - x) ? j : b), 0));
  function abs(x: bigint): bigint {
    return x < 0n ? -x : x;
  }

  it('nearest-edge attack: the seed-style view names the nearest edge far above chance (negative control); the engine view does not', async () => {
    const hits = async (kind: 'hidden' | 'seed') => {
      const guesses = nearestEdgeGuesses(await view(kind, records, EDGES), records.length);
      return guesses.filter((g, i) => g === nearest[i]).length / records.length;
    };
    const seed = await hits('seed');
    const hidden = await hits('hidden');
    console.log(`nearest-edge hit rate: seed-style ${seed.toFixed(2)}, engine ${hidden.toFixed(2)} (chance 0.11)`);
    // Chance is 1/9 per record; with 120 records, 0.11 +- 0.029 (one standard deviation).
    assert.ok(seed > 0.35, `the attack on the seed-style comparison should work (hit rate ${seed})`);
    assert.ok(hidden < 0.11 + 4 * 0.029, `the engine's comparison gave the nearest edge for ${hidden} of records`);
  });

  it('maximum-over-queries attack: twelve clips leave the estimate uncorrelated with the value', async () => {
    const xs = Array.from({ length: 60 }, (_, i) => BigInt((i * 53) % 100));
    const estimate = async (kind: 'hidden' | 'seed') => {
      const best = xs.map(() => 0n);
      for (let q = 0; q < 12; q++) {
        const v = await view(kind, xs, [0n]); // clip at lo = 0: the key server sees x + blind
        v.forEach((u, i) => (best[i] = u > best[i]! ? u : best[i]!));
      }
      return best.map(Number);
    };
    const corr = (a: number[], b: number[]) => {
      const [ma, mb] = [a.reduce((s, x) => s + x, 0) / a.length, b.reduce((s, x) => s + x, 0) / b.length];
      const cov = a.reduce((s, x, i) => s + (x - ma) * (b[i]! - mb), 0);
      return cov / Math.sqrt(a.reduce((s, x) => s + (x - ma) ** 2, 0) * b.reduce((s, x) => s + (x - mb) ** 2, 0));
    };
    const truth = xs.map(Number);
    const seed = corr(await estimate('seed'), truth);
    const hidden = corr(await estimate('hidden'), truth);
    console.log(`max-over-12-queries correlation with the values: seed-style ${seed.toFixed(2)}, engine ${hidden.toFixed(2)}`);
    assert.ok(seed > 0.5, `the seed-style maximum tracks the values (correlation ${seed})`);
    // 60 independent pairs: |r| < 0.42 at the 0.1 % level.
    assert.ok(Math.abs(hidden) < 0.42, `the engine's maximum correlates with the values (${hidden})`);
  });

  it("the key server's view of the engine's comparison: zeros and near-bound values are indistinguishable (KS)", async () => {
    const n = 300;
    const scale = 2 ** (VALUE_BITS + 40);
    const a = (await view('hidden', Array(n).fill(0n), [0n])).map((v) => Number(v) / scale);
    const b = (await view('hidden', Array(n).fill((1n << BigInt(VALUE_BITS - 1)) - 1n), [0n])).map((v) => Number(v) / scale);
    assert.equal(a.length, n);
    const ks = ksSameDistribution(a, b);
    assert.ok(ks.same, `KS d = ${ks.d} > ${ks.critical}`);
  });
});

/**
 * The same attacks on k-means' distance comparisons (SMDM). Over the iterations the same
 * Delta = |c_b|^2 Omega_a - |c_a|^2 Omega_b recurs (identical once the assignment settles), so the
 * key server can pool what it sees of one record across iterations. With the seed's SDC
 * (`comparison: 'multiplicative'`, the negative control) it reads log2 |Delta|; with the engine's
 * argmin its estimate must be unrelated to |Delta|.
 */
describe('k-means comparison attacks: the key server cannot estimate |Delta|', () => {
  let h: Harness;
  let seen: Map<string, bigint[]>;
  before(async () => {
    ({ h, seen } = await recordingHarness());
  });
  after(() => h.close());

  const DELTA_BITS = 56;
  const n = 60;
  // |Delta| = 2^e with e spread over 4..50 bits, signs mixed: the quantity the attacker wants.
  const exponents = Array.from({ length: n }, (_, i) => 4 + ((i * 29) % 47));
  const base = 1n << 52n;
  const omegas = (pk: import('../../src/crypto/index.js').BcpPublicKey) =>
    exponents.map((e, i) => {
      const d = (i % 2 ? 1n : -1n) << BigInt(e);
      return [pk.encrypt(base), pk.encrypt(base + d)];
    });

  /** The key server's per-record view of one iteration's comparison. */
  async function iteration(kind: 'hidden' | 'multiplicative'): Promise<bigint[]> {
    seen.clear();
    const pk = h.core.createJobKey();
    const got =
      kind === 'hidden'
        ? await hiddenArgmin(h.alice, omegas(pk), [1n, 1n], DELTA_BITS)
        : await secureArgmin(h.alice, omegas(pk), [1n, 1n], DELTA_BITS);
    // Odd records have Omega_1 > Omega_0 (cluster 0 nearer), even records the other way round.
    assert.deepEqual(
      got,
      exponents.map((_, i) => (i % 2 ? 0 : 1)),
    );
    const N = pk.params.N;
    const values = seen.get(kind === 'hidden' ? HIDDEN_ARGMIN : 'sdc') ?? [];
    assert.equal(values.length, n);
    return values.map((v) => (v > N / 2n ? N - v : v));
  }

  const log2 = (x: bigint) => x.toString(2).length;
  const corr = (a: number[], b: number[]) => {
    const [ma, mb] = [a.reduce((s, x) => s + x, 0) / a.length, b.reduce((s, x) => s + x, 0) / b.length];
    const cov = a.reduce((s, x, i) => s + (x - ma) * (b[i]! - mb), 0);
    return cov / Math.sqrt(a.reduce((s, x) => s + (x - ma) ** 2, 0) * b.reduce((s, x) => s + (x - mb) ** 2, 0));
  };

  it('pooling twelve iterations: the seed SDC view gives log2 |Delta| (negative control), the engine view nothing', async () => {
    const estimate = async (kind: 'hidden' | 'multiplicative') => {
      // Seed: the largest magnitude seen (r near its maximum); engine: the smallest value seen
      // (the mask near its minimum), the best either attacker can pool.
      let pooled: bigint[] | undefined;
      for (let q = 0; q < 12; q++) {
        const v = await iteration(kind);
        pooled = pooled ? pooled.map((p, i) => (kind === 'hidden' ? (v[i]! < p ? v[i]! : p) : v[i]! > p ? v[i]! : p)) : v;
      }
      return pooled!;
    };
    const seed = await estimate('multiplicative');
    const hidden = await estimate('hidden');
    const seedCorr = corr(seed.map(log2), exponents);
    const hiddenCorr = corr(hidden.map(log2), exponents);
    const hiddenLinear = corr(
      hidden.map((v) => Number(v >> 20n)),
      exponents,
    );
    const seedError = seed.reduce((s, v, i) => s + Math.abs(log2(v) - (log2(seed[0]!) - exponents[0]!) - exponents[i]!), 0) / n;
    console.log(
      `k-means |Delta| estimate over 12 iterations: seed SDC correlation ${seedCorr.toFixed(2)} (mean error ${seedError.toFixed(1)} bits), ` +
        `engine ${hiddenCorr.toFixed(2)} (log) ${hiddenLinear.toFixed(2)} (linear)`,
    );
    assert.ok(seedCorr > 0.95, `the attack on the seed SDC should work (correlation ${seedCorr})`);
    // 60 independent pairs: |r| < 0.42 at the 0.1 % level.
    assert.ok(
      Math.abs(hiddenCorr) < 0.42 && Math.abs(hiddenLinear) < 0.42,
      `the engine view correlates with |Delta| (${hiddenCorr}, ${hiddenLinear})`,
    );
  });

  it("the engine argmin's view is data-independent (KS), where the seed SDC's is not (negative control)", async () => {
    const pk = h.core.createJobKey();
    const views = async (kind: 'hidden' | 'multiplicative', far: boolean) => {
      seen.clear();
      // near: every Delta about 1; far: every Delta about 2^50
      const rows = Array.from({ length: 150 }, (_, i) => [pk.encrypt(base), pk.encrypt(base + (far ? 1n << 50n : 1n) + BigInt(i))]);
      await (kind === 'hidden' ? hiddenArgmin : secureArgmin)(h.alice, rows, [1n, 1n, 1n].slice(0, 2), DELTA_BITS);
      const N = pk.params.N;
      const scale = 2 ** (DELTA_BITS + 40);
      return (seen.get(kind === 'hidden' ? HIDDEN_ARGMIN : 'sdc') ?? []).map((v) =>
        kind === 'hidden' ? Number(v) / scale : log2(v > N / 2n ? N - v : v),
      );
    };
    const ks = ksSameDistribution(await views('hidden', false), await views('hidden', true));
    assert.ok(ks.same, `engine view: KS d = ${ks.d} > ${ks.critical}`);
    const control = ksSameDistribution(await views('multiplicative', false), await views('multiplicative', true));
    assert.ok(!control.same, `the KS test should tell the seed SDC's views apart (d = ${control.d})`);
  });
});
