/**
 * The noise matches its target distribution: chi-square goodness of fit (alpha 0.001) and empirical
 * variance within 10% of the theoretical one, for pmdp (one sampler) and spmdp (the sum of the two
 * parties' shares); the exponential mechanism's choice frequencies match exp(epsilon u / (2 Delta)).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { laplaceSpec, gaussianSpec, sample, sampleShare, variance, exponentialMechanism, type NoiseSpec } from '../../src/crypto/noise/mechanisms.js';
import { bernoulliExp, discreteLaplace } from '../../src/crypto/noise/samplers.js';
import { parseRational, rational, toNumber } from '../../src/crypto/noise/rational.js';
import { ParameterError } from '../../src/crypto/index.js';

const DRAWS = 4000;

/** Upper 0.001 quantile of chi-square with df degrees of freedom (Wilson-Hilferty). */
function chi2Critical(df: number): number {
  const z = 3.09;
  return df * (1 - 2 / (9 * df) + z * Math.sqrt(2 / (9 * df))) ** 3;
}

/** Chi-square of integer draws against a pmf, pooling values with expected counts below 5. */
function chiSquare(draws: readonly bigint[], pmf: (x: number) => number, range: number): { stat: number; df: number } {
  const cells: Array<{ expected: number; observed: number }> = [];
  let poolE = 0;
  let poolO = 0;
  const counts = new Map<number, number>();
  for (const d of draws) counts.set(Number(d), (counts.get(Number(d)) ?? 0) + 1);
  let covered = 0;
  for (let x = -range; x <= range; x++) {
    const e = pmf(x) * draws.length;
    covered += pmf(x);
    const o = counts.get(x) ?? 0;
    if (e < 5) {
      poolE += e;
      poolO += o;
    } else cells.push({ expected: e, observed: o });
  }
  const outside = draws.filter((d) => Math.abs(Number(d)) > range).length;
  poolE += (1 - covered) * draws.length;
  poolO += outside;
  if (poolE > 0) cells.push({ expected: poolE, observed: poolO });
  const stat = cells.reduce((acc, c) => acc + (c.observed - c.expected) ** 2 / c.expected, 0);
  return { stat, df: cells.length - 1 };
}

function laplacePmf(t: number): (x: number) => number {
  const q = Math.exp(-1 / t);
  return (x) => ((1 - q) / (1 + q)) * q ** Math.abs(x);
}

function gaussianPmf(sigma2: number): (x: number) => number {
  let z = 0;
  for (let x = -200; x <= 200; x++) z += Math.exp((-x * x) / (2 * sigma2));
  return (x) => Math.exp((-x * x) / (2 * sigma2)) / z;
}

function check(name: string, draws: bigint[], spec: NoiseSpec, pmf: (x: number) => number) {
  const { stat, df } = chiSquare(draws, pmf, 60);
  assert.ok(stat < chi2Critical(df), `${name}: chi-square ${stat.toFixed(1)} >= ${chi2Critical(df).toFixed(1)} (df ${df})`);
  const mean = draws.reduce((a, b) => a + Number(b), 0) / draws.length;
  const v = draws.reduce((a, b) => a + (Number(b) - mean) ** 2, 0) / (draws.length - 1);
  const want = variance(spec);
  // The sample variance's own standard deviation is sqrt((mu4 - sigma^4) / n); a bound of six of
  // them (with mu4 estimated from the draws) fails by chance about once in 10^8 runs, where a fixed
  // 10 % failed now and then for the heavy-tailed Laplace differences.
  const mu4 = draws.reduce((a, b) => a + (Number(b) - mean) ** 4, 0) / draws.length;
  const sd = Math.sqrt(Math.max(0, mu4 - want * want) / draws.length);
  assert.ok(Math.abs(v - want) < 6 * sd, `${name}: variance ${v.toFixed(2)} vs ${want.toFixed(2)} (sd ${sd.toFixed(2)})`);
}

