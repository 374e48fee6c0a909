/**
 * What a job step hands its chunk tasks through the database (an iteration's plan, a record
 * share): JSON with bigints as hex, ciphertexts as their two components and the job key by its
 * fingerprint. A task reads it back under the job key it knows, and refuses a value that names any
 * other key or a ciphertext outside the group.
 */
import { BcpPublicKey, Ciphertext, CiphermineError } from '../../crypto/index.js';

type Wire = null | boolean | number | string | Wire[] | { [k: string]: Wire };

/** A JSON form of `value`; every ciphertext and key in it must be under `jobKey`. */
export function toWire(value: unknown, jobKey: BcpPublicKey): Wire {
  if (typeof value === 'bigint') return { $n: value.toString() };
  if (value instanceof Ciphertext) {
    if (!value.publicKey.equals(jobKey)) throw new CiphermineError('ERR_KEY_MISMATCH', 'only values under the job key go to a task');
    return { $c: [value.A.toString(16), value.B.toString(16)] };
  }
  if (value instanceof BcpPublicKey) {
    if (!value.equals(jobKey)) throw new CiphermineError('ERR_KEY_MISMATCH', 'only the job key goes to a task');
    return { $pk: value.fingerprint };
  }
  if (Array.isArray(value)) return value.map((v) => toWire(v, jobKey));
  if (value && typeof value === 'object') {
    const out: Record<string, Wire> = {};
    for (const [k, v] of Object.entries(value)) if (v !== undefined) out[k] = toWire(v, jobKey);
    return out;
  }
  return value as Wire;
}

/** The value again, its ciphertexts and key under `jobKey`. */
export function fromWire<T>(wire: Wire, jobKey: BcpPublicKey): T {
  return read(wire, jobKey) as T;
}

function read(w: Wire, pk: BcpPublicKey): unknown {
  if (Array.isArray(w)) return w.map((v) => read(v, pk));
  if (w && typeof w === 'object') {
    if (typeof w.$n === 'string') return BigInt(w.$n);
    if (Array.isArray(w.$c)) return Ciphertext.checked(pk, BigInt(`0x${w.$c[0]}`), BigInt(`0x${w.$c[1]}`));
    if (typeof w.$pk === 'string') {
      if (w.$pk !== pk.fingerprint) throw new CiphermineError('ERR_KEY_MISMATCH', 'a task value names a key other than the job key');
      return pk;
    }
    return Object.fromEntries(Object.entries(w).map(([k, v]) => [k, read(v, pk)]));
  }
  return w;
}

export const wireBuffer = (value: unknown, jobKey: BcpPublicKey) => Buffer.from(JSON.stringify(toWire(value, jobKey)));
export const fromWireBuffer = <T>(b: Buffer, jobKey: BcpPublicKey) => fromWire<T>(JSON.parse(b.toString()) as Wire, jobKey);

/** Several buffers as one task result: each behind its 4-byte length. */
export function encodeFrames(parts: readonly Buffer[]): Buffer {
  const out: Buffer[] = [];
  for (const p of parts) {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(p.length);
    out.push(len, p);
  }
  return Buffer.concat(out);
}

export function decodeFrames(b: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let at = 0; at < b.length;) {
    if (at + 4 > b.length) throw new CiphermineError('ERR_SERIALIZATION', 'a task result is truncated');
    const len = b.readUInt32BE(at);
    if (at + 4 + len > b.length) throw new CiphermineError('ERR_SERIALIZATION', 'a task result is truncated');
    out.push(b.subarray(at + 4, at + 4 + len));
    at += 4 + len;
  }
  return out;
}
