/**
 * The HTTP transport between the two server processes: POST /rpc/:method with binary bodies over
 * keep-alive connections (fastify on the key server, fetch on the compute server).
 *
 * Both ends are authenticated with HMAC-SHA256 under a key provisioned at setup: a head MAC over
 * method, timestamp, nonce and the body's length is checked before the body is read, so an
 * unauthenticated sender cannot make the key server buffer anything; the request MAC covers
 * method, timestamp, nonce and the body's hash; the reply MAC covers the request nonce, the status
 * and the reply's hash, so a reply (or an error) cannot be forged, swapped between requests or
 * turned from a failure into a success. Requests that fail authentication get an unsigned 401:
 * nothing is MACed over input an outsider chose. A request outside the clock window, or whose
 * nonce was already seen in it, is a replay and is refused with 401.
 */
import { getGlobalDispatcher, request, type Dispatcher } from 'undici';
import type { TlsMaterial } from '../crypto/tls.js';
import { ParameterError } from '../crypto/errors.js';
import { requireSecureUrl } from '../crypto/tls.js';
import { pinnedDispatcher, pinErrorOf } from './pinned-tls.js';
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import Fastify, { type FastifyInstance } from 'fastify';
import { CiphermineError, httpStatusOf } from '../crypto/errors.js';
import { RemoteError, type CallOptions, type RequestHandler, type Transport } from './transport.js';
import { attachStreamServer, StreamClient, StreamRefused } from './stream-transport.js';

const WINDOW_MS = 120_000;
/** How far ahead of ours the other server's clock may run. */
const MAX_FUTURE_MS = 30_000;
/** A protocol step on a large batch takes minutes at most; a silent peer must not hang a job. */
const CALL_TIMEOUT_MS = 15 * 60_000;
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

/**
 * Remembers each nonce until its timestamp has left the window (nonce -> expiry), so a request
 * cannot be replayed while its timestamp would still be accepted, whatever the clock skew.
 */
class ReplayGuard {
  private readonly seen = new Map<string, number>();
  /** Nonces seen before a restart are gone, so nothing signed before this listener started is accepted. */
  private readonly startedAt = Date.now();
  check(nonce: string, ts: number): void {
    const now = Date.now();
    if (!Number.isFinite(ts) || ts < now - WINDOW_MS || ts > now + MAX_FUTURE_MS) throw new Unauthenticated('request timestamp outside the window');
    if (ts < this.startedAt) throw new Unauthenticated('request signed before this server started (a possible replay across a restart)');
    // Oldest first (a Map keeps insertion order, and expiries follow it up to clock jitter): stop at
    // the first live entry, so each request costs O(1), not a scan of every nonce in the window.
    // An entry left a little past its expiry by jitter only stays longer, which is safe.
    for (const [n, expiry] of this.seen) {
      if (expiry >= now) break;
      this.seen.delete(n);
    }
    if (this.seen.has(nonce)) throw new Unauthenticated('replayed request');
    this.seen.set(nonce, ts + WINDOW_MS);
  }
}