describe('integer noise samplers', () => {
  it('parse epsilon exactly and refuse nonsense', () => {
    assert.deepEqual(parseRational('0.25'), rational(1n, 4n));
    assert.deepEqual(parseRational(1.5), rational(3n, 2n));
    assert.deepEqual(parseRational('2e-3'), rational(1n, 500n));
    for (const bad of ['abc', '', '1/2', 'NaN']) assert.throws(() => parseRational(bad), ParameterError);
    assert.throws(() => laplaceSpec(1n, parseRational('0')), ParameterError);
    assert.throws(() => laplaceSpec(1n, parseRational('-1')), ParameterError);
  });

  it('Bernoulli(exp(-gamma)) has the right mean', () => {
    const n = 4000;
    const hits = Array.from({ length: n }, () => bernoulliExp(rational(3n, 2n))).filter(Boolean).length;
    const p = Math.exp(-1.5);
    assert.ok(Math.abs(hits / n - p) < 4 * Math.sqrt((p * (1 - p)) / n));
  });

  it('pmdp discrete Laplace (scale 3) fits its pmf and variance', () => {
    const spec = laplaceSpec(3n, parseRational('1'));
    check(
      'laplace',
      Array.from({ length: DRAWS }, () => sample(spec)),
      spec,
      laplacePmf(3),
    );
  });

  it('pmdp discrete Gaussian (sigma^2 = 9) fits its pmf and variance', () => {
    const spec: NoiseSpec = { kind: 'gaussian', param: rational(9n) };
    check(
      'gaussian',
      Array.from({ length: DRAWS }, () => sample(spec)),
      spec,
      gaussianPmf(9),
    );
  });

  it("spmdp: the two parties' Laplace shares sum to the discrete Laplace exactly", () => {
    const spec = laplaceSpec(3n, parseRational('1'));
    const draws = Array.from({ length: DRAWS }, () => sampleShare(spec, 0) + sampleShare(spec, 1));
    check('spmdp laplace', draws, spec, laplacePmf(3));
  });

  it('spmdp: the Gaussian shares sum to the target variance and fit the discrete Gaussian', () => {
    const spec: NoiseSpec = { kind: 'gaussian', param: rational(9n) };
    const draws = Array.from({ length: DRAWS }, () => sampleShare(spec, 0) + sampleShare(spec, 1));
    check('spmdp gaussian', draws, spec, gaussianPmf(9));
  });

  it('Gaussian calibration: sigma = Delta sqrt(2 ln(1.25/delta)) / epsilon', () => {
    const s = gaussianSpec(2n, parseRational('0.5'), 1e-5);
    const want = ((2 * Math.sqrt(2 * Math.log(1.25 / 1e-5))) / 0.5) ** 2;
    assert.ok(Math.abs(toNumber(s.param) - want) / want < 1e-9);
  });

  it('discrete Laplace at a fractional scale (Delta / epsilon = 1 / 0.7) fits', () => {
    const spec = laplaceSpec(1n, parseRational('0.7'));
    const draws = Array.from({ length: DRAWS }, () => discreteLaplace(spec.param));
    check('laplace 1/0.7', draws, spec, laplacePmf(1 / 0.7));
  });
});

describe('exponential mechanism', () => {
  it('chooses i with probability proportional to exp(epsilon u_i / (2 Delta))', () => {
    const u = [0, 1, 2, 4];
    const eps = 1;
    const counts = [0, 0, 0, 0];
    for (let i = 0; i < DRAWS; i++) counts[exponentialMechanism(u, eps, 1)]!++;
    const w = u.map((x) => Math.exp((eps * x) / 2));
    const total = w.reduce((a, b) => a + b, 0);
    const stat = counts.reduce((acc, o, i) => acc + (o - (DRAWS * w[i]!) / total) ** 2 / ((DRAWS * w[i]!) / total), 0);
    assert.ok(stat < chi2Critical(3), `chi-square ${stat}`);
  });
});
