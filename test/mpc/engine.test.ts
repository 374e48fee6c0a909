/**
 * The secret-sharing engine against its plaintext definitions, both parties running concurrently
 * over an in-memory channel, with each provider (dealer, and OT extension between the parties):
 * random inputs plus zeros, negatives, the ring's extremes and ties.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { channelPair } from '../../src/mpc/channel.js';
import { dealerProviders } from '../../src/mpc/provider/dealer.js';
import { OtProvider } from '../../src/mpc/provider/ot.js';
import { lessThanWide, splitWide } from '../../src/mpc/primitives/wide.js';
import { mpcParty, type MpcParty } from '../../src/mpc/party.js';
import * as ring from '../../src/mpc/ring.js';
import { open, mul, matmul, mulFixed, splitSecret, type ArithmeticShare } from '../../src/mpc/primitives/arithmetic.js';
import { isNegative, lessThan, relu, reluDerivative } from '../../src/mpc/primitives/binary.js';
import { argmin } from '../../src/mpc/primitives/argmin.js';
import { arithmeticToBinary, binaryToArithmetic } from '../../src/mpc/primitives/bit-decomposition.js';
import { concat, split, bitOf } from '../../src/mpc/bits.js';
import { asWords, bytesOf } from '../../src/mpc/channel.js';

/** Opens XOR-shared planes to both parties: bit i of plane j as numbers. */
async function openPlanes(p: MpcParty, planes: Uint32Array[]): Promise<number[][]> {
  const mine = concat(planes);
  const theirs = asWords(await p.channel.exchange(bytesOf(mine)), mine.length);
  const all = split(
    mine.map((w, i) => w ^ theirs[i]!),
    planes.length,
  );
  return all.map((plane) => Array.from({ length: plane.length * 32 }, (_, i) => bitOf(plane, i)));
}

const MIN = 1n << 63n; // -2^63 as a ring element
const MAX = MIN - 1n; // 2^63 - 1

let providerKind: 'dealer' | 'ot' = 'dealer';
let otPair: [OtProvider, OtProvider] | undefined;

/** One pair of OT providers for the whole file: base OTs once, as two servers would. */
function otProviders(): [OtProvider, OtProvider] {
  if (!otPair) {
    const [o0, o1] = channelPair();
    otPair = [new OtProvider(0, o0), new OtProvider(1, o1)];
  }
  return otPair;
}

/** Runs `f` at both parties (the current provider, in-memory channel) and returns both outputs. */
async function both<T>(f: (p: MpcParty, i: 0 | 1) => Promise<T>): Promise<[T, T]> {
  const [c0, c1] = channelPair();
  const [d0, d1] = providerKind === 'ot' ? otProviders() : dealerProviders();
  return Promise.all([f(mpcParty(0, c0, d0), 0), f(mpcParty(1, c1, d1), 1)]);
}

function randomRing(n: number): BigUint64Array {
  return new BigUint64Array(new Uint8Array(randomBytes(8 * n)).buffer);
}

/** Edge values, then random ones. */
function interesting(n: number): BigUint64Array {
  const edges = [0n, 1n, MAX, MIN, MIN + 1n, MAX - 1n, (1n << 64n) - 1n, 2n, 1n << 62n, (1n << 64n) - (1n << 62n)];
  const out = randomRing(n);
  edges.forEach((e, i) => (out[i] = e));
  return out;
}

const signed = ring.toSigned;

async function shared(shape: number[], secret: BigUint64Array): Promise<[ArithmeticShare, ArithmeticShare]> {
  return splitSecret(shape, secret);
}

