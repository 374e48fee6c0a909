/** Shared test fixtures: pre-generated BCP parameters (safe-prime search is slow and random). */
import { readFileSync } from 'node:fs';
import { BcpParams, BcpMasterKey, keyGen, randomBelow, type BcpSecretKey } from '../src/crypto/index.js';

interface FixtureEntry {
  N: string;
  g: string;
  p: string;
  q: string;
}

const fixtures = JSON.parse(readFileSync(new URL('../../test/fixtures/bcp-params.json', import.meta.url), 'utf8')) as Record<string, FixtureEntry>;

export interface TestSystem {
  params: BcpParams;
  msk: BcpMasterKey;
  p: bigint;
  q: bigint;
}

const systems = new Map<number, TestSystem>();

/** Parameters and master key at 512 or 2048 bits, shared within one test file. */
export function testSystem(bits: 512 | 2048): TestSystem {
  let s = systems.get(bits);
  if (!s) {
    const f = fixtures[String(bits)]!;
    const [N, g, p, q] = [f.N, f.g, f.p, f.q].map((x) => BigInt('0x' + x)) as [bigint, bigint, bigint, bigint];
    const params = new BcpParams(N, g);
    s = { params, msk: new BcpMasterKey(params, p, q), p, q };
    systems.set(bits, s);
  }
  return s;
}

export function testKey(bits: 512 | 2048): BcpSecretKey {
  return keyGen(testSystem(bits).params);
}

/** Random signed plaintext in (-N/2, N/2]. */
export function randomSigned(N: bigint): bigint {
  return randomBelow(N) - (N - 1n) / 2n;
}

/** The interesting plaintexts: zero, +-1, both edges of the signed range, random values. */
export function edgePlaintexts(N: bigint, randomCount = 4): bigint[] {
  const half = N / 2n;
  const out = [0n, 1n, -1n, half, -(half - 1n), half - 1n, 2n ** 63n, -(2n ** 63n)];
  for (let i = 0; i < randomCount; i++) out.push(randomSigned(N));
  return out;
}
