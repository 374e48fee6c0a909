/**
 * OT extension's building blocks: base OTs deliver the chosen key and only it; the native bit
 * transpose and AES hash give the TypeScript fallback's bytes; the ot provider's material is
 * correct and its extension messages are refused when malformed.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { channelPair } from '../../src/mpc/channel.js';
import { baseOts } from '../../src/mpc/ot/base-ot.js';
import { hashRows, hashRowsJs, nativeOtHash } from '../../src/mpc/ot/iknp.js';
import { nativeBitTranspose, transposeBits, transposeBitsJs } from '../../src/mpc/bit-matrix.js';
import { OtProvider } from '../../src/mpc/provider/ot.js';
import * as ring from '../../src/mpc/ring.js';

const bit = (b: Uint8Array, i: number) => (b[i >>> 3]! >>> (i & 7)) & 1;

describe('OT extension', () => {
  it('base OTs: the receiver gets the key it chose, which differs from the other', async () => {
    const [c0, c1] = channelPair();
    const [s0, s1] = [randomBytes(16), randomBytes(16)];
    const [r0, r1] = await Promise.all([baseOts(c0, s0), baseOts(c1, s1)]);
    for (let i = 0; i < 128; i++) {
      assert.ok(r0.sent[i]![bit(s1, i)]!.equals(r1.received[i]!));
      assert.ok(!r0.sent[i]![1 - bit(s1, i)]!.equals(r1.received[i]!));
      assert.ok(r1.sent[i]![bit(s0, i)]!.equals(r0.received[i]!));
    }
  });

  it('base OTs refuse a point that is not on the curve', async () => {
    const [c0, c1] = channelPair();
    const pending = baseOts(c0, randomBytes(16));
    await c1.exchange(new Uint8Array(32).fill(0xff));
    await assert.rejects(pending, /not a ristretto255 point/);
  });

  it('the bit transpose and the hash give the same bytes natively and in TypeScript', () => {
    for (const [rows, cols] of [
      [128, 1024],
      [16, 8],
      [48, 40],
    ] as const) {
      const m = new Uint8Array(randomBytes((rows * cols) / 8));
      const js = new Uint8Array(m.length);
      transposeBitsJs(m, js, rows, cols);
      assert.deepEqual(transposeBits(m, rows, cols), js);
      for (let k = 0; k < 50; k++) {
        const [r, c] = [Math.floor(Math.random() * rows), Math.floor(Math.random() * cols)];
        assert.equal(bit(js, c * rows + r), bit(m, r * cols + c));
      }
    }
    const rows = randomBytes(16 * 5000);
    const mask = randomBytes(16);
    assert.ok(hashRows(rows, 2 ** 33 + 7, mask).equals(hashRowsJs(rows, 2 ** 33 + 7, mask)));
    assert.ok(!hashRows(rows, 1).equals(hashRows(rows, 2)), 'the tweak matters');
    assert.throws(() => transposeBits(new Uint8Array(10), 16, 8), /rows divisible by 16/);
    console.log(`native transpose ${nativeBitTranspose}, native hash ${nativeOtHash}`);
  });

  it('provides exact AND triples, daBits, Beaver and matrix triples', async () => {
    const [c0, c1] = channelPair();
    const [p0, p1] = [new OtProvider(0, c0), new OtProvider(1, c1)];
    const [a0, a1] = await Promise.all([p0.andTriple(1000), p1.andTriple(1000)]);
    for (let i = 0; i < 1000; i++) assert.equal(((a0.a[i]! ^ a1.a[i]!) & (a0.b[i]! ^ a1.b[i]!)) >>> 0, (a0.c[i]! ^ a1.c[i]!) >>> 0);
    const [d0, d1] = await Promise.all([p0.daBits(300), p1.daBits(300)]);
    for (let i = 0; i < 300; i++)
      assert.equal(BigInt.asUintN(64, d0.arith[i]! + d1.arith[i]!), BigInt(((d0.bits[i >>> 5]! ^ d1.bits[i >>> 5]!) >>> (i & 31)) & 1));
    const [t0, t1] = await Promise.all([p0.triple(200), p1.triple(200)]);
    assert.deepEqual(ring.mul(ring.add(t0.a, t1.a), ring.add(t0.b, t1.b)), ring.add(t0.c, t1.c));
    const [m0, m1] = await Promise.all([p0.matmulTriple(3, 4, 5), p1.matmulTriple(3, 4, 5)]);
    assert.deepEqual(ring.matmul(ring.add(m0.a, m1.a), ring.add(m0.b, m1.b), 3, 4, 5), ring.add(m0.c, m1.c));
    assert.ok(p0.counters.offlineBytes > 0 && p0.counters.offlineSeconds > 0);
  });

  it('calls started together are served in one order at both parties, however the replies are delayed', async () => {
    const [c0, c1] = channelPair();
    // Party 0's replies come back after random delays, so concurrent calls would interleave.
    const jittery = {
      counters: c0.counters,
      exchange: async (m: Uint8Array) => {
        const r = await c0.exchange(m);
        await new Promise((done) => setTimeout(done, Math.random() * 5));
        return r;
      },
    };
    const [p0, p1] = [new OtProvider(0, jittery), new OtProvider(1, c1)];
    const [d0, d1] = await Promise.all([Promise.all([1, 2, 3, 4].map(() => p0.daBits(40))), Promise.all([1, 2, 3, 4].map(() => p1.daBits(40)))]);
    d0.forEach((x, j) => {
      for (let i = 0; i < 40; i++) {
        assert.equal(BigInt.asUintN(64, x.arith[i]! + d1[j]!.arith[i]!), BigInt(((x.bits[i >>> 5]! ^ d1[j]!.bits[i >>> 5]!) >>> (i & 31)) & 1));
      }
    });
    await assert.rejects(p0.matmulTriple(512, 784, 4), /too wide for the ot provider/);
  });

  it('refuses an extension matrix of the wrong size', async () => {
    const [c0, c1] = channelPair();
    const [p0, p1] = [new OtProvider(0, c0), new OtProvider(1, c1)];
    await Promise.all([p0.andTriple(4), p1.andTriple(4)]); // base OTs done
    const pending = p0.andTriple(4);
    await c1.exchange(new Uint8Array(7));
    await assert.rejects(pending, /OT extension matrix/);
  });
});