export interface HttpServerOptions {
  hmacKey: Uint8Array;
  /** Certificate and key: the listener speaks only TLS (required off loopback). */
  tls?: TlsMaterial;
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
  const app = Fastify({
    logger: opts.logger ?? false,
    bodyLimit: opts.bodyLimit ?? DEFAULT_BODY_LIMIT,
    ...(opts.tls ? { https: { cert: opts.tls.cert, key: opts.tls.key } } : {}),
  });
  const guard = new ReplayGuard();
  // Authenticated requests: their nonce may be echoed in a signed reply.
  const authenticated = new WeakSet<object>();
  app.addHook('onRequest', async (req) => {
    const ts = String(req.headers['x-cm-timestamp'] ?? '');
    const nonce = String(req.headers['x-cm-nonce'] ?? '');
    const length = String(req.headers['content-length'] ?? '');
    const method = decodeURIComponent(req.url.replace(/^\/rpc\//, '').split('?')[0] ?? '');
    if (!/^[0-9a-f]{32}$/.test(nonce)) throw new Unauthenticated('missing or malformed nonce');
    if (!/^\d{1,12}$/.test(length)) throw new Unauthenticated('a request states its body length');
    if (!macEqual(String(req.headers['x-cm-head'] ?? ''), mac(opts.hmacKey, 'head', method, ts, nonce, length))) {
      throw new Unauthenticated('bad request signature');
    }
    // The window and the nonce are checked before the body is read, so a seen head cannot be
    // replayed to make this server buffer bodies.
    guard.check(nonce, Number(ts));
    authenticated.add(req.raw);
  });
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
  // Error answers are MACed like replies, so nobody on the network can fake a failure.
  app.setErrorHandler((err: Error & { code?: string; statusCode?: number; detail?: unknown }, req, reply) => {
    const code = err.code ?? 'ERR_INTERNAL';
    const status = httpStatusOf(err);
    const detail = status < 500 ? err.detail : undefined;
    // A lost session is an outage the caller acts on, so its message is kept; other 5xx stay in the log.
    const message = status >= 500 && code !== 'ERR_SESSION_LOST' ? 'internal error' : err.message;
    const body = Buffer.from(JSON.stringify({ code, message, detail }));
    if (authenticated.has(req.raw)) {
      reply.header('x-cm-signature', mac(opts.hmacKey, 'reply', String(req.headers['x-cm-nonce']), String(status), sha(body)));
    }
    reply.status(status).type('application/json').send(body);
  });
  app.post<{ Params: { method: string } }>('/rpc/:method', async (req, reply) => {
    const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    const ts = String(req.headers['x-cm-timestamp'] ?? '');
    const nonce = String(req.headers['x-cm-nonce'] ?? '');
    const sig = String(req.headers['x-cm-signature'] ?? '');
    if (!macEqual(sig, mac(opts.hmacKey, 'request', req.params.method, ts, nonce, sha(body)))) {
      throw new Unauthenticated('bad request signature');
    }
    const out = Buffer.from(await handler(req.params.method, body));
    reply.header('x-cm-signature', mac(opts.hmacKey, 'reply', nonce, '200', sha(out)));
    reply.type('application/octet-stream');
    return out;
  });
  // The engine's rounds come over a persistent socket on the same listener (stream-transport.ts).
  const detachStream = attachStreamServer(app.server, handler, {
    hmacKey: opts.hmacKey,
    bodyLimit: opts.bodyLimit ?? DEFAULT_BODY_LIMIT,
    checkNonce: (nonce, ts) => guard.check(nonce, ts),
  });
  const address = await app.listen({ host: opts.host ?? '127.0.0.1', port: opts.port ?? 0 });
  return {
    url: address,
    app,
    close: async () => {
      detachStream();
      await app.close();
    },
  };
}

interface Reply {
  status: number;
  signature: string;
  body: Buffer;
}

/** The compute server's end. */
export class HttpTransport implements Transport {
  private readonly dispatcher?: Dispatcher;
  /** Latency-sensitive calls (the engine's rounds) over one persistent socket; absent with `stream: false`. */
  private readonly stream?: StreamClient;

  /**
   * `opts.fingerprint`: the key server's TLS certificate (SHA-256), required for an https URL: the
   * certificate is pinned, so a self-signed one is fine and a substituted one is refused.
   */
  constructor(
    private readonly baseUrl: string,
    private readonly hmacKey: Uint8Array,
    opts: { fingerprint?: string; peer?: string; stream?: boolean } = {},
  ) {
    requireSecureUrl(baseUrl, opts.peer ?? 'the key server');
    if (opts.stream !== false)
      this.stream = new StreamClient(baseUrl, hmacKey, {
        fingerprint: opts.fingerprint,
        peer: opts.peer ?? 'the key server',
        callTimeoutMs: CALL_TIMEOUT_MS,
        bodyLimit: DEFAULT_BODY_LIMIT,
      });
    if (baseUrl.startsWith('https:')) {
      if (!opts.fingerprint)
        throw new ParameterError(
          `${opts.peer ?? 'the key server'} at ${baseUrl} speaks TLS: give its certificate fingerprint, as its start printed it (--key-server-fingerprint, --dealer-fingerprint)`,
        );
      this.dispatcher = pinnedDispatcher(opts.fingerprint, opts.peer ?? 'the key server');
    }
  }

  /** One POST; a connection failure becomes ERR_UNREACHABLE naming the key server (jobs wait for it). */
  private async post(method: string, body: Uint8Array, headers: Record<string, string>): Promise<Reply> {
    try {
      // undici's request, not fetch: a round of the engine is one call, and fetch's WHATWG layers
      // cost about a third of a millisecond a call on loopback (BENCHMARKS.md).
      const res = await request(`${this.baseUrl}/rpc/${encodeURIComponent(method)}`, {
        method: 'POST',
        headers,
        body: Buffer.from(body.buffer, body.byteOffset, body.byteLength),
        headersTimeout: CALL_TIMEOUT_MS,
        bodyTimeout: CALL_TIMEOUT_MS,
        // A redirect would send the signed request somewhere nobody pinned: undici's request follows none.
        dispatcher: this.dispatcher ?? getGlobalDispatcher(),
      });
      if (res.statusCode >= 300 && res.statusCode < 400) {
        await res.body.dump();
        throw new RemoteError(
          'ERR_UNREACHABLE',
          `the key server at ${this.baseUrl} answered with a redirect (${res.statusCode}), which is not followed`,
          503,
        );
      }
      const out = Buffer.from(await res.body.arrayBuffer());
      const sig = res.headers['x-cm-signature'];
      return { status: res.statusCode, signature: typeof sig === 'string' ? sig : '', body: out };
    } catch (e) {
      const pin = pinErrorOf(e);
      if (pin) throw pin;
      if (e instanceof CiphermineError) throw e;
      const code = (e as { code?: string }).code ?? (e as { cause?: { code?: string } }).cause?.code;
      throw new RemoteError('ERR_UNREACHABLE', `the key server at ${this.baseUrl} is unreachable${code ? ` (${code})` : ''}`, 503);
    }
  }

  /** Closes the persistent socket, if one is open (HTTP connections are pooled and need nothing). */
  async close(): Promise<void> {
    this.stream?.close();
  }

  async call(method: string, body: Uint8Array, opts: CallOptions = {}): Promise<Uint8Array> {
    if (opts.latencySensitive && this.stream?.usable) {
      try {
        return await this.stream.call(method, body);
      } catch (e) {
        if (!(e instanceof StreamRefused)) throw e;
        // The upgrade's answer is unsigned, so it decides nothing: this call goes over HTTP, whose
        // signed answer does (a wrong key is ERR_CHANNEL_KEY there); if HTTP answers, the key
        // server has no stream (an older one) and HTTP carries the rounds for a while.
        const out = await this.call(method, body);
        this.stream.preferHttp();
        return out;
      }
    }
    const ts = String(Date.now());
    const nonce = randomBytes(16).toString('hex');
    const res = await this.post(method, body, {
      'content-type': 'application/octet-stream',
      'x-cm-timestamp': ts,
      'x-cm-nonce': nonce,
      'x-cm-head': mac(this.hmacKey, 'head', method, ts, nonce, String(body.length)),
      'x-cm-signature': mac(this.hmacKey, 'request', method, ts, nonce, sha(body)),
    });
    const out = res.body;
    const authentic = macEqual(res.signature, mac(this.hmacKey, 'reply', nonce, String(res.status), sha(out)));
    if (res.status < 200 || res.status > 299) {
      // An unsigned error may come from anyone on the path: its body is not read, so neither its
      // code nor its message can be forged into a typed error.
      if (!authentic && res.status === 401) {
        throw new RemoteError(
          'ERR_CHANNEL_KEY',
          `the key server at ${this.baseUrl} refused this compute server's signature: the two servers' channel keys differ (give the compute server the key server's channel.key), or their clocks are minutes apart`,
          502,
        );
      }
      // A proxy's or a closing server's own 502/503/504 (fastify answers 503 while it shuts down):
      // the key server is away, and the job waits for it as for a refused connection.
      if (!authentic && res.status >= 502 && res.status <= 504) {
        throw new RemoteError('ERR_UNREACHABLE', `the key server at ${this.baseUrl} is unavailable (unsigned ${res.status})`, 503);
      }
      if (!authentic) throw new RemoteError('ERR_UNAUTHENTICATED', `unauthenticated ${res.status} answer`, 502);
      let info: { code?: string; message?: string; detail?: { index?: number } } = {};
      try {
        info = JSON.parse(out.toString('utf8'));
      } catch {
        // not JSON: keep the status alone
      }
      throw new RemoteError(info.code ?? 'ERR_REMOTE', info.message ?? `key server answered ${res.status}`, res.status, info.detail);
    }
    if (!authentic) throw new RemoteError('ERR_UNAUTHENTICATED', 'reply signature does not verify', 502);
    return out;
  }
}
