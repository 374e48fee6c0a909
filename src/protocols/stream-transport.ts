/**
 * A persistent, authenticated WebSocket between the two servers for calls whose cost is their
 * latency: the secret-sharing engine's rounds (hundreds an epoch when training, each one message
 * each way). Over loopback an HTTP POST costs about 0.7 ms a round, a frame on an open socket a
 * fraction of that (BENCHMARKS.md). Everything else keeps to the HTTP transport
 * (http-transport.ts), whose per-request authentication this mirrors:
 *
 * - The upgrade request carries a timestamp, a fresh nonce and HMAC(key, 'stream', ts, nonce); the
 *   key server checks the window and refuses a nonce seen before (the same replay guard as the
 *   HTTP requests), so a recorded connection cannot be replayed. An unauthenticated upgrade gets an
 *   unsigned 401 and the socket is closed.
 * - Every frame is bound to that connection nonce, its direction and a sequence number under
 *   HMAC-SHA256: requests must arrive in order (a dropped, replayed, reordered or forged frame
 *   closes the connection), and a reply names the request it answers, with its status, so a
 *   reply cannot be forged or swapped and a failure cannot be turned into a success.
 * - Over TLS the certificate is pinned by fingerprint, and checked before any frame is sent.
 *
 * A connection that drops fails its pending calls with ERR_UNREACHABLE (the caller's outage path,
 * as for a refused HTTP connection); the next call opens a new one. A key server without the
 * stream (404 to the upgrade) is served over HTTP instead.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import WebSocket, { WebSocketServer } from 'ws';
import { CiphermineError, httpStatusOf } from '../crypto/errors.js';
import { normaliseFingerprint } from '../crypto/tls.js';
import { CertificatePinError } from './pinned-tls.js';
import { RemoteError, type RequestHandler } from './transport.js';

export const STREAM_PATH = '/rpc-stream';
const TAG_BYTES = 32;

type Direction = 'request' | 'reply';

/** HMAC over the frame's binding (connection, direction, sequence, method or status) and its body. */
function frameTag(key: Uint8Array, conn: string, dir: Direction, seq: number, label: string, body: Uint8Array): Buffer {
  return createHmac('sha256', key).update(`ciphermine-stream/v1\n${conn}\n${dir}\n${seq}\n${label}\n`).update(body).digest();
}

export const upgradeMac = (key: Uint8Array, ts: string, nonce: string): string =>
  createHmac('sha256', key).update(`stream\n${ts}\n${nonce}\n`).digest('hex');

