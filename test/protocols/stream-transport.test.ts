/**
 * The servers' persistent stream for the engine's rounds (protocols/stream-transport.ts): the
 * same answers and errors as the HTTP transport, and the attacks a network attacker would try
 * (a replayed connection, a forged, replayed or reordered frame, a substituted certificate) fail.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { CiphermineError } from '../../src/crypto/errors.js';
import { makeSelfSigned } from '../../src/crypto/tls.js';
import { HttpTransport, serveHttp, type RunningServer } from '../../src/protocols/http-transport.js';
import { STREAM_PATH, upgradeMac } from '../../src/protocols/stream-transport.js';
import { RemoteError } from '../../src/protocols/transport.js';

const key = randomBytes(32);
const fast = { latencySensitive: true };

/** Echoes, fails on request, and counts the calls that came over HTTP rather than the stream. */
function handler(counts: { http: number }) {
  return async (method: string, body: Uint8Array): Promise<Uint8Array> => {
    if (method === 'fail') throw new CiphermineError('ERR_BAD_REQUEST', `refused: ${Buffer.from(body).toString()}`);
    if (method === 'crash') throw new Error('a secret detail');
    if (method === 'slow') await new Promise((r) => setTimeout(r, 50));
    return Buffer.concat([Buffer.from(`${method}:`), body]);
  };
}

function rawUpgrade(url: string, headers: Record<string, string>): Promise<{ ws?: WebSocket; status?: number }> {
  const ws = new WebSocket(`${url.replace(/^http/, 'ws')}${STREAM_PATH}`, { headers });
  return new Promise((resolve) => {
    ws.once('open', () => resolve({ ws }));
    ws.once('unexpected-response', (_q, res) => resolve({ status: res.statusCode }));
    ws.once('error', () => resolve({}));
  });
}

const signedHeaders = (k: Uint8Array, ts = String(Date.now()), nonce = randomBytes(16).toString('hex')) => ({
  'x-cm-timestamp': ts,
  'x-cm-nonce': nonce,
  'x-cm-head': upgradeMac(k, ts, nonce),
});

const closed = (ws: WebSocket) => new Promise<number>((r) => ws.once('close', (code) => r(code)));

