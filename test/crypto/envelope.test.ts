import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  generateAgreementKeyPair,
  deriveEnvelopeKey,
  seal,
  openEnvelope,
  EnvelopeError,
  ParameterError,
  exportAgreementPrivateKey,
  importAgreementPrivateKey,
} from '../../src/crypto/index.js';

describe('X25519 + HKDF key agreement and the AES-256-GCM envelope', () => {
  const owner = generateAgreementKeyPair();
  const server = generateAgreementKeyPair();
  const ctx = { ownerId: 'hospital-a', datasetId: 'ds1' };

  it('both sides derive the same key, bound to owner and dataset', () => {
    const k1 = deriveEnvelopeKey(owner.privateKey, server.publicKey, ctx);
    const k2 = deriveEnvelopeKey(server.privateKey, owner.publicKey, ctx);
    assert.deepEqual(k1, k2);
    assert.notDeepEqual(k1, deriveEnvelopeKey(owner.privateKey, server.publicKey, { ...ctx, datasetId: 'ds2' }));
    assert.notDeepEqual(k1, deriveEnvelopeKey(owner.privateKey, server.publicKey, { ...ctx, ownerId: 'hospital-b' }));
    const restored = importAgreementPrivateKey(exportAgreementPrivateKey(owner.privateKey));
    assert.deepEqual(deriveEnvelopeKey(restored, server.publicKey, ctx), k1);
  });

  it('seals and opens; any tampering, wrong key or wrong context fails with EnvelopeError', () => {
    const key = deriveEnvelopeKey(owner.privateKey, server.publicKey, ctx);
    const msg = Buffer.from('ciphertext batch bytes');
    const env = seal(key, msg, 'batch-0');
    assert.deepEqual(openEnvelope(key, env, 'batch-0'), msg);
    for (let i = 0; i < env.length; i++) {
      const t = Buffer.from(env);
      t[i]! ^= 0x01;
      assert.throws(() => openEnvelope(key, t, 'batch-0'), EnvelopeError, `byte ${i}`);
    }
    assert.throws(() => openEnvelope(key, env, 'batch-1'), EnvelopeError);
    assert.throws(() => openEnvelope(Buffer.alloc(32), env, 'batch-0'), EnvelopeError);
    assert.throws(() => openEnvelope(key, env.subarray(0, 20), 'batch-0'), EnvelopeError);
    assert.throws(() => openEnvelope(key, Buffer.concat([env, Buffer.from([1])]), 'batch-0'), EnvelopeError);
    assert.throws(() => seal(Buffer.alloc(16), msg, ''), ParameterError);
  });

  it('refuses malformed public keys', () => {
    assert.throws(() => deriveEnvelopeKey(owner.privateKey, 'abc', ctx), ParameterError);
  });
});
