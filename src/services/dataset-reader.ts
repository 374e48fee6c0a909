/**
 * Reads an owner's stored upload back: opens each AES-GCM envelope and checks its HMAC-SHA256 tag
 * again, so storage tampering is caught before any computation, not only at upload.
 */
import type { KeyObject } from 'node:crypto';
import {
  deriveEnvelopeKey, openEnvelope, deserializeCiphertexts, deserializePublicKey, checkCiphertextTag, uploadContext,
  type BcpParams, type Ciphertext,
} from '../crypto/index.js';
import type { DatasetRow, Store } from './store.js';

/** All ciphertexts of a dataset, row-major, under its owner's key. */
export function readDataset(store: Store, d: DatasetRow, params: BcpParams, x25519: KeyObject): Ciphertext[] {
  const owner = store.party(d.ownerId)!;
  const ownerKey = deserializePublicKey(owner.bcpPublicKey, params);
  const ctx = { ownerId: owner.id, datasetId: d.id };
  const aesKey = deriveEnvelopeKey(x25519, owner.x25519PublicKey!, ctx);
  const tagKey = deriveEnvelopeKey(x25519, owner.x25519PublicKey!, ctx, 'hmac-tag');
  const out: Ciphertext[] = [];
  for (const c of store.chunks(d.id)) {
    const context = uploadContext(d.id, c.idx, c.rows);
    const bytes = openEnvelope(aesKey, c.envelope, context);
    checkCiphertextTag(tagKey, context, bytes, c.tag);
    out.push(...deserializeCiphertexts(bytes, ownerKey));
  }
  return out;
}
