/**
 * The channel between the compute server (Alice, CCS) and the key server (Bob, KMS): one binary
 * request, one binary reply, per protocol step. Protocols are written against this interface only,
 * so the same code runs in one process (tests) and across the network (production).
 */
import { CiphermineError, httpStatusOf, isErrorCode } from '../crypto/errors.js';

export interface CallOptions {
  /**
   * The call's cost is its latency (a round of the secret-sharing engine): a transport that has a
   * faster path for such calls takes it (http-transport.ts's persistent stream).
   */
  latencySensitive?: boolean;
}

export interface Transport {
  call(method: string, body: Uint8Array, opts?: CallOptions): Promise<Uint8Array>;
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
    /** Structured detail the far side attached (the position of a value out of range). */
    readonly detail?: { index?: number },
  ) {
    super(isErrorCode(code) ? code : 'ERR_REMOTE', message);
  }
}

/** Same process, no network: copies bodies so neither side can alias the other's buffers. */
export class InMemoryTransport implements Transport {
  constructor(private readonly handler: RequestHandler) {}
  async call(method: string, body: Uint8Array): Promise<Uint8Array> {
    try {
      return Buffer.from(await this.handler(method, Buffer.from(body)));
    } catch (e) {
      const err = e as CiphermineError & { detail?: { index?: number } };
      throw new RemoteError(err.code ?? 'ERR_INTERNAL', err.message, httpStatusOf(err), err.detail);
    }
  }
}
