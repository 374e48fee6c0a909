/**
 * What public parameters a party accepts when it loads them from elsewhere (a key server's answer,
 * a compute server's /v1/info): N of at least 2048 bits, and g a unit of Z_N^2 in range. Smaller N
 * is for tests only and passes only with CIPHERMINE_INSECURE_TEST_PARAMS=1 in the environment,
 * which no command-line flag sets (the test runner does).
 */
import type { BcpParams } from './bcp-params.js';
import { ParameterError } from './errors.js';

export const MIN_SECURE_KEY_BITS = 2048;
export const INSECURE_TEST_PARAMS_ENV = 'CIPHERMINE_INSECURE_TEST_PARAMS';

export const insecureTestParamsAllowed = (): boolean => process.env[INSECURE_TEST_PARAMS_ENV] === '1';

function gcd(a: bigint, b: bigint): bigint {
  while (b) [a, b] = [b, a % b];
  return a;
}

/** Refuses parameters below 2048 bits (outside tests) and a g that is not a unit in (1, N^2). */
export function checkParamsPolicy(pp: BcpParams, where: string): BcpParams {
  if (pp.bits < MIN_SECURE_KEY_BITS && !insecureTestParamsAllowed()) {
    throw new ParameterError(`${where} offers public parameters with a ${pp.bits}-bit N; at least ${MIN_SECURE_KEY_BITS} bits are required`);
  }
  if (pp.g <= 1n || pp.g >= pp.N2 || gcd(pp.g, pp.N) !== 1n) throw new ParameterError(`${where} offers a generator g outside the units of Z_N^2`);
  return pp;
}

/** The check behind every --key-bits flag. */
export function checkKeyBits(bits: number): number {
  if (bits < MIN_SECURE_KEY_BITS && !insecureTestParamsAllowed()) {
    throw new ParameterError(`--key-bits must be at least ${MIN_SECURE_KEY_BITS} (smaller N is for tests only), got ${bits}`);
  }
  return bits;
}
