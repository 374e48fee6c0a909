/**
 * A pseudorandom generator from a 32-byte seed: AES-256-CTR over zeros (node:crypto). Two parties
 * holding the same seed draw the same stream, which is how a dealer's correlated randomness costs
 * only the correction terms on the wire.
 */
import { createCipheriv, randomBytes, type Cipher } from 'node:crypto';
import { ParameterError } from '../crypto/errors.js';
import { fromLimbWords, limbsOf, type WideArray } from './wide-ring.js';

export const SEED_BYTES = 32;

export class Prg {
  private readonly cipher: Cipher;

  constructor(seed: Uint8Array) {
    if (seed.length !== SEED_BYTES) throw new ParameterError(`a PRG seed is ${SEED_BYTES} bytes, got ${seed.length}`);
    this.cipher = createCipheriv('aes-256-ctr', seed, Buffer.alloc(16));
  }

  static fresh(): { seed: Buffer; prg: Prg } {
    const seed = randomBytes(SEED_BYTES);
    return { seed, prg: new Prg(seed) };
  }

  bytes(n: number): Buffer {
    return this.cipher.update(Buffer.alloc(n));
  }

  /** n uniform elements of Z_2^64. */
  ring(n: number): BigUint64Array {
    // A copy starts at offset 0 of its own buffer, as a 64-bit view needs.
    return new BigUint64Array(new Uint8Array(this.bytes(8 * n)).buffer, 0, n);
  }

  /** n uniform elements of Z_2^bits (limb-major, as wide-ring.ts fromLimbWords reads them). */
  wide(bits: number, n: number): WideArray {
    return fromLimbWords(bits, n, this.ring(limbsOf(bits) * n));
  }

  /** n uniform 32-bit words (bit-sliced boolean material). */
  words(n: number): Uint32Array {
    return new Uint32Array(new Uint8Array(this.bytes(4 * n)).buffer, 0, n);
  }
}

/**
 * Elements start .. start + count - 1 of the Z_2^64 stream of `seed` (the same stream as
 * `new Prg(seed).ring(...)`, AES-256-CTR from counter 0), without generating what comes before:
 * a data owner's upload and a resumed upload draw the masks of any chunk directly.
 */
export function ringAt(seed: Uint8Array, start: number, count: number): BigUint64Array {
  if (seed.length !== SEED_BYTES) throw new ParameterError(`a PRG seed is ${SEED_BYTES} bytes, got ${seed.length}`);
  const block = Math.floor(start / 2);
  const iv = Buffer.alloc(16);
  iv.writeBigUInt64BE(BigInt(block), 8);
  const skip = start % 2;
  const bytes = createCipheriv('aes-256-ctr', seed, iv).update(Buffer.alloc(8 * (count + skip)));
  return new BigUint64Array(new Uint8Array(bytes).buffer, 8 * skip, count);
}
