/**
 * BCP public parameters pp = (N, g) (seed 000 section 2.3, seed 002 section 2; docs/cryptosystem.md).
 * N = pq with safe primes p = 2p'+1, q = 2q'+1; g generates the subgroup of QR(N^2) of maximal order
 * N p' q'. Setup also returns the master key's factors; see bcp-master.ts.
 */
import { createHash, generatePrime, generatePrimeSync } from 'node:crypto';
import type { FixedBase } from './backend.js';
import { backend } from './backends.js';
import { bitLength, byteLength, randomBelow, toBytes, gcd } from './bigint.js';
import { ParameterError } from './errors.js';

/** Builds a fixed-base table only after a base has been used this often (tables cost ~0.2 s). */
const TABLE_AFTER_USES = 24;

/** A base raised to many exponents: plain modPow at first, a fixed-base table once it pays off. */
export class PowerCache {
  private uses = 0;
  private table: FixedBase | undefined;
  constructor(
    readonly base: bigint,
    readonly modulus: bigint,
    private readonly expBits: number,
  ) {}
  pow(exp: bigint): bigint {
    if (!this.table && ++this.uses >= TABLE_AFTER_USES) this.precompute();
    return this.table ? this.table.pow(exp) : backend().modPow(this.base, exp, this.modulus);
  }
  precompute(): void {
    this.table ??= backend().fixedBase(this.base, this.modulus, this.expBits);
  }
}

export class BcpParams {
  readonly N2: bigint;
  readonly bits: number;
  /** Bytes of one group element (a component of a ciphertext). */
  readonly elementBytes: number;
  readonly fingerprint: string;
  readonly g: bigint;
  private readonly gPowers: PowerCache;

  constructor(
    readonly N: bigint,
    g: bigint,
  ) {
    if (N < 15n || (N & 1n) === 0n) throw new ParameterError('N must be an odd composite');
    this.N2 = N * N;
    if (g <= 1n || g >= this.N2) throw new ParameterError('g must lie in (1, N^2)');
    this.g = g;
    this.bits = bitLength(N);
    this.elementBytes = byteLength(this.N2);
    this.fingerprint = createHash('sha256')
      .update('ciphermine/bcp-params/v1')
      .update(toBytes(N, byteLength(N)))
      .update(toBytes(g, this.elementBytes))
      .digest('hex')
      .slice(0, 32);
    this.gPowers = new PowerCache(g, this.N2, this.bits);
  }

  /** g^e mod N^2; exponents below N use a fixed-base table once g is hot. */
  gPow(e: bigint): bigint {
    return this.gPowers.pow(e);
  }

  precompute(): void {
    this.gPowers.precompute();
  }

  /** L(u) = (u - 1) / N, defined on u = 1 mod N. */
  L(u: bigint): bigint {
    return (u - 1n) / this.N;
  }

  equals(other: BcpParams): boolean {
    return this === other || (this.N === other.N && this.g === other.g);
  }
}

export interface BcpSetup {
  params: BcpParams;
  /** The safe primes; whoever holds them can decrypt everything (the key server's msk). */
  p: bigint;
  q: bigint;
}

/** Setup(kappa): fresh safe primes and a checked generator of maximal order. */
export function setup(bits: number): BcpSetup {
  if (!Number.isInteger(bits) || bits < 128 || bits % 2 !== 0) {
    throw new ParameterError('key size must be an even number of bits >= 128');
  }
  for (;;) {
    const p = generatePrimeSync(bits / 2, { safe: true, bigint: true });
    const q = generatePrimeSync(bits / 2, { safe: true, bigint: true });
    const N = p * q;
    if (p === q || bitLength(N) !== bits) continue;
    const g = findGenerator(p, q);
    return { params: new BcpParams(N, g), p, q };
  }
}

/** Setup with both safe-prime searches running at once on libuv's thread pool. */
export async function setupAsync(bits: number): Promise<BcpSetup> {
  if (!Number.isInteger(bits) || bits < 128 || bits % 2 !== 0) {
    throw new ParameterError('key size must be an even number of bits >= 128');
  }
  const prime = () =>
    new Promise<bigint>((resolve, reject) =>
      generatePrime(bits / 2, { safe: true, bigint: true }, (err, p) => (err ? reject(err) : resolve(p as bigint))),
    );
  for (;;) {
    const [p, q] = await Promise.all([prime(), prime()]);
    const N = p * q;
    if (p === q || bitLength(N) !== bits) continue;
    return { params: new BcpParams(N, findGenerator(p, q)), p, q };
  }
}

/** g = x^2 mod N^2 with g^(p'q') a generator of 1 + N Z and g of order p'q' modulo N. */
export function findGenerator(p: bigint, q: bigint): bigint {
  const N = p * q;
  const N2 = N * N;
  const p1 = (p - 1n) / 2n;
  const q1 = (q - 1n) / 2n;
  const be = backend();
  for (;;) {
    const x = randomBelow(N2);
    if (x < 2n || gcd(x, N) !== 1n) continue;
    const g = be.modMul(x, x, N2);
    if (isMaximalOrderGenerator(g, N, p1, q1)) return g;
  }
}

export function isMaximalOrderGenerator(g: bigint, N: bigint, p1: bigint, q1: bigint): boolean {
  const be = backend();
  const N2 = N * N;
  const u = be.modPow(g, p1 * q1, N2);
  if (u === 1n || u % N !== 1n) return false;
  const k = (u - 1n) / N;
  if (gcd(k, N) !== 1n) return false;
  return be.modPow(g, p1, N) !== 1n && be.modPow(g, q1, N) !== 1n;
}