describe('the servers’ stream transport', () => {
  let server: RunningServer;
  const counts = { http: 0 };
  before(async () => {
    server = await serveHttp(handler(counts), { hmacKey: key, port: 0 });
    server.app.server.on('request', () => void counts.http++);
  });
  after(() => server.close());

  it('carries latency-sensitive calls, concurrently, with the same answers and typed errors as HTTP', async () => {
    const t = new HttpTransport(server.url, key);
    const before = counts.http;
    const answers = await Promise.all(['a', 'slow', 'b'].map((m) => t.call(m, Buffer.from('x'), fast)));
    assert.deepEqual(
      answers.map((a) => Buffer.from(a).toString()),
      ['a:x', 'slow:x', 'b:x'],
    );
    assert.equal(counts.http, before, 'no HTTP request');
    await assert.rejects(
      t.call('fail', Buffer.from('why'), fast),
      (e: unknown) => e instanceof RemoteError && e.code === 'ERR_BAD_REQUEST' && e.status === 400 && /refused: why/.test(e.message),
    );
    // A 5xx keeps its detail in the server's log, as over HTTP.
    await assert.rejects(
      t.call('crash', Buffer.alloc(0), fast),
      (e: unknown) => e instanceof RemoteError && e.status === 500 && !/secret/.test(e.message),
    );
    // Other calls still go over HTTP, with the same answers.
    assert.equal(Buffer.from(await t.call('c', Buffer.from('y'))).toString(), 'c:y');
    assert.equal(counts.http, before + 1);
    await t.close();
  });

  it('a wrong channel key is refused at the upgrade with the same error as over HTTP', async () => {
    const t = new HttpTransport(server.url, randomBytes(32));
    await assert.rejects(t.call('a', Buffer.alloc(0), fast), (e: unknown) => e instanceof RemoteError && e.code === 'ERR_CHANNEL_KEY');
    await t.close();
  });

  it('a replayed upgrade, a stale one, or one with a forged MAC is refused', async () => {
    const headers = signedHeaders(key);
    const first = await rawUpgrade(server.url, headers);
    assert.ok(first.ws, 'the first connection opens');
    first.ws!.close();
    assert.equal((await rawUpgrade(server.url, headers)).status, 401, 'the same nonce again');
    assert.equal((await rawUpgrade(server.url, signedHeaders(key, String(Date.now() - 10 * 60_000)))).status, 401, 'outside the window');
    assert.equal((await rawUpgrade(server.url, signedHeaders(randomBytes(32)))).status, 401, 'another key');
  });

  it('a forged, reordered or replayed frame closes the connection and is never answered', async () => {
    const frame = (conn: string, seq: number, method: string, body: Buffer, k: Uint8Array = key) => {
      const head = Buffer.alloc(5);
      head.writeUInt32BE(seq, 0);
      head.writeUInt8(method.length, 4);
      const tag = createHmac('sha256', k).update(`ciphermine-stream/v1\n${conn}\nrequest\n${seq}\n${method}\n`).update(body).digest();
      return Buffer.concat([head, Buffer.from(method), body, tag]);
    };
    for (const [what, make] of [
      ['forged tag', (conn: string) => [frame(conn, 0, 'a', Buffer.from('x'), randomBytes(32))]],
      ['out of order', (conn: string) => [frame(conn, 1, 'a', Buffer.from('x'))]],
      ['replayed', (conn: string) => [frame(conn, 0, 'a', Buffer.from('x')), frame(conn, 0, 'a', Buffer.from('x'))]],
      ['bound to another connection', () => [frame(randomBytes(16).toString('hex'), 0, 'a', Buffer.from('x'))]],
      ['truncated', () => [Buffer.from([0, 0, 0])]],
    ] as const) {
      const headers = signedHeaders(key);
      const { ws } = await rawUpgrade(server.url, headers);
      const replies: Buffer[] = [];
      ws!.on('message', (d: Buffer) => replies.push(d));
      const code = closed(ws!);
      for (const f of make(headers['x-cm-nonce'])) ws!.send(f);
      assert.equal(await code, 1006, what); // terminated, not closed politely: nothing behind it runs
      // Nothing is answered once a bad frame arrives (a replayed copy even drops the genuine call's answer).
      assert.equal(replies.length, 0, what);
    }
  });

  it('an outsider cannot crash the key server or hold its sockets: a reset during the refusal, a socket left open, an oversized frame', async () => {
    const { connect } = await import('node:net');
    const { port } = new URL(server.url);
    const upgrade = `GET ${STREAM_PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\n\r\n`;
    // Sends an unsigned upgrade and resets the connection at once, twenty times.
    for (let i = 0; i < 20; i++) {
      const s = connect(Number(port), '127.0.0.1');
      s.on('error', () => undefined);
      await new Promise((r) => s.once('connect', r));
      s.write(upgrade);
      s.resetAndDestroy();
    }
    // Leaves one open after its refusal: the key server closes it itself.
    const lingering = connect(Number(port), '127.0.0.1');
    lingering.on('error', () => undefined);
    lingering.on('data', () => undefined);
    const gone = new Promise<void>((r) => lingering.once('close', () => r()));
    lingering.write(upgrade);
    await gone;
    // A frame beyond the body limit ends that connection only.
    const small = await serveHttp(handler({ http: 0 }), { hmacKey: key, port: 0, bodyLimit: 1000 });
    try {
      const { ws } = await rawUpgrade(small.url, signedHeaders(key));
      const code = closed(ws!);
      ws!.send(Buffer.alloc(5000));
      assert.equal(await code, 1009, 'message too big');
      const t = new HttpTransport(small.url, key);
      assert.equal(Buffer.from(await t.call('a', Buffer.from('ok'), fast)).toString(), 'a:ok');
      await t.close();
    } finally {
      await small.close();
    }
    // Still serving.
    const t = new HttpTransport(server.url, key);
    assert.equal(Buffer.from(await t.call('a', Buffer.from('still'), fast)).toString(), 'a:still');
    await t.close();
  });

  it('a key server that goes away fails pending calls as unreachable; the next call reconnects', async () => {
    const own = await serveHttp(handler({ http: 0 }), { hmacKey: key, port: 0 });
    const port = Number(new URL(own.url).port);
    const t = new HttpTransport(own.url, key);
    assert.equal(Buffer.from(await t.call('a', Buffer.alloc(0), fast)).toString(), 'a:');
    const pending = t.call('slow', Buffer.alloc(0), fast);
    await own.close();
    await assert.rejects(pending, (e: unknown) => e instanceof RemoteError && e.code === 'ERR_UNREACHABLE');
    await assert.rejects(t.call('a', Buffer.alloc(0), fast), (e: unknown) => e instanceof RemoteError && e.code === 'ERR_UNREACHABLE');
    const again = await serveHttp(handler({ http: 0 }), { hmacKey: key, port });
    assert.equal(Buffer.from(await t.call('b', Buffer.alloc(0), fast)).toString(), 'b:');
    await t.close();
    await again.close();
  });

  it('a key server without the stream is served over HTTP', async () => {
    const Fastify = (await import('fastify')).default;
    const old = Fastify();
    old.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
    let posts = 0;
    // Answers unsigned: the point is only that the call arrives as a POST.
    old.post('/rpc/:m', async (_req, reply) => (posts++, reply.status(503).send('')));
    const url = await old.listen({ host: '127.0.0.1', port: 0 });
    try {
      const t = new HttpTransport(url, key);
      await assert.rejects(t.call('a', Buffer.alloc(0), fast), (e: unknown) => e instanceof RemoteError && e.code === 'ERR_UNREACHABLE');
      assert.equal(posts, 1);
      await t.close();
    } finally {
      await old.close();
    }
  });

  it('over TLS the certificate is pinned: the right one carries the stream, another is refused', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cm-stream-'));
    const tls = await makeSelfSigned(['127.0.0.1'], join(dir, 'a.crt'), join(dir, 'a.key'));
    const other = await makeSelfSigned(['127.0.0.1'], join(dir, 'b.crt'), join(dir, 'b.key'));
    const secure = await serveHttp(handler({ http: 0 }), { hmacKey: key, port: 0, tls });
    try {
      const url = secure.url.replace('http:', 'https:');
      const good = new HttpTransport(url, key, { fingerprint: tls.fingerprint });
      assert.equal(Buffer.from(await good.call('a', Buffer.from('z'), fast)).toString(), 'a:z');
      await good.close();
      const bad = new HttpTransport(url, key, { fingerprint: other.fingerprint });
      await assert.rejects(bad.call('a', Buffer.alloc(0), fast), (e: unknown) => e instanceof CiphermineError && e.code === 'ERR_PIN_MISMATCH');
      await bad.close();
    } finally {
      await secure.close();
    }
  });
});