function sameTag(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

/** request: [u32 seq][u8 method length][method][body][tag]; reply: [u32 seq][u16 status][body][tag]. */
function encodeRequest(key: Uint8Array, conn: string, seq: number, method: string, body: Uint8Array): Buffer {
  const m = Buffer.from(method, 'utf8');
  const head = Buffer.alloc(5);
  head.writeUInt32BE(seq, 0);
  head.writeUInt8(m.length, 4);
  return Buffer.concat([head, m, body, frameTag(key, conn, 'request', seq, method, body)]);
}

function encodeReply(key: Uint8Array, conn: string, seq: number, status: number, body: Uint8Array): Buffer {
  const head = Buffer.alloc(6);
  head.writeUInt32BE(seq, 0);
  head.writeUInt16BE(status, 4);
  return Buffer.concat([head, body, frameTag(key, conn, 'reply', seq, String(status), body)]);
}

function decodeRequest(key: Uint8Array, conn: string, frame: Buffer): { seq: number; method: string; body: Buffer } | undefined {
  if (frame.length < 5 + TAG_BYTES) return undefined;
  const seq = frame.readUInt32BE(0);
  const len = frame.readUInt8(4);
  if (frame.length < 5 + len + TAG_BYTES) return undefined;
  const method = frame.subarray(5, 5 + len).toString('utf8');
  const body = frame.subarray(5 + len, frame.length - TAG_BYTES);
  return sameTag(frame.subarray(frame.length - TAG_BYTES), frameTag(key, conn, 'request', seq, method, body)) ? { seq, method, body } : undefined;
}

function decodeReply(key: Uint8Array, conn: string, frame: Buffer): { seq: number; status: number; body: Buffer } | undefined {
  if (frame.length < 6 + TAG_BYTES) return undefined;
  const seq = frame.readUInt32BE(0);
  const status = frame.readUInt16BE(4);
  const body = frame.subarray(6, frame.length - TAG_BYTES);
  return sameTag(frame.subarray(frame.length - TAG_BYTES), frameTag(key, conn, 'reply', seq, String(status), body))
    ? { seq, status, body }
    : undefined;
}

/** The error answer, as the HTTP transport's error handler gives it: 5xx messages stay in the log. */
function errorReply(err: Error & { code?: string; detail?: unknown }): { status: number; body: Buffer } {
  const code = err.code ?? 'ERR_INTERNAL';
  const status = httpStatusOf(err);
  const message = status >= 500 && code !== 'ERR_SESSION_LOST' ? 'internal error' : err.message;
  return { status, body: Buffer.from(JSON.stringify({ code, message, detail: status < 500 ? err.detail : undefined })) };
}

export interface StreamServerOptions {
  hmacKey: Uint8Array;
  maxPayload: number;
  /** The HTTP listener's replay guard: an upgrade's nonce is checked like a request's. */
  checkNonce(nonce: string, ts: number): void;
}

/** The key server's end: answers each authenticated frame with `handler`, concurrently, replies tagged by sequence. */
export function attachStreamServer(
  server: { on(event: 'upgrade', l: (req: IncomingMessage, socket: Duplex, head: Buffer) => void): unknown },
  handler: RequestHandler,
  o: StreamServerOptions,
): () => void {
  const wss = new WebSocketServer({ noServer: true, maxPayload: o.maxPayload, perMessageDeflate: false });
  server.on('upgrade', (req, socket, head) => {
    const refuse = (status: string) => {
      socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    };
    if ((req.url ?? '').split('?')[0] !== STREAM_PATH) return refuse('404 Not Found');
    const ts = String(req.headers['x-cm-timestamp'] ?? '');
    const nonce = String(req.headers['x-cm-nonce'] ?? '');
    const mac = Buffer.from(String(req.headers['x-cm-head'] ?? ''), 'hex');
    if (!/^[0-9a-f]{32}$/.test(nonce) || !sameTag(mac, Buffer.from(upgradeMac(o.hmacKey, ts, nonce), 'hex'))) return refuse('401 Unauthorized');
    try {
      o.checkNonce(nonce, Number(ts));
    } catch {
      return refuse('401 Unauthorized');
    }
    wss.handleUpgrade(req, socket, head, (ws) => serveConnection(ws, nonce, handler, o.hmacKey));
  });
  return () => {
    for (const ws of wss.clients) ws.terminate();
    wss.close();
  };
}

function serveConnection(ws: WebSocket, conn: string, handler: RequestHandler, key: Uint8Array): void {
  let expected = 0;
  ws.on('message', (data: Buffer, isBinary: boolean) => {
    const frame = isBinary ? decodeRequest(key, conn, data) : undefined;
    // Out of order, replayed or forged: nothing on this connection can be trusted any more.
    if (!frame || frame.seq !== expected) return ws.close(1008, 'unauthenticated frame');
    expected++;
    void (async () => {
      let status = 200;
      let body: Uint8Array;
      try {
        body = await handler(frame.method, frame.body);
      } catch (e) {
        ({ status, body } = errorReply(e as Error & { code?: string }));
      }
      if (ws.readyState === WebSocket.OPEN) ws.send(encodeReply(key, conn, frame.seq, status, body));
    })();
  });
}

/** One open socket: its nonce binds every frame, and its requests are numbered from 0. */
interface Connection {
  ws: WebSocket;
  conn: string;
  seq: number;
}

interface Pending {
  resolve(body: Uint8Array): void;
  reject(e: Error): void;
  timer: NodeJS.Timeout;
}

export interface StreamClientOptions {
  /** The key server's certificate fingerprint, for a wss URL. */
  fingerprint?: string;
  peer: string;
  callTimeoutMs: number;
  maxPayload: number;
}

/** The compute server's end: one connection, opened on first use and again after it drops. */
export class StreamClient {
  private socket?: Promise<Connection>;
  private readonly pending = new Map<number, Pending>();
  /** Set when the far side has no stream (an older key server): the caller uses HTTP. */
  unsupported = false;

  constructor(
    private readonly baseUrl: string,
    private readonly hmacKey: Uint8Array,
    private readonly o: StreamClientOptions,
  ) {}

  private unreachable(why: string): RemoteError {
    return new RemoteError('ERR_UNREACHABLE', `${this.o.peer} at ${this.baseUrl} is unreachable (${why})`, 503);
  }

  private open(): Promise<Connection> {
    const ts = String(Date.now());
    const conn = randomBytes(16).toString('hex');
    const url = `${this.baseUrl.replace(/^http/, 'ws')}${STREAM_PATH}`;
    const secure = url.startsWith('wss:');
    const pin = this.o.fingerprint ? normaliseFingerprint(this.o.fingerprint) : undefined;
    const ws = new WebSocket(url, {
      headers: { 'x-cm-timestamp': ts, 'x-cm-nonce': conn, 'x-cm-head': upgradeMac(this.hmacKey, ts, conn) },
      maxPayload: this.o.maxPayload,
      perMessageDeflate: false,
      handshakeTimeout: 30_000,
      // No masking (a zero mask is skipped at both ends): masks protect browsers' intermediaries
      // from cache poisoning, while here every frame is HMAC-authenticated, and an XOR pass over
      // megabytes a round costs milliseconds.
      generateMask: (mask: Buffer) => void mask.fill(0),
      // Self-signed certificates are normal here: the pin below is what is checked.
      ...(secure ? { rejectUnauthorized: false, createConnection: (opts: object) => tlsConnect({ ...opts, rejectUnauthorized: false }) } : {}),
    });
    ws.binaryType = 'nodebuffer';
    return new Promise((resolve, reject) => {
      ws.once('open', () => {
        if (secure) {
          const seen = normaliseFingerprint((ws as unknown as { _socket: TLSSocket })._socket.getPeerCertificate().fingerprint256 ?? '');
          if (seen !== pin) {
            ws.terminate();
            return reject(
              new CertificatePinError(
                `${this.o.peer} at ${this.baseUrl} presents TLS certificate ${seen.slice(0, 32)}..., not the one pinned: refusing`,
              ),
            );
          }
        }
        ws.on('message', (data: Buffer) => this.onReply(ws, conn, data));
        ws.on('close', () => this.drop(ws, 'the connection closed'));
        resolve({ ws, conn, seq: 0 });
      });
      ws.once('unexpected-response', (_req, res) => {
        ws.terminate();
        if (res.statusCode === 404) {
          this.unsupported = true;
          return reject(new StreamUnsupported());
        }
        if (res.statusCode === 401)
          return reject(
            new RemoteError(
              'ERR_CHANNEL_KEY',
              `${this.o.peer} at ${this.baseUrl} refused this compute server's signature: the two servers' channel keys differ, or their clocks are minutes apart`,
              502,
            ),
          );
        reject(this.unreachable(`unsigned ${res.statusCode} to the stream upgrade`));
      });
      ws.once('error', (e: Error & { code?: string }) => reject(this.unreachable(e.code ?? e.message)));
    });
  }

  private onReply(ws: WebSocket, conn: string, data: Buffer): void {
    const r = decodeReply(this.hmacKey, conn, data);
    const p = r && this.pending.get(r.seq);
    if (!r || !p) {
      ws.terminate();
      return this.drop(ws, 'a reply that does not verify');
    }
    this.pending.delete(r.seq);
    clearTimeout(p.timer);
    if (r.status === 200) return p.resolve(r.body);
    let info: { code?: string; message?: string; detail?: { index?: number } } = {};
    try {
      info = JSON.parse(r.body.toString('utf8'));
    } catch {
      // not JSON: keep the status alone
    }
    p.reject(new RemoteError(info.code ?? 'ERR_REMOTE', info.message ?? `${this.o.peer} answered ${r.status}`, r.status, info.detail));
  }

  /** Fails every call pending on a connection that is gone; the next call opens a new one. */
  private drop(ws: WebSocket, why: string): void {
    void this.socket?.then(
      (s) => {
        if (s.ws === ws) this.socket = undefined;
      },
      () => undefined,
    );
    for (const [seq, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(this.unreachable(why));
      this.pending.delete(seq);
    }
  }

  async call(method: string, body: Uint8Array): Promise<Uint8Array> {
    this.socket ??= this.open();
    let s: Connection;
    try {
      s = await this.socket;
    } catch (e) {
      this.socket = undefined;
      throw e;
    }
    const seq = s.seq++;
    return new Promise<Uint8Array>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(seq);
        reject(this.unreachable(`no answer within ${this.o.callTimeoutMs / 1000} s`));
      }, this.o.callTimeoutMs);
      this.pending.set(seq, { resolve, reject, timer });
      s.ws.send(encodeRequest(this.hmacKey, s.conn, seq, method, body), (err) => {
        if (err) this.drop(s.ws, err.message);
      });
    });
  }

  close(): void {
    void this.socket?.then(
      (s) => s.ws.close(),
      () => undefined,
    );
    this.socket = undefined;
  }
}

/** The key server answered the upgrade with 404: it has no stream; use HTTP. */
export class StreamUnsupported extends CiphermineError {
  constructor() {
    super('ERR_UNREACHABLE', 'the key server has no stream endpoint');
  }
}
