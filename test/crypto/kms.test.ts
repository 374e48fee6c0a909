/** KMS form (Paillier under the key server's N): round trips through the master key, mixing with BCP. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { add, Ciphertext, keyGen, scalarMultiply } from '../../src/crypto/index.js';
import { KmsEncryptor, KmsRerandomizer, kmsBase } from '../../src/crypto/kms-paillier.js';
import { backend } from '../../src/crypto/backends.js';
import { randomSigned, testSystem } from '../helpers.js';

for (const bits of [512, 2048] as const) {
  describe(`KMS form, ${bits}-bit N`, () => {
    const { params, msk, p, q } = testSystem(bits);
    const N = params.N;
    const N2 = params.N2;
    const pk = keyGen(params).publicKey;
    const enc = new KmsEncryptor(N, p, q);
    const re = new KmsRerandomizer(N);
    const kms = (m: bigint) => new Ciphertext(pk, 1n, enc.encrypt(m));

    it('h_N is fixed by N, a square and an N-th power: it vanishes under mDec', () => {
      assert.equal(kmsBase(N), kmsBase(N));
      assert.equal(backend().modPow(kmsBase(N), (p - 1n) / 2n, p * p), 1n);
      assert.equal(msk.decrypt(new Ciphertext(pk, 1n, kmsBase(N))), 0n);
    });

    it('the master key opens KMS-form encryptions: zeros, negatives, extremes, random', () => {
      const ms = [0n, 1n, -1n, N / 2n, -(N / 2n - 1n), ...Array.from({ length: bits === 512 ? 30 : 6 }, () => randomSigned(N))];
      assert.deepEqual(
        ms.map((m) => msk.decrypt(kms(m))),
        ms,
      );
      // Fresh randomness: two encryptions of the same value differ.
      assert.notEqual(kms(5n).B, kms(5n).B);
    });

    it('homomorphic with itself and with BCP ciphertexts; a fresh h_N factor keeps the plaintext', () => {
      const a = kms(-12345n);
      const b = pk.encrypt(1000n);
      assert.equal(msk.decrypt(add(a, b)), -11345n);
      assert.equal(msk.decrypt(scalarMultiply(a, -3n)), 37035n);
      const r = new Ciphertext(pk, 1n, backend().modMul(a.B, re.factor(), N2));
      assert.equal(msk.decrypt(r), -12345n);
      assert.notEqual(r.B, a.B);
    });
  });
}
