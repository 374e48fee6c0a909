/**
 * The channel between the compute server (Alice, CCS) and the key server (Bob, KMS): one binary
 * request, one binary reply, per protocol step. Protocols are written against this interface only,
 * so the same code runs in one process (tests) and across the network (production).
 */
import { CiphermineError } from '../crypto/errors.js';

export interface Transport {
  call(method: string, body: Uint8Array): Promise<Uint8Array>;
  close?(): Promise<void>;
}

/** What the key server exposes: a method name and a body in, a body out. */
export type RequestHandler = (method: string, body: Uint8Array) => Promise<Uint8Array>;

/** An error reported by the far side of a transport, with its code and HTTP-like status. */
export class RemoteError extends CiphermineError {
  constructor(
    code: string,
    message: string,
    readonly status: number,
  ) {
    super(code, message);
  }
}

/** Same process, no network: copies bodies so neither side can alias the other's buffers. */
export class InMemoryTransport implements Transport {
  constructor(private readonly handler: RequestHandler) {}
  async call(method: string, body: Uint8Array): Promise<Uint8Array> {
    try {
      return Buffer.from(await this.handler(method, Buffer.from(body)));
    } catch (e) {
      const err = e as CiphermineError;
      throw new RemoteError(err.code ?? 'ERR_INTERNAL', err.message, statusOf(err));
    }
  }
}

/** 4xx for anything the caller sent wrong, 5xx otherwise. */
export function statusOf(e: unknown): number {
  const code = (e as { code?: string }).code ?? '';
  if (code === 'ERR_UNAUTHENTICATED') return 401;
  if (code === 'ERR_UNKNOWN_KEY' || code === 'ERR_UNKNOWN_METHOD' || code === 'ERR_UNKNOWN_SHARE') return 404;
  if (code === 'ERR_TOO_LARGE') return 413;
  return code.startsWith('ERR_') && code !== 'ERR_INTERNAL' && code !== 'ERR_WORKER' ? 400 : 500;
}
