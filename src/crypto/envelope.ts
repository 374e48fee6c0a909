/**
 * AES-256-GCM envelope around a batch of BCP ciphertexts (seed 000's second layer): the key server
 * never sees an owner's upload even if it reads the compute server's traffic. Layout: version (1) |
 * nonce (12) | tag (16) | ciphertext. The associated data binds the envelope to its context (owner,
 * dataset, batch number), so an envelope moved to another dataset or position fails to open.
 */
import { createCipheriv, createDecipheriv, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { EnvelopeError, ParameterError } from './errors.js';

const VERSION = 1;
const NONCE = 12;
const TAG = 16;

export function seal(key: Uint8Array, plaintext: Uint8Array, aad: string): Buffer {
  return sealWithNonce(key, plaintext, aad, randomBytes(NONCE));
}

/**
 * seal() with a caller-chosen 12-byte nonce. Exists for test vectors and deterministic replays only:
 * a nonce used twice under one key breaks AES-GCM, so production code calls seal().
 */
export function sealWithNonce(key: Uint8Array, plaintext: Uint8Array, aad: string, nonce: Uint8Array): Buffer {
  if (key.length !== 32) throw new ParameterError('AES-256 needs a 32-byte key');
  if (nonce.length !== NONCE) throw new ParameterError(`AES-GCM nonce must be ${NONCE} bytes`);
  const cipher = createCipheriv('aes-256-gcm', key, nonce);
  cipher.setAAD(Buffer.from(aad));
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return Buffer.concat([Buffer.from([VERSION]), Buffer.from(nonce), cipher.getAuthTag(), body]);
}

export function openEnvelope(key: Uint8Array, envelope: Uint8Array, aad: string): Buffer {
  if (key.length !== 32) throw new ParameterError('AES-256 needs a 32-byte key');
  if (!(envelope instanceof Uint8Array) || envelope.length < 1 + NONCE + TAG) {
    throw new EnvelopeError('envelope is truncated');
  }
  if (envelope[0] !== VERSION) throw new EnvelopeError(`unsupported envelope version ${envelope[0]}`);
  const buf = Buffer.from(envelope);
  const decipher = createDecipheriv('aes-256-gcm', key, buf.subarray(1, 1 + NONCE));
  decipher.setAAD(Buffer.from(aad));
  decipher.setAuthTag(buf.subarray(1 + NONCE, 1 + NONCE + TAG));
  try {
    return Buffer.concat([decipher.update(buf.subarray(1 + NONCE + TAG)), decipher.final()]);
  } catch {
    throw new EnvelopeError('envelope failed authentication (tampered, wrong key or wrong context)');
  }
}

/** Associated data of an upload chunk: binds an envelope to its dataset, position and row count. */
export function uploadContext(datasetId: string, idx: number, rows: number): string {
  return `ciphermine/upload/v1;dataset=${datasetId};chunk=${idx};rows=${rows}`;
}

/** HMAC-SHA256 integrity tag of an uploaded ciphertext batch, bound to its upload context (seed 001). */
export function ciphertextTag(key: Uint8Array, context: string, ciphertexts: Uint8Array): string {
  return createHmac('sha256', key).update(context).update('\n').update(ciphertexts).digest('hex');
}

export function checkCiphertextTag(key: Uint8Array, context: string, ciphertexts: Uint8Array, tag: string): void {
  const want = Buffer.from(ciphertextTag(key, context, ciphertexts), 'hex');
  const got = Buffer.from(typeof tag === 'string' && /^[0-9a-f]{64}$/.test(tag) ? tag : '', 'hex');
  if (got.length !== want.length || !timingSafeEqual(got, want)) throw new EnvelopeError('ciphertext integrity tag does not verify');
}
