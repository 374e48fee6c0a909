/** SCT to several keys at once (the release of federated totals): correct for every target, one decryption per value, refused from a non-job key. */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { sctFanout } from '../../src/protocols/index.js';
import { harness, type Harness } from './harness.js';

describe('SCT fan-out (512-bit keys, in memory)', () => {
  let h: Harness;
  before(async () => {
    h = await harness('memory');
  });
  after(() => h.close());

  it('every target decrypts the same plaintexts; the key server decrypts each value once', async () => {
    const jobKey = h.core.createJobKey();
    const values = [0n, 1n, -5n, 123456789n, -(1n << 200n)];
    let decrypted = 0;
    h.core.observer = (_p, vs) => void (decrypted += vs.length);
    const out = await sctFanout(h.alice, jobKey.encryptBatch(values), [h.owner.publicKey, h.target.publicKey]);
    h.core.observer = undefined;
    assert.equal(decrypted, values.length);
    assert.deepEqual(
      out[0]!.map((c) => h.owner.decrypt(c)),
      values,
    );
    assert.deepEqual(
      out[1]!.map((c) => h.target.decrypt(c)),
      values,
    );
  });

  it('starts only from a job key', async () => {
    await assert.rejects(sctFanout(h.alice, h.owner.publicKey.encryptBatch([1n]), [h.target.publicKey]), /job key/);
  });
});
