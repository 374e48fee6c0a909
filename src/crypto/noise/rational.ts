/**
 * Exact non-negative rationals for the noise samplers: epsilon and noise scales are parsed from
 * decimal strings into num/den, so calibration never goes through floating point.
 */
import { ParameterError } from '../errors.js';

export interface Rational {
  num: bigint;
  den: bigint;
}

function gcd(a: bigint, b: bigint): bigint {
  while (b) [a, b] = [b, a % b];
  return a < 0n ? -a : a;
}

export function rational(num: bigint, den = 1n): Rational {
  if (den === 0n) throw new ParameterError('zero denominator');
  if (den < 0n) [num, den] = [-num, -den];
  const g = gcd(num, den) || 1n;
  return { num: num / g, den: den / g };
}

/** "0.25", "1", "1e-3", 0.5 -> exact rational (a number is read through its shortest decimal form). */
export function parseRational(x: string | number): Rational {
  const s = typeof x === 'number' ? (Number.isFinite(x) ? String(x) : 'NaN') : x.trim();
  const m = /^([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/.exec(s);
  if (!m || (m[2] === '' && (m[3] ?? '') === '')) throw new ParameterError(`'${s}' is not a decimal number`);
  const digits = BigInt((m[2] || '0') + (m[3] ?? ''));
  let exp = Number(m[4] ?? 0) - (m[3] ?? '').length;
  if (Math.abs(exp) > 400) throw new ParameterError(`'${s}' is out of range`);
  const sign = m[1] === '-' ? -1n : 1n;
  return exp >= 0 ? rational(sign * digits * 10n ** BigInt(exp)) : rational(sign * digits, 10n ** BigInt(-exp));
}

export const mul = (a: Rational, b: Rational) => rational(a.num * b.num, a.den * b.den);
export const div = (a: Rational, b: Rational) => rational(a.num * b.den, a.den * b.num);
export const add = (a: Rational, b: Rational) => rational(a.num * b.den + b.num * a.den, a.den * b.den);
export const sub = (a: Rational, b: Rational) => rational(a.num * b.den - b.num * a.den, a.den * b.den);
export const cmp = (a: Rational, b: Rational) => {
  const d = a.num * b.den - b.num * a.den;
  return d < 0n ? -1 : d > 0n ? 1 : 0;
};
export const toNumber = (a: Rational) => Number(a.num) / Number(a.den);
export const floor = (a: Rational) => (a.num >= 0n ? a.num / a.den : -((-a.num + a.den - 1n) / a.den));
