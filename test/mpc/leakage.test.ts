/**
 * Each party's view of the engine is independent of the data: party 1 (the key server) records
 * every message it receives during products, comparisons and ReLUs, once on all-zero inputs and
 * once on inputs near the ring's bounds, and a two-sample KS test cannot tell the two apart. The
 * negative control (the same recording of an opened value) must be told apart. The dealer's view
 * is the sequence of requests it serves, identical for any data. With the ot provider, party 1's
 * view also holds every OT extension message it receives.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { channelPair, type PartyChannel } from '../../src/mpc/channel.js';
import { DealerProvider, TrustedDealer, type DealerRequest } from '../../src/mpc/provider/dealer.js';
import { OtProvider } from '../../src/mpc/provider/ot.js';
import { mpcParty, type MpcParty } from '../../src/mpc/party.js';
import { mul, splitSecret, type ArithmeticShare } from '../../src/mpc/primitives/arithmetic.js';
import { isNegative, relu } from '../../src/mpc/primitives/binary.js';
import { ksSameDistribution } from '../protocols/harness.js';
import * as ring from '../../src/mpc/ring.js';
import { train, type MlpConfig } from '../../src/analytics/mlp.js';
import { sharedOps } from '../../src/analytics/mlp-shared.js';

/** A channel that keeps what this party sent and received in each round. */
function recording(c: PartyChannel, seen: Array<[Uint8Array, Uint8Array]>): PartyChannel {
  return {
    counters: c.counters,
    exchange: async (m) => {
      const r = await c.exchange(m);
      seen.push([Uint8Array.from(m), Uint8Array.from(r)]);
      return r;
    },
  };
}

const ring64 = (b: Uint8Array) => new BigUint64Array(new Uint8Array(b).buffer, 0, b.length >> 3);
const words32 = (b: Uint8Array) => new Uint32Array(new Uint8Array(b).buffer, 0, b.length >> 2);

/**
 * What party 1 can compute from a round: every exchange opens something, as a sum in Z_2^64
 * (arithmetic) or as an XOR (boolean), so the view holds both, as numbers in [0, 1).
 */
function features([sent, received]: [Uint8Array, Uint8Array]): number[] {
  const out: number[] = [];
  const [s64, r64] = [ring64(sent), ring64(received)];
  for (let i = 0; i < s64.length; i++) out.push(Number(BigInt.asUintN(64, s64[i]! + r64[i]!) >> 32n) / 2 ** 32);
  const [s32, r32] = [words32(sent), words32(received)];
  for (let i = 0; i < s32.length; i++) out.push(((s32[i]! ^ r32[i]!) >>> 0) / 2 ** 32);
  return out;
}

/** Party 1's received bytes (and the dealer's requests) while both run `f` on the secret x. */
async function viewOf(x: BigUint64Array, f: (p: MpcParty, s: ArithmeticShare) => Promise<unknown>) {
  const [c0, c1] = channelPair();
  const dealer = new TrustedDealer();
  const requests: DealerRequest[] = [];
  const link = {
    correction: (r: DealerRequest) => (requests.push(r), dealer.correction(r)),
    corrections: (rs: readonly DealerRequest[]) => (requests.push(...rs), dealer.corrections(rs)),
  };
  const seen: Array<[Uint8Array, Uint8Array]> = [];
  const [s0, s1] = splitSecret([x.length], x);
  await Promise.all([
    f(mpcParty(0, c0, new DealerProvider(0, dealer.seed0)), s0),
    f(mpcParty(1, recording(c1, seen), new DealerProvider(1, dealer.seed1, link)), s1),
  ]);
  const words = seen.filter(([m]) => m.length > 0).flatMap(features);
  return { words, requests };
}

const n = 512;
const zeros = new BigUint64Array(n);
const nearBound = new BigUint64Array(n).map((_, i) => (i % 2 ? (1n << 63n) - 1n - BigInt(i) : (1n << 63n) + BigInt(i)));

const square = (p: MpcParty, s: ArithmeticShare) => mul(p, s, s);

