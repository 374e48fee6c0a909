/**
 * Private standardisation (seed 002's preprocessing on shares): the plaintext run of the same steps
 * matches the float z-score within its documented floor and rounding, the shares match the
 * plaintext run within the engine's truncation, and neither party's share says anything alone.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { plainOps, type Tensor } from '../../src/analytics/mlp.js';
import { sharedOps } from '../../src/analytics/mlp-shared.js';
import { standardise, VARIANCE_FLOOR } from '../../src/analytics/standardise.js';
import { channelPair } from '../../src/mpc/channel.js';
import { mpcParty } from '../../src/mpc/party.js';
import { dealerProviders } from '../../src/mpc/provider/dealer.js';
import { splitSecret } from '../../src/mpc/primitives/arithmetic.js';
import * as ring from '../../src/mpc/ring.js';

function table(path: string, columns: number): number[][] {
  return readFileSync(new URL(`../../../${path}`, import.meta.url), 'utf8')
    .trim()
    .split('\n')
    .slice(1)
    .map((l) => l.trim().split(',').slice(0, columns).map(Number));
}

const tensor = (rows: number[][]): Tensor => ({ shape: [rows.length, rows[0]!.length], data: ring.encodeFixed(rows.flat(), 16) });
const decoded = (t: Tensor) => ring.decodeFixed(t.data, 16);

/** Per column, the power of two at or above its largest |value|, as an owner declares it. */
const boundsOf = (rows: number[][]) =>
  rows[0]!.map((_, j) => 2 ** Math.max(0, Math.ceil(Math.log2(Math.max(1, ...rows.map((r) => Math.abs(r[j]!)))))));

/** The float map the fixed-point steps approximate: mean, and 1 / sqrt(var + floor B^2). */
function floatMap(rows: number[][], bounds: number[]) {
  const d = rows[0]!.length;
  const mean = Array.from({ length: d }, (_, j) => rows.reduce((s, r) => s + r[j]!, 0) / rows.length);
  const variance = mean.map((m, j) => rows.reduce((s, r) => s + (r[j]! - m) ** 2, 0) / rows.length);
  return { mean, scale: variance.map((v, j) => 1 / Math.sqrt(v + VARIANCE_FLOOR * bounds[j]! ** 2)) };
}

describe('private standardisation', () => {
  for (const [name, path, columns] of [
    ['iris', 'data/iris.csv', 4],
    ['wine', 'test/fixtures/wine.csv', 13],
  ] as const) {
    it(`${name}: the fixed-point steps give the z-score map (mean within its documented bias, scale within 1%)`, async () => {
      const rows = table(path, columns);
      const bounds = boundsOf(rows);
      const got = await standardise(plainOps, tensor(rows), bounds);
      const want = floatMap(rows, bounds);
      const n = rows.length;
      // c_j's rounding: n / 2^(17 + a_j) relative (standardise.ts), plus a few units of truncation
      const bias = (j: number) => n / 2 ** (17 + Math.min(16, Math.max(0, Math.ceil(Math.log2(n)) - Math.log2(bounds[j]!) - 2)));
      decoded(got.mean).forEach((m, j) =>
        assert.ok(Math.abs(m - want.mean[j]!) <= Math.abs(want.mean[j]!) * bias(j) + 2 ** -12, `mean ${j}: ${m} vs ${want.mean[j]}`),
      );
      decoded(got.scale).forEach((s, j) => assert.ok(Math.abs(s / want.scale[j]! - 1) < 0.01, `scale ${j}: ${s} vs ${want.scale[j]}`));
      const z = decoded(got.z);
      for (let j = 0; j < columns; j++) {
        const col = rows.map((_, i) => z[i * columns + j]!);
        const m = col.reduce((a, v) => a + v, 0) / col.length;
        assert.ok(Math.abs(m) < 0.01, `column ${j} mean ${m}`);
      }
    });
  }

  it('on shares equals the plaintext steps within the truncation error, and a constant column stays finite', async () => {
    const rows = table('data/iris.csv', 4).map((r) => [...r, 3]);
    const x = tensor(rows);
    const bounds = boundsOf(rows);
    const reference = await standardise(plainOps, x, bounds);
    const [c0, c1] = channelPair();
    const [p0, p1] = dealerProviders();
    const [x0, x1] = splitSecret(x.shape, x.data);
    const [s0, s1] = await Promise.all([
      standardise(sharedOps(mpcParty(0, c0, p0)), x0, bounds),
      standardise(sharedOps(mpcParty(1, c1, p1)), x1, bounds),
    ]);
    const open = (a: Tensor, b: Tensor) => ring.decodeFixed(ring.add(a.data, b.data), 16);
    const close = (a: number[], b: number[], tol: number, what: string) =>
      a.forEach((v, i) => assert.ok(Math.abs(v - b[i]!) <= tol, `${what}[${i}]: ${v} vs ${b[i]}`));
    close(open(s0.mean, s1.mean), decoded(reference.mean), 2 ** -12, 'mean');
    // the documented bound: the scale within 1% relative (the Newton steps amplify the variance's
    // truncation error by 1 / v), so z within 1% of itself plus a few units of truncation
    const relClose = (a: number[], b: number[], rel: number, abs: number, what: string) =>
      a.forEach((v, i) => assert.ok(Math.abs(v - b[i]!) <= Math.abs(b[i]!) * rel + abs, `${what}[${i}]: ${v} vs ${b[i]}`));
    relClose(open(s0.scale, s1.scale), decoded(reference.scale), 0.01, 0, 'scale');
    relClose(open(s0.z, s1.z), decoded(reference.z), 0.01, 2 ** -8, 'z');
    // the constant column (B = 4): variance 0, so the floor sets the scale to 32 / B and z to 0
    assert.ok(Math.abs(open(s0.scale, s1.scale)[4]! - 8) < 0.01);
    // one share alone is uniform noise, not the mean
    assert.ok(Math.abs(ring.decodeFixed(s1.mean.data, 16)[0]! - 5.84) > 1);
  });

  it('refuses a bound it cannot keep in the ring, and a single record', async () => {
    const x = tensor([[1, 2]]);
    await assert.rejects(standardise(plainOps, tensor([[1], [2]]), [2 ** 21]), /bound/);
    await assert.rejects(standardise(plainOps, tensor([[1], [2]]), [Number.NaN]), /bound/);
    await assert.rejects(standardise(plainOps, tensor([[1], [2]]), [1, 1]), /2 feature bounds for 1 features/);
    await assert.rejects(standardise(plainOps, x, [4, 4]), /at least two records/);
  });
});
