/**
 * The HTTP transport between the two server processes: POST /rpc/:method with binary bodies over
 * keep-alive connections (fastify on the key server, fetch on the compute server).
 *
 * Both ends are authenticated with HMAC-SHA256 under a key provisioned at setup: the request MAC
 * covers method, timestamp, nonce and the body's hash; the reply MAC covers the request nonce and the
 * reply's hash, so a reply cannot be forged or swapped between requests. A request outside the
 * clock window, or whose nonce was already seen in it, is a replay and is refused with 401.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import Fastify, { type FastifyInstance } from 'fastify';
import { CiphermineError } from '../crypto/errors.js';
import { RemoteError, statusOf, type RequestHandler, type Transport } from './transport.js';

const WINDOW_MS = 120_000;
export const DEFAULT_BODY_LIMIT = 160 * 1024 * 1024;

function mac(key: Uint8Array, ...parts: (string | Buffer)[]): string {
  const h = createHmac('sha256', key);
  for (const p of parts) h.update(p).update('\n');
  return h.digest('hex');
}

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest();

function macEqual(a: string, b: string): boolean {
  const x = Buffer.from(a, 'hex');
  const y = Buffer.from(b, 'hex');
  return x.length === y.length && x.length === 32 && timingSafeEqual(x, y);
}

class Unauthenticated extends CiphermineError {
  constructor(message: string) {
    super('ERR_UNAUTHENTICATED', message);
  }
}

/** Remembers nonces for the length of the clock window. */
class ReplayGuard {
  private readonly seen = new Map<string, number>();
  check(nonce: string, ts: number): void {
    const now = Date.now();
    if (!Number.isFinite(ts) || Math.abs(now - ts) > WINDOW_MS) throw new Unauthenticated('request timestamp outside the window');
    for (const [n, t] of this.seen) {
      if (t > now - WINDOW_MS) break;
      this.seen.delete(n);
    }
    if (this.seen.has(nonce)) throw new Unauthenticated('replayed request');
    this.seen.set(nonce, now);
  }
}

export interface HttpServerOptions {
  hmacKey: Uint8Array;
  host?: string;
  port?: number;
  bodyLimit?: number;
  logger?: boolean;
}

export interface RunningServer {
  url: string;
  app: FastifyInstance;
  close(): Promise<void>;
}

/** Serves a RequestHandler over HTTP. */
export async function serveHttp(handler: RequestHandler, opts: HttpServerOptions): Promise<RunningServer> {
  const app = Fastify({ logger: opts.logger ?? false, bodyLimit: opts.bodyLimit ?? DEFAULT_BODY_LIMIT });
  const guard = new ReplayGuard();
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
  app.setErrorHandler((err: Error & { code?: string; statusCode?: number }, _req, reply) => {
    const code = err.code ?? 'ERR_INTERNAL';
    const status = err instanceof CiphermineError ? statusOf(err) : (err.statusCode ?? 500);
    reply.status(status).send({ code, message: err.message });
  });
  app.post<{ Params: { method: string } }>('/rpc/:method', async (req, reply) => {
    const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    const ts = String(req.headers['x-cm-timestamp'] ?? '');
    const nonce = String(req.headers['x-cm-nonce'] ?? '');
    const sig = String(req.headers['x-cm-signature'] ?? '');
    if (!/^[0-9a-f]{32}$/.test(nonce)) throw new Unauthenticated('missing or malformed nonce');
    if (!macEqual(sig, mac(opts.hmacKey, 'request', req.params.method, ts, nonce, sha(body)))) {
      throw new Unauthenticated('bad request signature');
    }
    guard.check(nonce, Number(ts));
    const out = Buffer.from(await handler(req.params.method, body));
    reply.header('x-cm-signature', mac(opts.hmacKey, 'reply', nonce, sha(out)));
    reply.type('application/octet-stream');
    return out;
  });
  const address = await app.listen({ host: opts.host ?? '127.0.0.1', port: opts.port ?? 0 });
  return { url: address, app, close: () => app.close() };
}

/** The compute server's end. */
export class HttpTransport implements Transport {
  constructor(
    private readonly baseUrl: string,
    private readonly hmacKey: Uint8Array,
  ) {}

  async call(method: string, body: Uint8Array): Promise<Uint8Array> {
    const ts = String(Date.now());
    const nonce = randomBytes(16).toString('hex');
    const res = await fetch(`${this.baseUrl}/rpc/${encodeURIComponent(method)}`, {
      method: 'POST',
      headers: {
        'content-type': 'application/octet-stream',
        'x-cm-timestamp': ts,
        'x-cm-nonce': nonce,
        'x-cm-signature': mac(this.hmacKey, 'request', method, ts, nonce, sha(body)),
      },
      body: body as unknown as BodyInit,
    });
    const out = Buffer.from(await res.arrayBuffer());
    if (!res.ok) {
      let info: { code?: string; message?: string } = {};
      try {
        info = JSON.parse(out.toString('utf8'));
      } catch {
        // not JSON: keep the status alone
      }
      throw new RemoteError(info.code ?? 'ERR_REMOTE', info.message ?? `key server answered ${res.status}`, res.status);
    }
    if (!macEqual(String(res.headers.get('x-cm-signature') ?? ''), mac(this.hmacKey, 'reply', nonce, sha(out)))) {
      throw new RemoteError('ERR_UNAUTHENTICATED', 'reply signature does not verify', 502);
    }
    return out;
  }
}
