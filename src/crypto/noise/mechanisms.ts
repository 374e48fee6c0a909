/**
 * Differential privacy mechanisms (seed 001 sections 3 to 7, docs/differential-privacy.md): calibration of
 * integer noise to a sensitivity and epsilon, the sPMDP split of that noise between parties, and the
 * exponential mechanism.
 */
import { ParameterError } from '../errors.js';
import { discreteGaussian, discreteLaplace, geometric, secureUniform, type Uniform } from './samplers.js';
import { div, parseRational, rational, toNumber, type Rational } from './rational.js';

export type NoiseKind = 'laplace' | 'gaussian';

/** What to sample: discrete Laplace with scale, or discrete Gaussian with sigma^2 (exact rationals). */
export interface NoiseSpec {
  kind: NoiseKind;
  /** Laplace: scale t = sensitivity / epsilon; Gaussian: sigma^2. */
  param: Rational;
}

export function laplaceSpec(sensitivity: bigint, epsilon: Rational): NoiseSpec {
  if (epsilon.num <= 0n) throw new ParameterError('epsilon must be > 0');
  if (sensitivity <= 0n) throw new ParameterError('sensitivity must be > 0');
  return { kind: 'laplace', param: div(rational(sensitivity), epsilon) };
}

/**
 * (epsilon, delta) Gaussian: sigma = sensitivity sqrt(2 ln(1.25 / delta)) / epsilon (the classic
 * calibration, valid for epsilon < 1). The calibration is computed in floating point and rounded up
 * to a rational sigma^2; the sampling itself is exact.
 */
export function gaussianSpec(sensitivity: bigint, epsilon: Rational, delta: number): NoiseSpec {
  if (epsilon.num <= 0n) throw new ParameterError('epsilon must be > 0');
  if (!(delta > 0 && delta < 1)) throw new ParameterError('delta must be in (0, 1)');
  const sigma = (Number(sensitivity) * Math.sqrt(2 * Math.log(1.25 / delta))) / toNumber(epsilon);
  const sigma2 = parseRational((sigma * sigma * (1 + 1e-12)).toPrecision(15));
  return { kind: 'gaussian', param: sigma2 };
}

export function sample(spec: NoiseSpec, u: Uniform = secureUniform): bigint {
  return spec.kind === 'laplace' ? discreteLaplace(spec.param, u) : discreteGaussian(spec.param, u);
}

/** Theoretical variance, for tests and documentation. */
export function variance(spec: NoiseSpec): number {
  if (spec.kind === 'gaussian') return toNumber(spec.param);
  const q = Math.exp(-1 / toNumber(spec.param));
  return (2 * q) / (1 - q) ** 2;
}

/**
 * sPMDP: the noise split into shares for two parties (the compute server and the key server) whose
 * sum has the target distribution and of which neither party knows the other's. Discrete Laplace is
 * exactly G1 - G2 for two independent geometrics with q = exp(-1/t): one party adds G1, the other
 * -G2. The discrete Gaussian is not infinitely divisible; each party adds a discrete Gaussian of
 * half the variance, so the sum has exactly the target variance and is close to discrete Gaussian
 * for the sigma used in practice (sigma >> 1).
 */
export function sampleShare(spec: NoiseSpec, party: 0 | 1, u: Uniform = secureUniform): bigint {
  if (spec.kind === 'laplace') return party === 0 ? geometric(spec.param, u) : -geometric(spec.param, u);
  return discreteGaussian(div(spec.param, rational(2n)), u);
}

/** Uniform in (0, 1) with 53 random bits, never 0. */
function uniform01(u: Uniform = secureUniform): number {
  const x = Number(u(1n << 53n)) / 2 ** 53;
  return x === 0 ? 2 ** -54 : x;
}

/**
 * Gumbel noise in fixed point (2^fractionBits units) with scale b: argmax(u_i + Gumbel(2 Delta /
 * epsilon)) chooses i with probability proportional to exp(epsilon u_i / (2 Delta)), the exponential
 * mechanism. The Gumbel variate is computed in floating point; it is never released, only compared.
 */
export function gumbelFixedPoint(scale: number, fractionBits: number, u: Uniform = secureUniform): bigint {
  return BigInt(Math.round(-Math.log(-Math.log(uniform01(u))) * scale * 2 ** fractionBits));
}

/** |G| is clipped here (64 scales): the slot width of the scores must be bounded, and beyond it the tail is below 2^-90. */
export function gumbelBound(scale: number, fractionBits: number): bigint {
  const bound = Math.ceil(64 * scale * 2 ** fractionBits);
  if (!Number.isFinite(bound)) throw new ParameterError(`a Gumbel scale of ${scale} is too large`);
  return BigInt(bound);
}

/** A Gumbel variate in fixed point, clipped to +-gumbelBound. */
export function boundedGumbel(scale: number, fractionBits: number, u: Uniform = secureUniform): bigint {
  const cap = gumbelBound(scale, fractionBits);
  const g = gumbelFixedPoint(scale, fractionBits, u);
  return g > cap ? cap : g < -cap ? -cap : g;
}

/** The exponential mechanism over plaintext utilities (reference for the encrypted one). */
export function exponentialMechanism(utilities: readonly number[], epsilon: number, sensitivity: number): number {
  let best = 0;
  let bestScore = -Infinity;
  utilities.forEach((u, i) => {
    const score = u + -Math.log(-Math.log(uniform01())) * ((2 * sensitivity) / epsilon);
    if (score > bestScore) {
      bestScore = score;
      best = i;
    }
  });
  return best;
}
