/**
 * Reads an owner's stored upload back one chunk at a time: opens each AES-GCM envelope and checks
 * its HMAC-SHA256 tag again, so storage tampering is caught before any computation, not only at
 * upload, and no more than one chunk's ciphertexts are read from the database at once.
 */
import type { KeyObject } from 'node:crypto';
import {
  deriveEnvelopeKey,
  openEnvelope,
  deserializeCiphertexts,
  deserializePublicKey,
  checkCiphertextTag,
  uploadContext,
  type BcpParams,
  type Ciphertext,
} from '../crypto/index.js';
import type { DatasetRow, Store } from './store/index.js';

/** The ciphertexts of each chunk of a dataset, row-major, under its owner's key. */
export async function* datasetChunks(store: Store, d: DatasetRow, params: BcpParams, x25519: KeyObject): AsyncGenerator<Ciphertext[]> {
  const owner = (await store.party(d.ownerId))!;
  const ownerKey = deserializePublicKey(owner.bcpPublicKey, params);
  const ctx = { ownerId: owner.id, datasetId: d.id };
  const aesKey = deriveEnvelopeKey(x25519, owner.x25519PublicKey!, ctx);
  const tagKey = deriveEnvelopeKey(x25519, owner.x25519PublicKey!, ctx, 'hmac-tag');
  for (const idx of await store.chunkIndices(d.id)) {
    const c = (await store.chunk(d.id, idx))!;
    const context = uploadContext(d.id, c.idx, c.rows);
    const bytes = openEnvelope(aesKey, c.envelope, context);
    checkCiphertextTag(tagKey, context, bytes, c.tag);
    yield deserializeCiphertexts(bytes, ownerKey);
  }
}
