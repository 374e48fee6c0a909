import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createBackend, randomBelow, ParameterError } from '../../src/crypto/index.js';
import { loadNativeGmp } from '../../src/crypto/backend-gmp.js';
import { testSystem } from '../helpers.js';

const names = ['js', 'openssl', ...(loadNativeGmp() ? ['gmp'] : [])];

describe('bignum backends agree with each other', () => {
  const ref = createBackend('js');
  const { N2 } = testSystem(512).params;

  it('native GMP addon is built on this machine', () => {
    assert.ok(loadNativeGmp(), 'npm install should build native/ (libgmp-dev is installed here)');
  });

  for (const name of names) {
    const be = createBackend(name);
    it(`${name}: modPow, modPow2, modMul, modInverse over random inputs and edge bases`, () => {
      for (const base of [0n, 1n, 2n, N2 - 1n, N2 - 2n, ...Array.from({ length: 6 }, () => randomBelow(N2))]) {
        for (const e of [0n, 1n, 2n, 65537n, randomBelow(N2)]) {
          assert.equal(be.modPow(base, e, N2), ref.modPow(base, e, N2));
          assert.equal(be.modPowSecret(base, e, N2), ref.modPow(base, e, N2));
        }
      }
      const [a, b, x, y] = [randomBelow(N2), randomBelow(N2), randomBelow(N2), randomBelow(N2)];
      assert.equal(be.modPow2(a, x, b, y, N2), (ref.modPow(a, x, N2) * ref.modPow(b, y, N2)) % N2);
      assert.equal(be.modMul(a, b, N2), (a * b) % N2);
      assert.equal(be.modMul(-a, b, N2), (((-a * b) % N2) + N2) % N2);
      const inv = be.modInverse(a | 1n, N2 | 0n);
      assert.equal(((a | 1n) * inv) % N2, 1n);
      assert.throws(() => be.modInverse(6n, 9n), ParameterError);
      assert.throws(() => be.modPow(2n, -1n, N2), ParameterError);
    });

    it(`${name}: fixed-base tables equal modPow, and fall back beyond their size`, () => {
      const base = randomBelow(N2);
      const fb = be.fixedBase(base, N2, 256, 5);
      for (const e of [0n, 1n, (1n << 256n) - 1n, randomBelow(1n << 256n), 1n << 300n]) {
        assert.equal(fb.pow(e), ref.modPow(base, e, N2));
      }
    });
  }
});

describe('CRT helpers', () => {
  it('combine and modPow agree with direct computation modulo p^2 q^2', async () => {
    const { CrtPair } = await import('../../src/crypto/index.js');
    const { p, q, params } = testSystem(512);
    const crt = new CrtPair(p * p, q * q);
    assert.equal(crt.modulus, params.N2);
    const ref = createBackend('js');
    for (let i = 0; i < 5; i++) {
      const x = randomBelow(params.N2);
      assert.equal(crt.combine(x % (p * p), x % (q * q)), x);
      const e = randomBelow(params.N);
      assert.equal(crt.modPow(x, e), ref.modPow(x, e, params.N2));
    }
  });
});
