/** Parsers for command-line values: a bad value is refused by name before anything runs. */
import { InvalidArgumentError } from 'commander';

export const list = (v: string): string[] =>
  v
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);

const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

export function number(v: string): number {
  if (!DECIMAL.test(v.trim())) throw new InvalidArgumentError(`expected a number, got '${v}'`);
  return Number(v);
}

export function integer(v: string): number {
  const n = DECIMAL.test(v.trim()) ? Number(v) : NaN;
  if (!Number.isSafeInteger(n)) throw new InvalidArgumentError(`expected an integer, got '${v}'`);
  return n;
}

export const numberList = (v: string): number[] => list(v).map(number);
export const integerList = (v: string): number[] => list(v).map(integer);
