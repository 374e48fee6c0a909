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
 * - Over TLS the certificate is pinned by fingerprint on the TLS handshake, before a byte of the
 *   upgrade is sent (as undici's pinned connector does for HTTP).
 *
 * A connection that drops, or a peer that stops answering pings, fails the calls pending on it with
 * ERR_UNREACHABLE (the caller's outage path, as for a refused HTTP connection); the next call opens
 * a new one. Any other answer to the upgrade than 101 is not interpreted (it is unsigned): the call
 * is made over HTTP, whose signed answers decide (a key server without the stream is served there).
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { isIP } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import WebSocket, { WebSocketServer } from 'ws';
import { CiphermineError, httpStatusOf } from '../crypto/errors.js';
import { normaliseFingerprint } from '../crypto/tls.js';
import { CertificatePinError } from './pinned-tls.js';
import { RemoteError, type RequestHandler } from './transport.js';

export const STREAM_PATH = '/rpc-stream';
const TAG_BYTES = 32;
/** Frame bytes beyond the body: the largest header (5 + 255) and the tag. */
export const FRAME_OVERHEAD = 5 + 255 + TAG_BYTES;
/** ws keeps its limit as a signed 32-bit integer: beyond, it would wrap to "no limit". */
const MAX_WS_PAYLOAD = 2 ** 31 - 1;
/** Method names as the transports use them; anything else is refused before it is framed or served. */
const METHOD = /^[a-z][a-z0-9.-]{0,63}$/;
/** A silent peer is found within two of these (ping, then no pong). */
const HEARTBEAT_MS = 20_000;
/** A refused upgrade's socket is destroyed this long after the refusal, whatever the peer does. */
const REFUSAL_LINGER_MS = 1_000;

type Direction = 'request' | 'reply';

/** HMAC over the connection, the direction, the frame's exact header bytes and its body. */
function frameTag(key: Uint8Array, conn: string, dir: Direction, header: Uint8Array, body: Uint8Array): Buffer {
  return createHmac('sha256', key).update(`ciphermine-stream/v1\n${conn}\n${dir}\n`).update(header).update(body).digest();
}

export const upgradeMac = (key: Uint8Array, ts: string, nonce: string): string =>
  createHmac('sha256', key).update(`stream\n${ts}\n${nonce}\n`).digest('hex');

function sameTag(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

const payloadLimit = (bodyLimit: number) => Math.min(MAX_WS_PAYLOAD, bodyLimit + FRAME_OVERHEAD);

/** request: [u32 seq][u8 method length][method][body][tag]; reply: [u32 seq][u16 status][body][tag]. */
function encodeRequest(key: Uint8Array, conn: string, seq: number, method: string, body: Uint8Array): Buffer {
  const m = Buffer.from(method, 'ascii');
  const header = Buffer.alloc(5 + m.length);
  header.writeUInt32BE(seq, 0);
  header.writeUInt8(m.length, 4);
  m.copy(header, 5);
  return Buffer.concat([header, body, frameTag(key, conn, 'request', header, body)]);
}

function encodeReply(key: Uint8Array, conn: string, seq: number, status: number, body: Uint8Array): Buffer {
  const header = Buffer.alloc(6);
  header.writeUInt32BE(seq, 0);
  header.writeUInt16BE(status, 4);
  return Buffer.concat([header, body, frameTag(key, conn, 'reply', header, body)]);
}

function decodeRequest(key: Uint8Array, conn: string, frame: Buffer): { seq: number; method: string; body: Buffer } | undefined {
  if (frame.length < 5 + TAG_BYTES) return undefined;
  const len = frame.readUInt8(4);
  if (frame.length < 5 + len + TAG_BYTES) return undefined;
  const header = frame.subarray(0, 5 + len);
  const body = frame.subarray(5 + len, frame.length - TAG_BYTES);
  if (!sameTag(frame.subarray(frame.length - TAG_BYTES), frameTag(key, conn, 'request', header, body))) return undefined;
  const method = header.subarray(5).toString('latin1');
  return METHOD.test(method) ? { seq: frame.readUInt32BE(0), method, body } : undefined;
}

function decodeReply(key: Uint8Array, conn: string, frame: Buffer): { seq: number; status: number; body: Buffer } | undefined {
  if (frame.length < 6 + TAG_BYTES) return undefined;
  const header = frame.subarray(0, 6);
  const body = frame.subarray(6, frame.length - TAG_BYTES);
  if (!sameTag(frame.subarray(frame.length - TAG_BYTES), frameTag(key, conn, 'reply', header, body))) return undefined;
  return { seq: frame.readUInt32BE(0), status: frame.readUInt16BE(4), body };
}

/** The error answer, as the HTTP transport's error handler gives it: 5xx messages stay in the log. */
function errorReply(err: unknown): { status: number; body: Buffer } {
  const e = (err instanceof Error ? err : new Error(String(err))) as Error & { code?: string; detail?: unknown };
  const code = e.code ?? 'ERR_INTERNAL';
  const status = httpStatusOf(e);
  const message = status >= 500 && code !== 'ERR_SESSION_LOST' ? 'internal error' : e.message;
  return { status, body: Buffer.from(JSON.stringify({ code, message, detail: status < 500 ? e.detail : undefined })) };
}

export interface StreamServerOptions {
  hmacKey: Uint8Array;
  /** The largest request body, as the HTTP listener's body limit. */
  bodyLimit: number;
  /** The HTTP listener's replay guard: an upgrade's nonce is checked like a request's. */
  checkNonce(nonce: string, ts: number): void;
}

/** The key server's end: answers each authenticated frame with `handler`, concurrently, replies tagged by sequence. */
export function attachStreamServer(
  server: { on(event: 'upgrade', l: (req: IncomingMessage, socket: Duplex, head: Buffer) => void): unknown },
  handler: RequestHandler,
  o: StreamServerOptions,
): () => void {
  const wss = new WebSocketServer({ noServer: true, maxPayload: payloadLimit(o.bodyLimit), perMessageDeflate: false });
  server.on('upgrade', (req, socket, head) => {
    // Node takes the socket's own error listener away before 'upgrade': without this, a peer that
    // resets the connection while we answer would crash the key server.
    socket.on('error', () => socket.destroy());
    const refuse = (status: string) => {
      socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`, () => socket.destroy());
      // Upgrade sockets get no server timeouts: a peer that never closes its side is cut off here.
      setTimeout(() => socket.destroy(), REFUSAL_LINGER_MS).unref();
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
  (ws as unknown as { _socket?: { setKeepAlive?(on: boolean, ms: number): void } })._socket?.setKeepAlive?.(true, HEARTBEAT_MS);
  // An oversized or malformed frame is the peer's fault: end the connection, never the process.
  ws.on('error', () => ws.terminate());
  let expected = 0;
  let dead = false;
  ws.on('message', (data: Buffer, isBinary: boolean) => {
    if (dead) return;
    const frame = isBinary ? decodeRequest(key, conn, data) : undefined;
    // Forged, out of order or replayed: nothing on this connection can be trusted any more, and
    // nothing queued behind it may run.
    if (!frame || frame.seq !== expected) {
      dead = true;
      return ws.terminate();
    }
    expected++;
    void (async () => {
      let status = 200;
      let body: Uint8Array;
      try {
        body = Buffer.from(await handler(frame.method, frame.body));
      } catch (e) {
        ({ status, body } = errorReply(e));
      }
      if (!dead && ws.readyState === WebSocket.OPEN) ws.send(encodeReply(key, conn, frame.seq, status, body));
    })().catch(() => ws.terminate());
  });
}

interface Pending {
  resolve(body: Uint8Array): void;
  reject(e: Error): void;
  timer: NodeJS.Timeout;
}

/** One open socket: its nonce binds every frame, its requests are numbered from 0, its calls wait on it alone. */
interface Connection {
  ws: WebSocket;
  conn: string;
  seq: number;
  pending: Map<number, Pending>;
  heartbeat?: NodeJS.Timeout;
}

export interface StreamClientOptions {
  /** The key server's certificate fingerprint, for a wss URL. */
  fingerprint?: string;
  peer: string;
  callTimeoutMs: number;
  /** The largest reply body expected, as the HTTP transport's limit. */
  bodyLimit: number;
}

/** The compute server's end: one connection, opened on first use and again after it drops. */
export class StreamClient {
  private socket?: Promise<Connection>;
  /** Until then, calls go over HTTP: the key server did not take the upgrade (an older one has no stream). */
  private httpUntil = 0;

  constructor(
    private readonly baseUrl: string,
    private readonly hmacKey: Uint8Array,
    private readonly o: StreamClientOptions,
  ) {}

  /** Whether calls should take the stream now. */
  get usable(): boolean {
    return Date.now() >= this.httpUntil;
  }

  /** The upgrade was refused but HTTP answers: use HTTP for a while, then try the stream again. */
  preferHttp(ms = 60_000): void {
    this.httpUntil = Date.now() + ms;
  }

  private unreachable(why: string): RemoteError {
    return new RemoteError('ERR_UNREACHABLE', `${this.o.peer} at ${this.baseUrl} is unreachable (${why})`, 503);
  }

  /** A TLS socket whose certificate is the pinned one, checked before a byte is written. */
  private pinnedSocket(url: URL): Promise<TLSSocket> {
    const pin = normaliseFingerprint(this.o.fingerprint ?? '');
    const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
    return new Promise((resolve, reject) => {
      const socket = tlsConnect({ host, port: Number(url.port || 443), servername: isIP(host) ? undefined : host, rejectUnauthorized: false });
      socket.setTimeout(30_000, () => socket.destroy(new Error('TLS handshake timed out')));
      socket.once('error', (e: Error & { code?: string }) => reject(this.unreachable(e.code ?? e.message)));
      socket.once('secureConnect', () => {
        socket.setTimeout(0);
        const seen = normaliseFingerprint(socket.getPeerCertificate().fingerprint256 ?? '');
        if (seen === pin) return resolve(socket);
        socket.destroy();
        reject(
          new CertificatePinError(`${this.o.peer} at ${this.baseUrl} presents TLS certificate ${seen.slice(0, 32)}..., not the one pinned: refusing`),
        );
      });
    });
  }

  private async open(): Promise<Connection> {
    const ts = String(Date.now());
    const conn = randomBytes(16).toString('hex');
    const url = new URL(`${this.baseUrl.replace(/^http/, 'ws')}${STREAM_PATH}`);
    const tls = url.protocol === 'wss:' ? await this.pinnedSocket(url) : undefined;
    const ws = new WebSocket(url, {
      headers: { 'x-cm-timestamp': ts, 'x-cm-nonce': conn, 'x-cm-head': upgradeMac(this.hmacKey, ts, conn) },
      maxPayload: payloadLimit(this.o.bodyLimit),
      perMessageDeflate: false,
      handshakeTimeout: 30_000,
      // No masking (a zero mask is skipped at both ends): masks protect browsers' intermediaries
      // from cache poisoning, while here every frame is HMAC-authenticated, and an XOR pass over
      // megabytes a round costs milliseconds.
      generateMask: (mask: Buffer) => void mask.fill(0),
      ...(tls ? { createConnection: () => tls } : {}),
    });
    ws.binaryType = 'nodebuffer';
    return new Promise((resolve, reject) => {
      ws.once('open', () => {
        const c: Connection = { ws, conn, seq: 0, pending: new Map() };
        (ws as unknown as { _socket?: { setKeepAlive?(on: boolean, ms: number): void } })._socket?.setKeepAlive?.(true, HEARTBEAT_MS);
        ws.on('message', (data: Buffer) => this.onReply(c, data));
        ws.on('close', () => this.drop(c, 'the connection closed'));
        ws.on('error', () => ws.terminate());
        // A peer that vanished without a FIN is found by its missing pong, not after the call timeout.
        let alive = true;
        ws.on('pong', () => void (alive = true));
        c.heartbeat = setInterval(() => {
          if (!alive) return ws.terminate();
          alive = false;
          ws.ping();
        }, HEARTBEAT_MS).unref();
        resolve(c);
      });
      // Unsigned: its status is not interpreted; the caller makes the call over HTTP, whose signed answer decides.
      ws.once('unexpected-response', (_req, res) => {
        ws.terminate();
        reject(new StreamRefused(res.statusCode ?? 0));
      });
      ws.once('error', (e: Error & { code?: string }) => reject(this.unreachable(e.code ?? e.message)));
    });
  }

  private onReply(c: Connection, data: Buffer): void {
    const r = decodeReply(this.hmacKey, c.conn, data);
    const p = r && c.pending.get(r.seq);
    if (!r || !p) {
      c.ws.terminate();
      return this.drop(c, 'a reply that does not verify');
    }
    c.pending.delete(r.seq);
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
  private drop(c: Connection, why: string): void {
    clearInterval(c.heartbeat);
    void this.socket?.then(
      (s) => {
        if (s === c) this.socket = undefined;
      },
      () => undefined,
    );
    for (const [seq, p] of c.pending) {
      clearTimeout(p.timer);
      p.reject(this.unreachable(why));
      c.pending.delete(seq);
    }
  }

  async call(method: string, body: Uint8Array): Promise<Uint8Array> {
    if (!METHOD.test(method)) throw new RemoteError('ERR_BAD_REQUEST', `no such method: ${method.slice(0, 64)}`, 400);
    const opening = (this.socket ??= this.open());
    let c: Connection;
    try {
      c = await opening;
    } catch (e) {
      // Only the caller whose open failed clears it: a newer connection is someone else's.
      if (this.socket === opening) this.socket = undefined;
      throw e;
    }
    const seq = c.seq++;
    const frame = encodeRequest(this.hmacKey, c.conn, seq, method, body);
    return new Promise<Uint8Array>((resolve, reject) => {
      const timer = setTimeout(() => {
        // The connection cannot be trusted to be alive: end it and everything waiting on it.
        c.ws.terminate();
        this.drop(c, `no answer within ${this.o.callTimeoutMs / 1000} s`);
      }, this.o.callTimeoutMs);
      c.pending.set(seq, { resolve, reject, timer });
      c.ws.send(frame, (err) => {
        if (err) this.drop(c, err.message);
      });
    });
  }

  close(): void {
    void this.socket?.then(
      (c) => {
        clearInterval(c.heartbeat);
        c.ws.close();
      },
      () => undefined,
    );
    this.socket = undefined;
  }
}

/** The key server answered the upgrade with something other than 101 (unsigned): try HTTP. */
export class StreamRefused extends CiphermineError {
  constructor(readonly status: number) {
    super('ERR_UNREACHABLE', `the key server did not take the stream upgrade (unsigned ${status})`);
  }
}
