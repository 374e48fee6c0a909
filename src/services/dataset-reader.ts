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
  CiphermineError,
} from '../crypto/index.js';
import { RemoteError } from '../protocols/index.js';
import type { DatasetRow, Store } from './store/index.js';

/** The ciphertexts of each chunk of a dataset, row-major, under its owner's key (packs when owner-packed). */
export async function* datasetChunks(store: Store, d: DatasetRow, params: BcpParams, x25519: KeyObject): AsyncGenerator<Ciphertext[]> {
  for await (const c of datasetValueChunks(store, d, params, x25519)) yield c.cts;
}

/** One stored chunk: its ciphertexts (owner packs when the dataset is packed) and the values they hold. */
export interface ValueChunk {
  cts: Ciphertext[];
  values: number;
}

/** The chunks of a dataset with their value counts (rows x columns). */
export async function* datasetValueChunks(store: Store, d: DatasetRow, params: BcpParams, x25519: KeyObject): AsyncGenerator<ValueChunk> {
  const reader = await chunkReader(store, d, params, x25519);
  for (const idx of await store.chunkIndices(d.id)) yield await reader(idx);
}

/** Reads single chunks of one dataset by index (a chunk task reads only its own). */
export async function chunkReader(store: Store, d: DatasetRow, params: BcpParams, x25519: KeyObject): Promise<(idx: number) => Promise<ValueChunk>> {
  const owner = (await store.party(d.ownerId))!;
  const ownerKey = deserializePublicKey(owner.bcpPublicKey, params);
  const ctx = { ownerId: owner.id, datasetId: d.id };
  const aesKey = deriveEnvelopeKey(x25519, owner.x25519PublicKey!, ctx);
  const tagKey = deriveEnvelopeKey(x25519, owner.x25519PublicKey!, ctx, 'hmac-tag');
  return async (idx) => {
    const c = await store.chunk(d.id, idx);
    if (!c) throw new CiphermineError('ERR_NOT_FOUND', `dataset ${d.id} has no chunk ${idx}`);
    const context = uploadContext(d.id, c.idx, c.rows);
    const bytes = openEnvelope(aesKey, c.envelope, context);
    checkCiphertextTag(tagKey, context, bytes, c.tag);
    return { cts: deserializeCiphertexts(bytes, ownerKey), values: c.rows * d.columns.length };
  };
}

/**
 * Names the dataset and column of a value the key server found outside its declared range, given
 * the failed batch's first value position in the dataset (row-major) or the column it was taken
 * from. Any other error passes through unchanged.
 */
export function withDatasetContext(e: unknown, d: DatasetRow, at: { firstValue: number } | { column: string }): unknown {
  if (!(e instanceof RemoteError) || e.code !== 'ERR_VALUE_RANGE') return e;
  const index = e.detail?.index ?? 0;
  const column = 'column' in at ? at.column : d.columns[(at.firstValue + index) % d.columns.length];
  return new RemoteError(
    'ERR_VALUE_RANGE',
    `dataset '${d.name}' (${d.id}), column '${column}': a value exceeds the declared range ±${d.maxAbs}; its owner must upload it again with a larger --max-abs`,
    400,
  );
}

/**
 * The same for a value found out of range later, inside a comparison of distances or clipped
 * values: the comparison mixes a record's columns, so the error names the datasets (and the column
 * when the job reads only one) rather than a position.
 */
export function withDatasetsContext(e: unknown, ds: readonly DatasetRow[], column?: string): unknown {
  if (!(e instanceof RemoteError) || e.code !== 'ERR_VALUE_RANGE') return e;
  const names = ds.map((d) => `'${d.name}' (${d.id}, ±${d.maxAbs})`).join(', ');
  const where = ds.length === 1 ? `dataset ${names}` : `one of the datasets ${names}`;
  return new RemoteError(
    'ERR_VALUE_RANGE',
    `${where}${column ? `, column '${column}'` : ''}: a value exceeds the declared range (found by a comparison${column ? '' : ', which mixes the columns'}); its owner must upload it again with a larger --max-abs`,
    400,
  );
}
