/**
 * Modular exponentiation through OpenSSL, reached via node:crypto's Diffie-Hellman object:
 * computeSecret(b) with private key e returns b^e mod p, and OpenSSL does not require p to be prime.
 * It is the fastest modPow measured here (BENCHMARKS.md) and runs the private exponent in
 * constant time. OpenSSL refuses "public keys" <= 1 or >= p - 1, so those bases are handled here.
 */
import { createDiffieHellman, type DiffieHellman } from 'node:crypto';
import { byteLength, fromBytes, mod, toBytes } from './bigint.js';
import { JsBackend, jsModPow } from './backend-js.js';
import { ParameterError } from './errors.js';

const MAX_CACHED_MODULI = 64;
const OPENSSL_MIN_MODULUS = 1n << 511n;
const contexts = new Map<bigint, { dh: DiffieHellman; length: number }>();

function context(m: bigint): { dh: DiffieHellman; length: number } {
  let ctx = contexts.get(m);
  if (!ctx) {
    const length = byteLength(m);
    ctx = { dh: createDiffieHellman(toBytes(m, length)), length };
    if (contexts.size >= MAX_CACHED_MODULI) contexts.delete(contexts.keys().next().value!);
    contexts.set(m, ctx);
  }
  return ctx;
}

export function opensslModPow(base: bigint, exp: bigint, m: bigint): bigint {
  if (m <= 2n || (m & 1n) === 0n) throw new ParameterError('modulus must be odd and > 2');
  if (exp < 0n) throw new ParameterError('exponent must be >= 0');
  base = mod(base, m);
  if (exp === 0n) return 1n;
  if (base <= 1n) return base;
  if (base === m - 1n) return exp & 1n ? base : 1n;
  // OpenSSL's DH refuses moduli below 512 bits (it answers with an empty secret).
  if (m < OPENSSL_MIN_MODULUS) return jsModPow(base, exp, m);
  const { dh, length } = context(m);
  dh.setPrivateKey(toBytes(exp, byteLength(exp)));
  try {
    const secret = dh.computeSecret(toBytes(base, length));
    if (secret.length === 0) throw new Error('empty secret');
    return fromBytes(secret);
  } catch {
    // OpenSSL also refuses bases sharing a factor with m; only malformed input gets here.
    return jsModPow(base, exp, m);
  }
}

/** OpenSSL for exponentiation, BigInt for everything else. */
export class OpenSslBackend extends JsBackend {
  override readonly name: JsBackend['name'] = 'openssl';
  override modPow(base: bigint, exp: bigint, m: bigint): bigint {
    return opensslModPow(base, exp, m);
  }
  override modPowSecret(base: bigint, exp: bigint, m: bigint): bigint {
    return opensslModPow(base, exp, m);
  }
}
