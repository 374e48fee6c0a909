/**
 * A reproducible uniform source: AES-256-CTR under a key derived (HKDF-SHA256) from a secret and a
 * label. The key server draws the exponential mechanism's noise from it, keyed by the job key's
 * secret, so a job that is run again after a failure meets the same noise: whoever sees the choice
 * of every attempt sees one draw, not a fresh one per attempt.
 */
import { createCipheriv, hkdfSync } from 'node:crypto';
import { bitLength, fromBytes, toBytes } from '../bigint.js';
import { ParameterError } from '../errors.js';
import type { Uniform } from './samplers.js';

export function keyedUniform(secret: bigint, label: string): Uniform {
  const key = Buffer.from(hkdfSync('sha256', toBytes(secret, Math.ceil(bitLength(secret) / 8) || 1), 'ciphermine keyed uniform', label, 32));
  const stream = createCipheriv('aes-256-ctr', key, Buffer.alloc(16));
  return (bound: bigint): bigint => {
    if (bound <= 0n) throw new ParameterError('bound must be positive');
    const bits = bitLength(bound - 1n);
    if (bits === 0) return 0n;
    const bytes = Math.ceil(bits / 8);
    const excess = BigInt(bytes * 8 - bits);
    for (;;) {
      const x = fromBytes(stream.update(Buffer.alloc(bytes))) >> excess;
      if (x < bound) return x;
    }
  };
}
