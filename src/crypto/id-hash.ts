/**
 * Keyed hashes of record ids, for vertically partitioned uploads (seed 002): owners that hold
 * different columns of the same records share a 32-byte key out of band, and each uploads
 * HMAC-SHA256(key, id) truncated to 16 bytes per row. The servers match rows by these hashes
 * without learning the ids (nor can they test a guessed id without the key).
 */
import { createHmac, randomBytes } from 'node:crypto';
import { ParameterError } from './errors.js';

export const ID_KEY_BYTES = 32;
export const ID_HASH_BYTES = 16;

export function generateIdKey(): Buffer {
  return randomBytes(ID_KEY_BYTES);
}

/** Every id's keyed hash, concatenated in row order; ids must be unique. */
export function idHashes(key: Uint8Array, ids: readonly string[]): Buffer {
  if (key.length !== ID_KEY_BYTES) throw new ParameterError(`an id key is ${ID_KEY_BYTES} bytes`);
  if (new Set(ids).size !== ids.length) throw new ParameterError('the id column repeats an id: ids must be unique');
  if (ids.some((id) => id === '')) throw new ParameterError('the id column has an empty cell');
  return Buffer.concat(ids.map((id) => createHmac('sha256', key).update(id).digest().subarray(0, ID_HASH_BYTES)));
}
