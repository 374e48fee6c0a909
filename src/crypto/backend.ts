/**
 * The bignum backend: the handful of modular operations everything else is built from, behind one
 * small interface so the fastest available arithmetic can be swapped in without touching the
 * cryptosystem. Selection order: native GMP addon (plus OpenSSL for plain modPow, which measured
 * faster here), then OpenSSL + BigInt, then BigInt alone. CIPHERMINE_BACKEND=gmp|openssl|js forces one.
 */
export interface FixedBase {
  /** Exponents up to this many bits use the table; larger ones fall back to modPow. */
  readonly bits: number;
  pow(exp: bigint): bigint;
}

export interface BignumBackend {
  readonly name: 'gmp' | 'openssl' | 'js';
  /** base^exp mod m for exp >= 0; exp is public (variable-time is fine). */
  modPow(base: bigint, exp: bigint, m: bigint): bigint;
  /** Same, for secret exponents: constant-time where the backend offers it. */
  modPowSecret(base: bigint, exp: bigint, m: bigint): bigint;
  /** b1^e1 * b2^e2 mod m with a shared squaring chain. */
  modPow2(b1: bigint, e1: bigint, b2: bigint, e2: bigint, m: bigint): bigint;
  /** prod bases[i]^exps[i] mod m (exps >= 0), sharing one squaring chain where the backend can. */
  multiPow(bases: readonly bigint[], exps: readonly bigint[], m: bigint): bigint;
  modMul(a: bigint, b: bigint, m: bigint): bigint;
  /** Throws ParameterError when gcd(a, m) != 1. */
  modInverse(a: bigint, m: bigint): bigint;
  /** Precomputed powers of a base that is used many times (g, a public key h). */
  fixedBase(base: bigint, m: bigint, expBits: number, window?: number): FixedBase;
  modPowBatch(bases: readonly bigint[], exps: readonly bigint[] | bigint, m: bigint): bigint[];
}
