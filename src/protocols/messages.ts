/**
 * Wire format of protocol messages: u32 header length | JSON header | fixed-size group elements.
 * The header is validated with zod; element counts must match the body length exactly, and every
 * element must lie in [1, N^2), so a malformed request fails before any arithmetic.
 */
import { z } from 'zod';
import { fromBytes, toBytes } from '../crypto/bigint.js';
import { CiphermineError, InvalidCiphertextError, type ErrorCode } from '../crypto/errors.js';

export class ProtocolError extends CiphermineError {
  constructor(message: string, code: ErrorCode = 'ERR_BAD_REQUEST') {
    super(code, message);
  }
}

/** Largest number of group elements in one message (bounded memory on both servers). */
export const MAX_ELEMENTS = 1 << 17;
const MAX_HEADER = 64 * 1024;

export interface Message<H> {
  header: H;
  elements: bigint[];
}

export function encodeMessage(header: unknown, elements: readonly bigint[], elementBytes: number): Buffer {
  const head = Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(4);
  len.writeUInt32BE(head.length);
  const body = Buffer.alloc(elements.length * elementBytes);
  elements.forEach((x, i) => toBytes(x, elementBytes).copy(body, i * elementBytes));
  return Buffer.concat([len, head, body]);
}

/** Parses a message; `elementBytes` is read from the header via `sizeOf` (it depends on the key). */
export function decodeMessage<H>(bytes: Uint8Array, schema: z.ZodType<H>, sizeOf: (h: H) => { elementBytes: number; modulus: bigint }): Message<H> {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (buf.length < 4) throw new ProtocolError('message is truncated');
  const headLen = buf.readUInt32BE(0);
  if (headLen > MAX_HEADER || 4 + headLen > buf.length) throw new ProtocolError('message header is truncated or too large');
  let raw: unknown;
  try {
    raw = JSON.parse(buf.subarray(4, 4 + headLen).toString('utf8'));
  } catch {
    throw new ProtocolError('message header is not JSON');
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success) throw new ProtocolError(`bad message header: ${parsed.error.issues[0]?.message ?? 'invalid'}`);
  const header = parsed.data;
  const { elementBytes, modulus } = sizeOf(header);
  const body = buf.subarray(4 + headLen);
  if (body.length % elementBytes !== 0) throw new ProtocolError(`body of ${body.length} bytes is not a whole number of elements`);
  const count = body.length / elementBytes;
  if (count > MAX_ELEMENTS) throw new ProtocolError(`batch of ${count} elements exceeds the limit of ${MAX_ELEMENTS}`, 'ERR_TOO_LARGE');
  const elements: bigint[] = new Array(count);
  for (let i = 0; i < count; i++) {
    const x = fromBytes(body.subarray(i * elementBytes, (i + 1) * elementBytes));
    if (x < 1n || x >= modulus) throw new InvalidCiphertextError(`element ${i} is outside [1, N^2)`);
    elements[i] = x;
  }
  return { header, elements };
}

export const fingerprint = z.string().regex(/^[0-9a-f]{32}$/, 'a key fingerprint is 32 hex digits');