describe('leakage: the engine hides the data from each party', () => {
  for (const [name, f] of [
    ['product', square],
    ['sign', isNegative],
    ['ReLU', relu],
  ] as const) {
    it(`${name}: party 1's view on zeros and on near-bound data is indistinguishable; the dealer's requests are identical`, async () => {
      const a = await viewOf(zeros, f);
      const b = await viewOf(nearBound, f);
      const ks = ksSameDistribution(a.words, b.words);
      assert.ok(ks.same, `KS d = ${ks.d} > ${ks.critical}`);
      assert.deepEqual(a.requests, b.requests);
    });
  }

  it("ot provider: party 1's view, its OT extension messages included, on zeros and on near-bound data is indistinguishable", async () => {
    const viewOt = async (x: BigUint64Array) => {
      const [c0, c1] = channelPair();
      const [o0, o1] = channelPair();
      const online: Array<[Uint8Array, Uint8Array]> = [];
      const offline: Array<[Uint8Array, Uint8Array]> = [];
      const [s0, s1] = splitSecret([x.length], x);
      await Promise.all([
        relu(mpcParty(0, c0, new OtProvider(0, o0)), s0),
        relu(mpcParty(1, recording(c1, online), new OtProvider(1, recording(o1, offline))), s1),
      ]);
      // OT messages are read as received (the u matrices and corrections are masks on their own).
      const ot = offline.flatMap(([, r]) => Array.from(words32(r.subarray(0, r.length - (r.length % 4))), (w) => w / 2 ** 32));
      return [...online.filter(([m]) => m.length > 0).flatMap(features), ...ot];
    };
    const ks = ksSameDistribution(await viewOt(zeros), await viewOt(nearBound));
    assert.ok(ks.same, `KS d = ${ks.d} > ${ks.critical}`);
  });

  it('negative control: with all-zero triples (a broken provider), the same test tells the data apart', async () => {
    const broken = (p: MpcParty): MpcParty => ({
      ...p,
      provider: { ...p.provider, triple: async (k: number) => ({ a: new BigUint64Array(k), b: new BigUint64Array(k), c: new BigUint64Array(k) }) },
    });
    const a = await viewOf(zeros, (p, s) => square(broken(p), s));
    const b = await viewOf(nearBound, (p, s) => square(broken(p), s));
    assert.ok(!ksSameDistribution(a.words, b.words).same, 'the unmasked openings are the data itself');
  });

  it("a whole training job (forward, softmax, backward, updates): each server's view, on two unlike data sets, is indistinguishable", async () => {
    const config: MlpConfig = { layers: [4, 6, 3], learningRate: 0.5, batchSize: 8, epochs: 1, seed: 'leak', loss: 'softmax' };
    const rows = 24;
    const viewsOf = async (feature: (i: number, j: number) => number, broken = false) => {
      const x = {
        shape: [rows, 4],
        data: ring.encodeFixed(
          Array.from({ length: rows * 4 }, (_, k) => feature(Math.floor(k / 4), k % 4)),
          16,
        ),
      };
      const y = {
        shape: [rows, 3],
        data: ring.encodeFixed(
          Array.from({ length: rows * 3 }, (_, k) => (k % 3 === Math.floor(k / 3) % 3 ? 1 : 0)),
          16,
        ),
      };
      const [c0, c1] = channelPair();
      const dealer = new TrustedDealer();
      const seen: Array<Array<[Uint8Array, Uint8Array]>> = [[], []];
      const [x0, x1] = splitSecret(x.shape, x.data);
      const [y0, y1] = splitSecret(y.shape, y.data);
      // The negative control's broken provider: all-zero matrix triples (still correct, 0 x 0 = 0), so products open the data itself.
      const provider = (q: DealerProvider) =>
        broken
          ? Object.assign(Object.create(q) as DealerProvider, {
              matmulTriple: async (m: number, k: number, n: number) => ({
                a: new BigUint64Array(m * k),
                b: new BigUint64Array(k * n),
                c: new BigUint64Array(m * n),
              }),
            })
          : q;
      await Promise.all([
        train(sharedOps(mpcParty(0, recording(c0, seen[0]!), provider(new DealerProvider(0, dealer.seed0)))), x0, y0, config),
        train(sharedOps(mpcParty(1, recording(c1, seen[1]!), provider(new DealerProvider(1, dealer.seed1, dealer)))), x1, y1, config),
      ]);
      return seen.map((v) => v.filter(([m]) => m.length > 0).flatMap(features));
    };
    // All-zero features against features of +-100 (the targets are the same one-hot rows).
    const [zero0, zero1] = await viewsOf(() => 0);
    const [wide0, wide1] = await viewsOf((i, j) => ((i + j) % 2 ? 100 : -100));
    for (const [who, a, b] of [
      ['the compute server (party 0)', zero0!, wide0!],
      ['the key server (party 1)', zero1!, wide1!],
    ] as const) {
      assert.ok(a.length > 10_000 && a.length === b.length, `${who}: ${a.length} words`);
      const ks = ksSameDistribution(a, b);
      assert.ok(ks.same, `${who}: KS d = ${ks.d} > ${ks.critical}`);
    }
    // Negative control: with a broken provider (all-zero matrix triples) the same test tells the data sets apart.
    const [, brokenZero] = await viewsOf(() => 0, true);
    const [, brokenWide] = await viewsOf((i, j) => ((i + j) % 2 ? 100 : -100), true);
    assert.ok(!ksSameDistribution(brokenZero!, brokenWide!).same, 'the unmasked openings are the data itself');
  });
});
