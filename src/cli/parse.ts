/**
 * Parsers for command-line values: a bad value is refused, naming the flag and what it needs,
 * before anything runs.
 */
import { InvalidArgumentError } from 'commander';

export const list = (v: string): string[] =>
  v
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);

const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

const decimal = (v: string): number => (DECIMAL.test(v.trim()) ? Number(v) : NaN);

/** A decimal number, optionally at least `min` (or above it, when `exclusive`). */
export function numberFlag(flag: string, min?: number, exclusive = false): (v: string) => number {
  const need = min === undefined ? 'a decimal number' : `a decimal number ${exclusive ? 'above' : 'of at least'} ${min}`;
  return (v) => {
    const n = decimal(v);
    if (!Number.isFinite(n) || (min !== undefined && (exclusive ? n <= min : n < min))) {
      throw new InvalidArgumentError(`${flag} must be ${need}, got '${v}'`);
    }
    return n;
  };
}

/** A whole number in [min, max]. */
export function integerFlag(flag: string, min = Number.MIN_SAFE_INTEGER, max = Number.MAX_SAFE_INTEGER): (v: string) => number {
  const need =
    min === Number.MIN_SAFE_INTEGER
      ? 'a whole number'
      : max === Number.MAX_SAFE_INTEGER
        ? `a whole number of at least ${min}`
        : `a whole number from ${min} to ${max}`;
  return (v) => {
    const n = decimal(v);
    if (!Number.isSafeInteger(n) || n < min || n > max) throw new InvalidArgumentError(`${flag} must be ${need}, got '${v}'`);
    return n;
  };
}

/** A comma-separated list, each item parsed by `item` (whose message names the flag). */
export function listOf<T>(flag: string, item: (v: string) => T): (v: string) => T[] {
  return (v) => {
    const items = list(v);
    if (items.length === 0) throw new InvalidArgumentError(`${flag} needs at least one value, got '${v}'`);
    return items.map(item);
  };
}

/** One of a fixed set of words. */
export function oneOf<T extends string>(flag: string, choices: readonly T[]): (v: string) => T {
  return (v) => {
    if (!(choices as readonly string[]).includes(v)) throw new InvalidArgumentError(`${flag} must be one of ${choices.join(', ')}, got '${v}'`);
    return v as T;
  };
}

// Generic forms, for flags whose range the library checks.
export const number = numberFlag('the value');
export const integer = integerFlag('the value');
export const numberList = listOf('the list', number);
export const integerList = listOf('the list', integer);