for (const kind of ['dealer', 'ot'] as const)
  describe(`secret-sharing engine (${kind} provider)`, () => {
    it('uses the provider', () => {
      providerKind = kind;
    });

    it('opens, multiplies elementwise and as matrices exactly in Z_2^64', async () => {
      const n = 300;
      const x = interesting(n);
      const y = interesting(n).reverse();
      const xs = await shared([n], x);
      const ys = await shared([n], y);
      const [o0, o1] = await both((p, i) => open(p, xs[i]));
      assert.deepEqual(o0, x);
      assert.deepEqual(o1, x);
      const [z0] = await both(async (p, i) => open(p, await mul(p, xs[i], ys[i])));
      assert.deepEqual(z0, ring.mul(x, y));

      const [m, k, nn] = [7, 11, 5];
      const a = randomRing(m * k);
      const b = interesting(k * nn);
      const as = await shared([m, k], a);
      const bs = await shared([k, nn], b);
      const [prod] = await both(async (p, i) => open(p, await matmul(p, as[i], bs[i])));
      assert.deepEqual(prod, ring.matmul(a, b, m, k, nn));
    });

    it('the native matrix kernel and the TypeScript fallback give the same bits', () => {
      const [m, k, n] = [9, 33, 17];
      const a = interesting(m * k);
      const b = randomRing(k * n);
      assert.deepEqual(ring.matmul(a, b, m, k, n), ring.matmulJs(a, b, m, k, n));
      assert.throws(() => ring.matmul(a, b, m, k + 1, n), /matmul of/);
      // Elementwise kernels on arrays large enough to take the native path.
      const [x, y] = [interesting(10_000), interesting(10_000).reverse()];
      [ring.add, ring.sub, ring.mul].forEach((f, op) => {
        const js = new BigUint64Array(x.length);
        ring.elementwiseJs(op as 0 | 1 | 2, x, y, js);
        assert.deepEqual(f(x, y), js);
      });
      // Unary kernels (negation, scalar product, both halves of the truncation) against BigInt on each element.
      const signed = (v: bigint) => BigInt.asIntN(64, v);
      const each = (f: (v: bigint) => bigint) => BigUint64Array.from(x, (v) => BigInt.asUintN(64, f(v)));
      assert.deepEqual(
        ring.neg(x),
        each((v) => -v),
      );
      assert.deepEqual(
        ring.scale(x, 3n << 40n),
        each((v) => v * (3n << 40n)),
      );
      assert.deepEqual(
        ring.scale(x, -5n),
        each((v) => v * -5n),
      );
      for (const f of [0, 1, 16, 63]) {
        assert.deepEqual(
          ring.shiftRightSigned(x, f),
          each((v) => signed(v) >> BigInt(f)),
        );
        assert.deepEqual(
          ring.shiftRightSignedNegated(x, f),
          each((v) => -(signed(-v) >> BigInt(f))),
        );
        // Small arrays take the TypeScript path: the same bits.
        assert.deepEqual(ring.shiftRightSignedNegated(x.subarray(0, 7), f), each((v) => -(signed(-v) >> BigInt(f))).subarray(0, 7));
      }
      assert.throws(() => ring.shiftRightSigned(x, 64), /a shift is 0 to 63 bits/);
    });

    it('fixed-point products are within one unit in the last place (16 fraction bits)', async () => {
      const xs = Array.from({ length: 2000 }, (_, i) => (i === 0 ? 0 : (Math.random() - 0.5) * 20));
      const ys = Array.from({ length: 2000 }, (_, i) => (i === 1 ? 0 : (Math.random() - 0.5) * 20));
      const x = ring.encodeFixed(xs);
      const y = ring.encodeFixed(ys);
      const sx = await shared([2000], x);
      const sy = await shared([2000], y);
      const [z] = await both(async (p, i) => open(p, await mulFixed(p, sx[i], sy[i])));
      for (let i = 0; i < xs.length; i++) {
        const exact = (signed(x[i]!) * signed(y[i]!)) >> 16n; // floor
        const got = signed(z[i]!);
        assert.ok(got - exact >= -1n && got - exact <= 1n, `element ${i}: ${got} vs ${exact}`);
      }
    });

    it('sign, less-than (with ties), ReLU and its derivative equal their definitions for every input', async () => {
      const n = 1000;
      const x = interesting(n);
      const y = x.slice();
      for (let i = n / 2; i < n; i++) y[i] = BigInt.asUintN(64, x[i]! + BigInt((i % 7) - 3)); // ties and neighbours
      const sx = await shared([n], x);
      const [neg] = await both(async (p, i) => open(p, await isNegative(p, sx[i])));
      assert.deepEqual(
        Array.from(neg),
        Array.from(x, (v) => (signed(v) < 0n ? 1n : 0n)),
      );
      // Less-than is defined where x - y does not overflow: the second half.
      const half = (a: BigUint64Array) => a.slice(n / 2);
      const lx = await shared([n / 2], half(x));
      const ly = await shared([n / 2], half(y));
      const [lt] = await both(async (p, i) => open(p, await lessThan(p, lx[i], ly[i])));
      assert.deepEqual(
        Array.from(lt),
        Array.from(half(x), (v, i) => (signed(v) < signed(half(y)[i]!) ? 1n : 0n)),
      );
      const [r] = await both(async (p, i) => open(p, await relu(p, sx[i])));
      assert.deepEqual(
        Array.from(r),
        Array.from(x, (v) => (signed(v) > 0n ? v : 0n)),
      );
      const [d] = await both(async (p, i) => open(p, await reluDerivative(p, sx[i])));
      assert.deepEqual(
        Array.from(d),
        Array.from(x, (v) => (signed(v) >= 0n ? 1n : 0n)),
      );
    });

    it('argmin over k candidates gives the one-hot of the first minimum and the minimum, for k = 1 to 7', async () => {
      const n = 200;
      for (let k = 1; k <= 7; k++) {
        // Small signed values, so ties are common; row 0 is all equal, row 1 has the extremes.
        const x = BigUint64Array.from({ length: n * k }, () => BigInt.asUintN(64, BigInt(Math.floor(Math.random() * 9) - 4)));
        for (let c = 0; c < k; c++) [x[c], x[k + c]] = [7n, BigInt.asUintN(64, c % 2 ? -(1n << 61n) : 1n << 61n)];
        const sx = await shared([n, k], x);
        const [[onehot, min]] = await both(async (p, i) => {
          const r = await argmin(p, sx[i]);
          return [await open(p, r.onehot), await open(p, r.min)];
        });
        for (let r = 0; r < n; r++) {
          const row = Array.from(x.subarray(r * k, (r + 1) * k), signed);
          const best = row.indexOf(row.reduce((a, b) => (b < a ? b : a)));
          assert.deepEqual(
            Array.from(onehot!.subarray(r * k, (r + 1) * k)),
            row.map((_, c) => (c === best ? 1n : 0n)),
            `k = ${k}, row ${r}`,
          );
          assert.equal(signed(min![r]!), row[best]);
        }
      }
    });

    it('compares 130-bit values exactly in Z_2^131 (both carry circuits)', async () => {
      const l = 131;
      const top = (1n << 130n) - 1n;
      const rand = () => BigInt('0x' + randomBytes(17).toString('hex')) & top;
      const xs = [0n, top, 0n, top, 5n, 1n << 129n, ...Array.from({ length: 90 }, rand)];
      const ys = [0n, top, top, 0n, 5n, (1n << 129n) - 1n, ...Array.from({ length: 90 }, (_, i) => (i % 5 === 0 ? xs[6 + i]! : rand()))];
      const [x, y] = [splitWide(l, xs), splitWide(l, ys)];
      for (const circuit of ['tree', 'ripple'] as const) {
        const [lt] = await both(async (p, i) => open(p, await lessThanWide(p, x[i], y[i], circuit)));
        assert.deepEqual(
          [...lt],
          xs.map((v, i) => (v < ys[i]! ? 1n : 0n)),
          circuit,
        );
      }
    });

    it('A2B gives every bit of x, and B2A brings them back', async () => {
      const x = interesting(100);
      const xs = await shared([100], x);
      const [[bits, back]] = await both(async (p, i) => {
        const planes = await arithmeticToBinary(p, xs[i]);
        const opened = await openPlanes(p, planes);
        return [opened, await open(p, await binaryToArithmetic(p, planes, 100))] as const;
      });
      for (let i = 0; i < 100; i++) for (let j = 0; j < 64; j++) assert.equal(bits[j]![i], Number((x[i]! >> BigInt(j)) & 1n));
      assert.deepEqual(back, x);
    });

    it('a sign costs 8 rounds for the whole tensor, a ReLU 9 (dealer: carry tree); 64 and 65 with ot (ripple carry, a third of the gates)', async () => {
      const sx = await shared([64], interesting(64));
      const [rounds] = await both(async (p, i) => {
        await isNegative(p, sx[i]);
        const afterSign = p.channel.counters.rounds;
        await relu(p, sx[i]);
        return [afterSign, p.channel.counters.rounds - afterSign];
      });
      assert.deepEqual(rounds, kind === 'ot' ? [64, 65] : [8, 9]);
    });

    it('refuses a message of the wrong size and reports a party that disappears', async () => {
      const [c0, c1] = channelPair();
      const [d0] = dealerProviders();
      const p0 = mpcParty(0, c0, d0);
      const x = (await shared([4], interesting(4)))[0];
      const opening = open(p0, x);
      await c1.exchange(new Uint8Array(5));
      await assert.rejects(opening, /expected 32 bytes \(4 ring elements\), got 5/);
      const waiting = open(p0, x);
      c1.disconnect();
      await assert.rejects(waiting, /the other party disconnected mid-protocol/);
    });
  });
