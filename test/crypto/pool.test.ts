import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { WorkerPool, keyWire, Ciphertext, CiphermineError, type Pair } from '../../src/crypto/index.js';
import { testKey, testSystem, edgePlaintexts } from '../helpers.js';

describe('worker pool', () => {
  const pool = new WorkerPool(2);
  after(() => pool.close());
  const { params, msk, p, q } = testSystem(512);
  const sk = testKey(512);
  const pk = sk.publicKey;

  it('encrypts and master-decrypts batches on workers, results in order', async () => {
    const ms = [...edgePlaintexts(params.N, 20), ...Array.from({ length: 30 }, (_, i) => BigInt(i - 15))];
    const pairs = await pool.map<Pair>('encrypt', keyWire(pk), ms);
    const cts = pairs.map(([A, B]) => new Ciphertext(pk, A, B));
    assert.deepEqual(
      cts.map((c) => sk.decrypt(c)),
      ms,
    );
    const res = await pool.map<bigint>('masterDecrypt', { ...keyWire(pk), p, q }, pairs);
    assert.deepEqual(
      res.map((r) => (r > params.N / 2n ? r - params.N : r)),
      ms,
    );
    assert.deepEqual(
      cts.map((c) => msk.decrypt(c)),
      ms,
    );
  });

  it('a bad item rejects with a typed error and the pool keeps working', async () => {
    const bad: Pair[] = Array.from({ length: 10 }, () => [0n, 1n]);
    await assert.rejects(
      pool.map('masterDecrypt', { ...keyWire(pk), p, q }, bad),
      (e: unknown) => e instanceof CiphermineError && (e as CiphermineError).code === 'ERR_INVALID_CIPHERTEXT',
    );
    const again = await pool.map<Pair>(
      'encrypt',
      keyWire(pk),
      Array.from({ length: 10 }, () => 3n),
    );
    assert.equal(sk.decrypt(new Ciphertext(pk, again[0]![0], again[0]![1])), 3n);
  });
});
