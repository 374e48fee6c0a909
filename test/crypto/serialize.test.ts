import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, chmodSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  serializeParams,
  deserializeParams,
  serializePublicKey,
  deserializePublicKey,
  serializeSecretKey,
  deserializeSecretKey,
  serializeMasterKey,
  deserializeMasterKey,
  serializeCiphertext,
  deserializeCiphertext,
  serializeCiphertexts,
  deserializeCiphertexts,
  keyGen,
  setup,
  writeKeyFile,
  readKeyFile,
  KeyFileError,
  SerializationError,
  InvalidCiphertextError,
  KeyMismatchError,
  toBytes,
  CiphermineError,
} from '../../src/crypto/index.js';
import { testKey, testSystem, randomSigned } from '../helpers.js';

describe('serialised forms round-trip', () => {
  for (const bits of [512, 2048] as const) {
    it(`params, keys, master key, ciphertexts at ${bits} bits`, () => {
      const { params, msk } = testSystem(bits);
      const sk = testKey(bits);
      const pk = sk.publicKey;
      assert.ok(deserializeParams(serializeParams(params)).equals(params));
      assert.ok(deserializePublicKey(serializePublicKey(pk)).equals(pk));
      const sk2 = deserializeSecretKey(serializeSecretKey(sk));
      assert.equal(sk2.a, sk.a);
      const msk2 = deserializeMasterKey(serializeMasterKey(msk));
      const m = randomSigned(params.N);
      const c = pk.encrypt(m);
      const c2 = deserializeCiphertext(serializeCiphertext(c), pk);
      assert.equal(c2.A, c.A);
      assert.equal(c2.B, c.B);
      assert.equal(msk2.decrypt(c2), m);
      assert.equal(sk2.decrypt(c2), m);
      const ms = [0n, 1n, -1n, m];
      const batch = deserializeCiphertexts(
        serializeCiphertexts(
          pk,
          ms.map((x) => pk.encrypt(x)),
        ),
        pk,
      );
      assert.deepEqual(
        batch.map((x) => sk.decrypt(x)),
        ms,
      );
      assert.deepEqual(deserializeCiphertexts(serializeCiphertexts(pk, []), pk), []);
    });
  }
});

/**
 * The bad-input corpus: every entry must raise the named typed error. Built from a real ciphertext
 * by truncation, extension, zeroing, pushing components out of range, garbage and foreign keys.
 */
function corpus() {
  const { params } = testSystem(512);
  const sk = testKey(512);
  const pk = sk.publicKey;
  const good = serializeCiphertext(pk.encrypt(7n));
  const n = params.elementBytes;
  const headerLen = 5 + 16;
  const withA = (A: bigint) => Buffer.concat([good.subarray(0, headerLen), toBytes(A, n), good.subarray(headerLen + n)]);
  const otherKey = keyGen(params).publicKey;
  const otherParams = setup(256).params;
  const foreignParamsKey = keyGen(otherParams).publicKey;
  const flippedVersion = Buffer.from(good);
  flippedVersion[3] = 9;
  const entries: Array<[string, Uint8Array, new (...a: never[]) => Error]> = [
    ['empty', Buffer.alloc(0), SerializationError],
    ['truncated by one byte', good.subarray(0, good.length - 1), SerializationError],
    ['truncated to the header', good.subarray(0, 5), SerializationError],
    ['oversized (trailing byte)', Buffer.concat([good, Buffer.from([0])]), SerializationError],
    ['garbage', Buffer.from('this is not a ciphertext at all, just some text'), SerializationError],
    ['random bytes of the right length', Buffer.concat([good.subarray(0, 5), Buffer.alloc(good.length - 5, 0xa5)]), KeyMismatchError],
    ['wrong version', flippedVersion, SerializationError],
    ['a public key where a ciphertext is expected', serializePublicKey(pk), SerializationError],
    ['zero A', withA(0n), InvalidCiphertextError],
    ['A = N^2', withA(params.N2), InvalidCiphertextError],
    ['A >= N^2 (all ones)', withA((1n << BigInt(8 * n)) - 1n), InvalidCiphertextError],
    ['under another key', serializeCiphertext(otherKey.encrypt(7n)), KeyMismatchError],
    ['under other parameters', serializeCiphertext(foreignParamsKey.encrypt(7n)), KeyMismatchError],
  ];
  return { pk, entries };
}

describe('bad ciphertexts raise clear, typed errors', () => {
  const { pk, entries } = corpus();
  for (const [name, bytes, type] of entries) {
    it(name, () => {
      assert.throws(
        () => deserializeCiphertext(bytes, pk),
        (e: unknown) => e instanceof type && e instanceof CiphermineError,
      );
    });
  }

  it('batches: count over the limit, length mismatch, mixed keys', () => {
    const cs = [pk.encrypt(1n), pk.encrypt(2n)];
    const good = serializeCiphertexts(pk, cs);
    assert.throws(() => deserializeCiphertexts(good, pk, 1), SerializationError);
    assert.throws(() => deserializeCiphertexts(good.subarray(0, good.length - 3), pk), SerializationError);
    assert.throws(() => deserializeCiphertexts(Buffer.concat([good, Buffer.alloc(1)]), pk), SerializationError);
    const other = keyGen(pk.params).publicKey;
    assert.throws(() => serializeCiphertexts(pk, [cs[0]!, other.encrypt(1n)]), KeyMismatchError);
  });

  it('keys: tampered secret key, public key of other parameters, oversized fields', () => {
    const sk = testKey(512);
    const bytes = serializeSecretKey(sk);
    const tampered = Buffer.from(bytes);
    tampered[tampered.length - 1]! ^= 1;
    assert.throws(() => deserializeSecretKey(tampered), KeyMismatchError);
    const foreign = keyGen(setup(256).params).publicKey;
    assert.throws(() => deserializePublicKey(serializePublicKey(foreign), sk.publicKey.params), KeyMismatchError);
    const huge = Buffer.concat([Buffer.from('CMN'), Buffer.from([1, 1]), Buffer.from([0, 1, 0, 0])]);
    assert.throws(() => deserializeParams(huge), SerializationError);
    assert.throws(() => deserializeMasterKey(serializeParams(sk.publicKey.params)), SerializationError);
  });
});

describe('key files', () => {
  it('are written 0600 and refused when others can read them', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cm-keys-'));
    const path = join(dir, 'sub', 'owner.sk');
    const sk = testKey(512);
    writeKeyFile(path, serializeSecretKey(sk));
    assert.equal(statSync(path).mode & 0o777, 0o600);
    assert.equal(deserializeSecretKey(readKeyFile(path)).a, sk.a);
    chmodSync(path, 0o644);
    assert.throws(() => readKeyFile(path), KeyFileError);
    writeKeyFile(path, serializeSecretKey(sk)); // rewriting tightens the mode again
    assert.equal(statSync(path).mode & 0o777, 0o600);
    assert.throws(() => readKeyFile(join(dir, 'missing')), KeyFileError);
    writeFileSync(join(dir, 'x'), 'x', { mode: 0o600 });
    assert.throws(() => deserializeSecretKey(readKeyFile(join(dir, 'x'))), SerializationError);
  });
});
