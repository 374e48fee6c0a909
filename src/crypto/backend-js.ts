/** Pure BigInt backend: the fallback of last resort (about 6x slower than native arithmetic). */
import type { BignumBackend, FixedBase } from './backend.js';
import { bitLength, mod } from './bigint.js';
import { ParameterError } from './errors.js';

export function jsModPow(base: bigint, exp: bigint, m: bigint): bigint {
  if (m <= 1n) throw new ParameterError('modulus must be > 1');
  if (exp < 0n) throw new ParameterError('exponent must be >= 0');
  base = mod(base, m);
  // 4-bit fixed window: table of base^0..base^15, then four squarings per digit.
  const table: bigint[] = [1n];
  for (let i = 1; i < 16; i++) table.push((table[i - 1]! * base) % m);
  const hex = exp.toString(16);
  let r = 1n;
  for (const ch of hex) {
    r = (r * r) % m;
    r = (r * r) % m;
    r = (r * r) % m;
    r = (r * r) % m;
    const d = parseInt(ch, 16);
    if (d) r = (r * table[d]!) % m;
  }
  return r;
}

export function jsModInverse(a: bigint, m: bigint): bigint {
  let [oldR, r] = [mod(a, m), m];
  let [oldS, s] = [1n, 0n];
  while (r !== 0n) {
    const q = oldR / r;
    [oldR, r] = [r, oldR - q * r];
    [oldS, s] = [s, oldS - q * s];
  }
  if (oldR !== 1n) throw new ParameterError('value is not invertible modulo m');
  return mod(oldS, m);
}

/** Windowed fixed-base table in BigInt: rows[i][j] = base^(j * 2^(w i)). */
export class JsFixedBase implements FixedBase {
  readonly bits: number;
  private readonly rows: bigint[][];
  constructor(
    base: bigint,
    private readonly m: bigint,
    bits: number,
    private readonly w: number,
  ) {
    this.bits = Math.ceil(bits / w) * w;
    this.rows = [];
    let rowBase = mod(base, m);
    for (let i = 0; i < this.bits / w; i++) {
      const row: bigint[] = [1n];
      for (let j = 1; j < 1 << w; j++) row.push((row[j - 1]! * rowBase) % m);
      this.rows.push(row);
      rowBase = (row[(1 << w) - 1]! * rowBase) % m;
    }
  }
  pow(exp: bigint): bigint {
    if (exp < 0n) throw new ParameterError('exponent must be >= 0');
    if (bitLength(exp) > this.bits) return jsModPow(this.rows[0]![1]!, exp, this.m);
    const mask = BigInt((1 << this.w) - 1);
    let r = 1n;
    for (let i = 0; exp > 0n; i++, exp >>= BigInt(this.w)) {
      const d = Number(exp & mask);
      if (d) r = (r * this.rows[i]![d]!) % this.m;
    }
    return r;
  }
}

export class JsBackend implements BignumBackend {
  readonly name: BignumBackend['name'] = 'js';
  modPow(base: bigint, exp: bigint, m: bigint): bigint {
    return jsModPow(base, exp, m);
  }
  modPowSecret(base: bigint, exp: bigint, m: bigint): bigint {
    return this.modPow(base, exp, m);
  }
  modPow2(b1: bigint, e1: bigint, b2: bigint, e2: bigint, m: bigint): bigint {
    return (this.modPow(b1, e1, m) * this.modPow(b2, e2, m)) % m;
  }
  multiPow(bases: readonly bigint[], exps: readonly bigint[], m: bigint): bigint {
    return bases.reduce((acc, b, i) => (acc * this.modPow(b, exps[i]!, m)) % m, 1n % m);
  }
  modMul(a: bigint, b: bigint, m: bigint): bigint {
    return mod(a * b, m);
  }
  modInverse(a: bigint, m: bigint): bigint {
    return jsModInverse(a, m);
  }
  fixedBase(base: bigint, m: bigint, expBits: number, window = 4): FixedBase {
    return new JsFixedBase(base, m, expBits, window);
  }
  modPowBatch(bases: readonly bigint[], exps: readonly bigint[] | bigint, m: bigint): bigint[] {
    return bases.map((b, i) => this.modPow(b, typeof exps === 'bigint' ? exps : exps[i]!, m));
  }
}
