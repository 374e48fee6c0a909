import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  add,
  addPlain,
  negate,
  rerandomize,
  scalarMultiply,
  subtract,
  setup,
  keyGen,
  BcpMasterKey,
  BcpSecretKey,
  Ciphertext,
  KeyMismatchError,
  InvalidCiphertextError,
  ParameterError,
  isMaximalOrderGenerator,
  randomBelow,
} from '../../src/crypto/index.js';
import { edgePlaintexts, randomSigned, testKey, testSystem } from '../helpers.js';

describe('BCP setup', () => {
  it('makes safe primes, N of the requested size and a generator of maximal order', () => {
    const { params, p, q } = setup(256);
    assert.equal(params.bits, 256);
    assert.equal(p * q, params.N);
    assert.ok(isMaximalOrderGenerator(params.g, params.N, (p - 1n) / 2n, (q - 1n) / 2n));
    // g^(p'q') must not be 1, and g = 1 is refused as a generator.
    assert.ok(!isMaximalOrderGenerator(1n, params.N, (p - 1n) / 2n, (q - 1n) / 2n));
    assert.throws(() => setup(100), ParameterError);
    assert.throws(() => setup(257), ParameterError);
  });
});

for (const bits of [512, 2048] as const) {
  describe(`BCP at ${bits}-bit N`, () => {
    const { params, msk } = testSystem(bits);
    const { N } = params;
    const sk = testKey(bits);
    const pk = sk.publicKey;
    const rounds = bits === 512 ? 12 : 3;

    it('Dec(Enc(m)) = m and mDec(Enc(m)) = m for 0, +-1, the N/2 edges and random m', () => {
      for (const m of edgePlaintexts(N, rounds)) {
        const c = pk.encrypt(m);
        assert.equal(sk.decrypt(c), m);
        assert.equal(msk.decrypt(c), m);
      }
    });

    it('residues: N - 1 decrypts to -1, values outside (-N/2, N) are refused', () => {
      assert.equal(sk.decrypt(pk.encrypt(N - 1n)), -1n);
      assert.throws(() => pk.encrypt(N), ParameterError);
      assert.throws(() => pk.encrypt(-N / 2n - 1n), ParameterError);
    });

    it('homomorphic identities: add, subtract, negate, scalars (small, large, negative), trivial', () => {
      for (let i = 0; i < rounds; i++) {
        const [m1, m2] = [randomSigned(N) / 4n, randomSigned(N) / 4n];
        const [c1, c2] = [pk.encrypt(m1), pk.encrypt(m2)];
        assert.equal(sk.decrypt(add(c1, c2)), m1 + m2);
        assert.equal(msk.decrypt(subtract(c1, c2)), m1 - m2);
        assert.equal(sk.decrypt(negate(c1)), -m1);
        const small = BigInt(i - 6);
        assert.equal(sk.decrypt(scalarMultiply(pk.encrypt(m1 % 1000n), small)), (m1 % 1000n) * small);
        const big = randomBelow(N);
        assert.equal(sk.decrypt(scalarMultiply(c1, big)), toCentred(m1 * big, N));
        const k64 = -randomBelow(1n << 64n);
        assert.equal(msk.decrypt(scalarMultiply(pk.encrypt(7n), k64)), toCentred(7n * k64, N));
        assert.equal(sk.decrypt(addPlain(c1, m2)), m1 + m2);
      }
      assert.equal(sk.decrypt(scalarMultiply(pk.encrypt(5n), 0n)), 0n);
      assert.equal(sk.decrypt(pk.trivial(-42n)), -42n);
      assert.equal(msk.decrypt(pk.trivial(-42n)), -42n);
    });

    it('rerandomise keeps the plaintext and changes both components', () => {
      const c = pk.encrypt(99n);
      const r = rerandomize(c);
      assert.notEqual(r.A, c.A);
      assert.notEqual(r.B, c.B);
      assert.equal(sk.decrypt(r), 99n);
    });

    it('master decryption opens ciphertexts under every user key of the system', () => {
      const other = keyGen(params);
      const m = randomSigned(N);
      assert.equal(msk.decrypt(other.publicKey.encrypt(m)), m);
    });

    it('decryption under the wrong key is a typed error, not a wrong answer', () => {
      const other = keyGen(params);
      const c = pk.encrypt(5n);
      assert.throws(() => other.decrypt(c), KeyMismatchError);
      // Same components presented as if under the other key: detected by the N-divisibility check.
      assert.throws(() => other.decrypt(new Ciphertext(other.publicKey, c.A, c.B)), KeyMismatchError);
      assert.throws(() => add(c, other.publicKey.encrypt(1n)), KeyMismatchError);
      assert.throws(() => BcpSecretKey.checked(pk, other.a), KeyMismatchError);
    });

    it('out-of-range and non-group components are refused by Dec and mDec', () => {
      const c = pk.encrypt(5n);
      for (const [A, B] of [
        [0n, c.B],
        [c.A, 0n],
        [params.N2, c.B],
        [c.A, params.N2 + 1n],
      ] as const) {
        assert.throws(() => sk.decrypt(new Ciphertext(pk, A, B)), InvalidCiphertextError);
        assert.throws(() => msk.decrypt(new Ciphertext(pk, A, B)), InvalidCiphertextError);
      }
      // N^2 - 1 = -1 is not a quadratic residue, so not in G.
      assert.throws(() => msk.decrypt(new Ciphertext(pk, params.N2 - 1n, c.B)), InvalidCiphertextError);
      // A multiple of p shares a factor with N.
      assert.throws(() => msk.decrypt(new Ciphertext(pk, testSystem(bits).p, c.B)), InvalidCiphertextError);
    });

    it('a master key with the wrong factors is refused', () => {
      assert.throws(() => new BcpMasterKey(params, 3n, 5n), KeyMismatchError);
    });
  });
}

function toCentred(x: bigint, N: bigint): bigint {
  const r = ((x % N) + N) % N;
  return r > N / 2n ? r - N : r;
}
