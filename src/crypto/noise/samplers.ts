/**
 * (Lives in crypto/ as a provider of randomness, kept apart from the protocols that use it.)
 *
 * Exact integer noise samplers (Canonne, Kamath, Steinke 2020, "The Discrete Gaussian for
 * Differential Privacy", algorithms 1 to 3): Bernoulli(exp(-gamma)) for rational gamma, discrete
 * Laplace and discrete Gaussian. Randomness comes only from node:crypto and no floating point is
 * involved, so the noise leaks nothing through rounding (docs/differential-privacy.md).
 */
import { randomBelow } from '../bigint.js';
import { ParameterError } from '../errors.js';
import { cmp, div, floor, mul, rational, sub, type Rational } from './rational.js';

/** Source of uniform integers in [0, n): replaceable in tests, node:crypto by default. */
export type Uniform = (n: bigint) => bigint;
export const secureUniform: Uniform = randomBelow;

export function bernoulli(p: Rational, u: Uniform = secureUniform): boolean {
  return u(p.den) < p.num;
}

/** Bernoulli(exp(-gamma)), gamma >= 0 rational. */
export function bernoulliExp(gamma: Rational, u: Uniform = secureUniform): boolean {
  if (gamma.num < 0n) throw new ParameterError('gamma must be >= 0');
  const one = rational(1n);
  if (cmp(gamma, one) <= 0) {
    let k = 1n;
    for (;;) {
      if (!bernoulli(rational(gamma.num, gamma.den * k), u)) break;
      k++;
    }
    return k % 2n === 1n;
  }
  for (let i = 0n; i < floor(gamma); i++) if (!bernoulliExp(one, u)) return false;
  return bernoulliExp(sub(gamma, rational(floor(gamma))), u);
}

/**
 * One-sided geometric: P(k) = (1 - q) q^k, k >= 0, with q = exp(-1/scale). CKS algorithm 2's first
 * half: for scale = t/s, X = U + t V with U accepted with probability exp(-U/t) and V ~ Geometric(e^-1)
 * is Geometric(exp(-1/t)), and floor(X / s) is Geometric(exp(-s/t)); expected work is constant in the
 * scale, where the naive loop would take `scale` steps.
 */
export function geometric(scale: Rational, u: Uniform = secureUniform): bigint {
  if (scale.num <= 0n) throw new ParameterError('the scale must be positive');
  const t = scale.num;
  const s = scale.den;
  for (;;) {
    const U = u(t);
    if (!bernoulliExp(rational(U, t), u)) continue;
    let V = 0n;
    while (bernoulliExp(rational(1n), u)) V++;
    return (U + t * V) / s;
  }
}

/** Discrete Laplace with scale t: P(x) proportional to exp(-|x| / t), t > 0 rational (CKS algorithm 2). */
export function discreteLaplace(scale: Rational, u: Uniform = secureUniform): bigint {
  if (scale.num <= 0n) throw new ParameterError('the Laplace scale must be positive');
  for (;;) {
    const Y = geometric(scale, u);
    const B = u(2n) === 1n;
    if (B && Y === 0n) continue; // zero would otherwise be counted twice
    return B ? -Y : Y;
  }
}

/** Discrete Gaussian: P(x) proportional to exp(-x^2 / (2 sigma^2)), sigma^2 > 0 rational. */
export function discreteGaussian(sigma2: Rational, u: Uniform = secureUniform): bigint {
  if (sigma2.num <= 0n) throw new ParameterError('sigma^2 must be positive');
  // t = floor(sigma) + 1 via an integer square root of floor(sigma^2)
  const t = isqrt(floor(sigma2)) + 1n;
  const tR = rational(t);
  const shift = div(sigma2, tR);
  for (;;) {
    const Y = discreteLaplace(tR, u);
    const a = Y < 0n ? -Y : Y;
    const d = sub(rational(a), shift);
    const gamma = div(mul(d, d), mul(rational(2n), sigma2));
    if (bernoulliExp(gamma, u)) return Y;
  }
}

export function isqrt(n: bigint): bigint {
  if (n < 2n) return n;
  let x = BigInt(Math.floor(Math.sqrt(Number(n))));
  while (x * x > n) x--;
  while ((x + 1n) * (x + 1n) <= n) x++;
  return x;
}
