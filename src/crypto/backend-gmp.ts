/**
 * Native GMP backend (native/gmp_addon.c, built by `npm install`): multiply, inverse, fixed-base
 * tables and simultaneous exponentiation at native speed. Plain modPow still goes to OpenSSL, which
 * measured about 10% faster than mpz_powm here.
 */
import { createRequire } from 'node:module';
import type { BignumBackend, FixedBase } from './backend.js';
import { bitLength } from './bigint.js';
import { opensslModPow } from './backend-openssl.js';
import { ParameterError } from './errors.js';

export interface NativeGmp {
  powm(base: bigint, exp: bigint, m: bigint, secret: boolean): bigint;
  powm2(b1: bigint, e1: bigint, b2: bigint, e2: bigint, m: bigint): bigint;
  mulmod(a: bigint, b: bigint, m: bigint): bigint;
  invert(a: bigint, m: bigint): bigint;
  fixedBaseTable(base: bigint, m: bigint, bits: number, window: number): object;
  fixedBasePow(table: object, exp: bigint): bigint;
  multipow(bases: bigint[], exps: bigint[], m: bigint): bigint;
  /** Z_2^64 matrix product into `out` (the secret-sharing engine's kernel; absent in older builds). */
  ringMatmul?(a: BigUint64Array, b: BigUint64Array, out: BigUint64Array, m: number, k: number, n: number): void;
  ringElementwise?(op: 0 | 1 | 2, a: BigUint64Array, b: BigUint64Array, out: BigUint64Array): void;
  ringUnary?(op: 0 | 1 | 2, a: BigUint64Array, c: bigint, out: BigUint64Array): void;
  bitTranspose?(input: Uint8Array, out: Uint8Array, rows: number, cols: number): void;
  otHash?(rows: Uint8Array, out: Uint8Array, key: Uint8Array, tweak: number, mask: Uint8Array): void;
}

/** Below this modulus size GMP's own powm wins (OpenSSL's DH setup overhead dominates). */
const OPENSSL_FROM = 1n << 1023n;
const SHORT_EXPONENT = 1n << 160n;

const ADDON_PATH = '../../../native/build/Release/ciphermine_gmp.node';

/** The addon, or undefined when it was not built (no compiler or no libgmp-dev). */
export function loadNativeGmp(): NativeGmp | undefined {
  try {
    return createRequire(import.meta.url)(ADDON_PATH) as NativeGmp;
  } catch {
    return undefined;
  }
}

class GmpFixedBase implements FixedBase {
  constructor(
    private readonly gmp: NativeGmp,
    private readonly table: object,
    private readonly base: bigint,
    private readonly m: bigint,
    readonly bits: number,
  ) {}
  pow(exp: bigint): bigint {
    if (exp < 0n) throw new ParameterError('exponent must be >= 0');
    if (bitLength(exp) > this.bits) return this.gmp.powm(this.base, exp, this.m, false);
    return this.gmp.fixedBasePow(this.table, exp);
  }
}

export class GmpBackend implements BignumBackend {
  readonly name: BignumBackend['name'] = 'gmp';
  constructor(private readonly gmp: NativeGmp) {}
  modPow(base: bigint, exp: bigint, m: bigint): bigint {
    // OpenSSL's per-call set-up (~0.35 ms at 4096 bits) loses to GMP below ~160-bit exponents.
    if (m >= OPENSSL_FROM && exp >= SHORT_EXPONENT) return opensslModPow(base, exp, m);
    if (exp < 0n) throw new ParameterError('exponent must be >= 0');
    return this.gmp.powm(base, exp, m, false);
  }
  multiPow(bases: readonly bigint[], exps: readonly bigint[], m: bigint): bigint {
    if (bases.length !== exps.length) throw new ParameterError('one exponent per base');
    if (exps.some((e) => e < 0n)) throw new ParameterError('exponents must be >= 0');
    // The shared chain is bit-by-bit: it wins for short exponents; long ones go to OpenSSL one by one.
    if (m >= OPENSSL_FROM && exps.some((e) => e >= SHORT_EXPONENT)) {
      return bases.reduce((acc, b, i) => this.gmp.mulmod(acc, this.modPow(b, exps[i]!, m), m), 1n);
    }
    return this.gmp.multipow(bases as bigint[], exps as bigint[], m);
  }
  modPowSecret(base: bigint, exp: bigint, m: bigint): bigint {
    if (m >= OPENSSL_FROM) return opensslModPow(base, exp, m);
    if (exp < 0n) throw new ParameterError('exponent must be >= 0');
    return this.gmp.powm(base, exp, m, true);
  }
  modPow2(b1: bigint, e1: bigint, b2: bigint, e2: bigint, m: bigint): bigint {
    if (e1 < 0n || e2 < 0n) throw new ParameterError('exponents must be >= 0');
    return this.gmp.powm2(b1, e1, b2, e2, m);
  }
  modMul(a: bigint, b: bigint, m: bigint): bigint {
    return this.gmp.mulmod(a, b, m);
  }
  modInverse(a: bigint, m: bigint): bigint {
    const r = this.gmp.invert(a, m);
    if (r < 0n) throw new ParameterError('value is not invertible modulo m');
    return r;
  }
  fixedBase(base: bigint, m: bigint, expBits: number, window = 6): FixedBase {
    const table = this.gmp.fixedBaseTable(base, m, expBits, window);
    return new GmpFixedBase(this.gmp, table, base, m, Math.ceil(expBits / window) * window);
  }
  modPowBatch(bases: readonly bigint[], exps: readonly bigint[] | bigint, m: bigint): bigint[] {
    return bases.map((b, i) => this.modPow(b, typeof exps === 'bigint' ? exps : exps[i]!, m));
  }
}
