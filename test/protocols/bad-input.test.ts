/** The key server's HTTP endpoints under bad input: a clear 4xx each time, and it keeps serving. */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { toBytes, keyGen, serializePublicKey } from '../../src/crypto/index.js';
import {
  encodeMessage,
  sct,
  HttpTransport,
  RemoteError,
  MAX_ELEMENTS,
  ShareStore,
  UnknownShareError,
  MAX_SHARED_VALUES,
} from '../../src/protocols/index.js';
import { harness, type Harness } from './harness.js';
import { serveHttp } from '../../src/protocols/http-transport.js';

function signed(key: Buffer, method: string, body: Buffer, ts = String(Date.now()), nonce = randomBytes(16).toString('hex')) {
  const mac = (...parts: (string | Buffer)[]) => {
    const h = createHmac('sha256', key);
    for (const p of parts) h.update(p).update('\n');
    return h.digest('hex');
  };
  return {
    'content-type': 'application/octet-stream',
    'x-cm-timestamp': ts,
    'x-cm-nonce': nonce,
    'x-cm-head': mac('head', method, ts, nonce, String(body.length)),
    'x-cm-signature': mac('request', method, ts, nonce, createHash('sha256').update(body).digest()),
  };
}

describe('key server endpoints refuse bad input and keep serving', () => {
  let h: Harness;
  let post: (method: string, body: Buffer, headers?: Record<string, string>) => Promise<{ status: number; json: { code?: string } }>;
  before(async () => {
    h = await harness('http');
    post = async (method, body, headers) => {
      const res = await fetch(`${h.server!.url}/rpc/${method}`, {
        method: 'POST',
        headers: headers ?? signed(h.hmacKey, method, body),
        body: body as unknown as BodyInit,
      });
      const text = await res.text();
      let json = {};
      try {
        json = JSON.parse(text);
      } catch {
        // binary reply
      }
      return { status: res.status, json };
    };
  });
  after(() => h.close());

  const still = async () => {
    const ms = [3n, -4n];
    const out = await sct(h.alice, h.core.createJobKey().encryptBatch(ms), h.target.publicKey);
    assert.deepEqual(h.target.decryptBatch(out), ms);
  };

  it('garbage bodies, bad headers, wrong lengths and out-of-range elements get 400', async () => {
    const pk = h.owner.publicKey;
    const n = pk.params.elementBytes;
    const hdr = { from: pk.fingerprint, to: h.target.publicKey.fingerprint, count: 1 };
    const c = pk.encrypt(1n);
    const cases: Array<[string, Buffer]> = [
      ['empty', Buffer.alloc(0)],
      ['garbage', Buffer.from('hello world, not a message')],
      ['header not JSON', Buffer.concat([Buffer.from([0, 0, 0, 3]), Buffer.from('{{{')])],
      ['header fails the schema', encodeMessage({ from: 'x', to: 1 }, [], n)],
      ['count mismatch', encodeMessage({ ...hdr, count: 2 }, [c.A, c.B], n)],
      ['half an element', Buffer.concat([encodeMessage(hdr, [c.A], n), Buffer.alloc(n / 2, 1)])],
      ['zero element', encodeMessage(hdr, [c.A, 0n], n)],
      ['element >= N^2', Buffer.concat([encodeMessage({ ...hdr }, [], n), toBytes(c.A, n), toBytes(pk.params.N2, n)])],
      ['negative count', encodeMessage({ ...hdr, count: -1 }, [], n)],
    ];
    for (const [name, body] of cases) {
      const r = await post('sct', body);
      assert.equal(r.status, 400, `${name}: ${r.status} ${JSON.stringify(r.json)}`);
      assert.match(String(r.json.code), /^ERR_/, name);
    }
    await still();
  });

  it('unknown keys and methods get 404; oversized batches 413', async () => {
    const pk = h.owner.publicKey;
    const n = pk.params.elementBytes;
    const stranger = keyGen(pk.params).publicKey;
    let r = await post('sct', encodeMessage({ from: stranger.fingerprint, to: pk.fingerprint, count: 0 }, [], n));
    assert.equal(r.status, 404);
    assert.equal(r.json.code, 'ERR_UNKNOWN_KEY');
    r = await post('decrypt-everything', Buffer.alloc(0));
    assert.equal(r.status, 404);
    const big = Buffer.concat([encodeMessage({ key: pk.fingerprint, count: MAX_ELEMENTS }, [], n), Buffer.alloc((MAX_ELEMENTS + 2) * n, 1)]);
    r = await post('square', big);
    assert.equal(r.status, 413);
    r = await post('register-key', Buffer.from('not a key'));
    assert.equal(r.status, 400);
    r = await post('register-key', serializePublicKey(keyGen((await import('../../src/crypto/index.js')).setup(256).params).publicKey));
    assert.equal(r.status, 400);
    await still();
  });

  it('wrong authentication and replays get 401', async () => {
    const body = Buffer.from('x');
    let r = await post('sct', body, { 'content-type': 'application/octet-stream' });
    assert.equal(r.status, 401);
    r = await post('sct', body, signed(randomBytes(32), 'sct', body));
    assert.equal(r.status, 401);
    r = await post('sct', body, signed(h.hmacKey, 'sct', body, String(Date.now() - 10 * 60_000)));
    assert.equal(r.status, 401, 'stale timestamp');
    const headers = signed(h.hmacKey, 'square', body);
    r = await post('square', body, headers);
    assert.equal(r.status, 400, 'first use passes authentication, then fails parsing');
    r = await post('square', body, headers);
    assert.equal(r.status, 401, 'replay');
    r = await post('sct', Buffer.from('y'), signed(h.hmacKey, 'sct', body));
    assert.equal(r.status, 401, 'body swapped under a valid signature');
    // A client with the wrong key is refused too, with a typed error that says what to fix.
    await assert.rejects(
      new HttpTransport(h.server!.url, randomBytes(32)).call('sct', body),
      (e: unknown) => e instanceof RemoteError && e.code === 'ERR_CHANNEL_KEY' && /channel keys differ/.test(e.message),
    );
    await still();
  });

  /** Claims 150 MB, sends 1 MB and waits: a server that buffered before refusing would never answer. */
  const refusedWhileSending = async (headers: Record<string, string>) => {
    const { request } = await import('node:http');
    const url = new URL(`${h.server!.url}/rpc/sct`);
    return new Promise<number>((resolve, reject) => {
      const req = request(
        { host: url.hostname, port: url.port, path: url.pathname, method: 'POST', headers: { ...headers, 'content-length': String(150 << 20) } },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
          req.destroy();
        },
      );
      req.on('error', (e) => (e.message.includes('socket hang up') || (e as { code?: string }).code === 'ECONNRESET' ? undefined : reject(e)));
      req.write(Buffer.alloc(1 << 20));
      setTimeout(() => reject(new Error('no answer before the body was complete')), 10_000).unref();
    });
  };

  it('a seen head replayed with a junk body is refused before the body is read', async () => {
    // A valid head for a 150 MB body, used once (refused for its signature when the body ends)...
    const headers = { ...signed(h.hmacKey, 'sct', Buffer.alloc(0)) };
    const ts = headers['x-cm-timestamp'];
    const nonce = headers['x-cm-nonce'];
    const mac = (...parts: string[]) => {
      const m = createHmac('sha256', h.hmacKey);
      for (const p of parts) m.update(p).update('\n');
      return m.digest('hex');
    };
    headers['x-cm-head'] = mac('head', 'sct', ts, nonce, String(150 << 20));
    const first = await post('sct', Buffer.alloc(8), { ...headers, 'content-length': '8' });
    assert.equal(first.status, 401, 'a head for another length');
    const once = { ...headers, 'x-cm-head': mac('head', 'sct', ts, nonce, '8') };
    assert.equal((await post('sct', Buffer.alloc(8), once)).status, 401, 'the body does not match its signature');
    // ...then the same head again: the nonce is spent, so the 401 comes before any body is buffered.
    assert.equal(await refusedWhileSending({ ...once, 'x-cm-head': mac('head', 'sct', ts, nonce, String(150 << 20)) }), 401);
    await still();
  });

  it('an unsigned error reply cannot be forged into a typed error', async () => {
    const Fastify = (await import('fastify')).default;
    const fake = Fastify();
    fake.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
    fake.post('/rpc/:m', async (req, reply) => {
      const m = (req.params as { m: string }).m;
      const status = m === 'a' ? 401 : m === 'c' ? 503 : 403;
      reply.status(status).send({ code: 'ERR_PRIVACY_BUDGET_EXCEEDED', message: 'forged', detail: { index: 3 } });
    });
    const url = await fake.listen({ host: '127.0.0.1', port: 0 });
    try {
      const t = new HttpTransport(url, randomBytes(32));
      await assert.rejects(
        t.call('a', Buffer.from('x')),
        (e: unknown) => e instanceof RemoteError && e.code === 'ERR_CHANNEL_KEY' && !/forged/.test(e.message),
      );
      await assert.rejects(
        t.call('b', Buffer.from('x')),
        (e: unknown) => e instanceof RemoteError && e.code === 'ERR_UNAUTHENTICATED' && e.detail === undefined,
      );
      // An unsigned 503 is what a closing key server (or a proxy before it) answers: the job waits.
      await assert.rejects(
        t.call('c', Buffer.from('x')),
        (e: unknown) => e instanceof RemoteError && e.code === 'ERR_UNREACHABLE' && !/forged/.test(e.message),
      );
    } finally {
      await fake.close();
    }
  });

  it('a key server URL in plain http off this machine is refused; redirects are not followed', async () => {
    assert.throws(() => new HttpTransport('http://10.1.2.3:7000', randomBytes(32)), /not on this machine and the URL is plain http/);
    assert.throws(() => new HttpTransport('http://[2001:db8::1]:7000', randomBytes(32)), /plain http/);
    new HttpTransport('http://[::1]:7000', randomBytes(32));
    const Fastify = (await import('fastify')).default;
    const redirecting = Fastify();
    redirecting.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
    redirecting.post('/rpc/:m', async (_req, reply) => reply.redirect('http://127.0.0.1:9/elsewhere', 307));
    const url = await redirecting.listen({ host: '127.0.0.1', port: 0 });
    try {
      await assert.rejects(
        new HttpTransport(url, randomBytes(32)).call('a', Buffer.from('x')),
        (e: unknown) => e instanceof RemoteError && e.code === 'ERR_UNREACHABLE',
      );
    } finally {
      await redirecting.close();
    }
  });

  it('an unauthenticated body is refused before it is read: the 401 comes while the sender is still sending', async () => {
    const { request } = await import('node:http');
    const url = new URL(`${h.server!.url}/rpc/sct`);
    const status = await new Promise<number>((resolve, reject) => {
      // Claims 150 MB, sends 1 MB and waits: a server that buffered before authenticating would never answer.
      const req = request(
        {
          host: url.hostname,
          port: url.port,
          path: url.pathname,
          method: 'POST',
          headers: { ...signed(randomBytes(32), 'sct', Buffer.alloc(0)), 'content-length': String(150 << 20) },
        },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
          req.destroy();
        },
      );
      req.on('error', (e) => (e.message.includes('socket hang up') || (e as { code?: string }).code === 'ECONNRESET' ? undefined : reject(e)));
      req.write(Buffer.alloc(1 << 20));
      setTimeout(() => reject(new Error('no answer before the body was complete')), 10_000).unref();
    });
    assert.equal(status, 401);
    await still();
  });

  it('a request signed before the key server (re)started is refused: no replay window reopens after a restart', async () => {
    const key = randomBytes(32);
    const server = await serveHttp(async () => Buffer.from('ok'), { hmacKey: key });
    try {
      const body = Buffer.from('x');
      const at = (ts: number) => fetch(`${server.url}/rpc/ping`, { method: 'POST', headers: signed(key, 'ping', body, String(ts)), body });
      const before = await at(Date.now() - 5_000);
      assert.equal(before.status, 401);
      assert.match(await before.text(), /signed before this server started/);
      assert.equal((await at(Date.now())).status, 200);
    } finally {
      await server.close();
    }
  });

  it('shares and shared distances: non-job keys, unknown shares, oversized and too-thin requests are refused', async () => {
    const owner = h.owner.publicKey.fingerprint;
    const job = h.core.createJobKey().fingerprint;
    const id = randomBytes(16).toString('hex');
    const send = (method: string, header: Record<string, unknown>) => post(method, encodeMessage(header, [], 64));
    // Shares only for job keys made by the key server.
    assert.equal((await send('share', { key: owner, share: id, offset: 0, count: 0, slotBits: 60 })).json.code, 'ERR_NOT_JOB_KEY');
    // A request whose packs do not match its header is refused before any share is looked up.
    const inner = { key: job, share: id, first: 0, count: 1, k: 2, m: 2, slotBits: 60 };
    const lost = await post('inner', encodeMessage(inner, [], h.owner.publicKey.params.elementBytes));
    assert.equal(lost.status, 400); // no packs for 2km values: refused before looking
    // Answers that could not fit one message, or unbounded work: refused from the header alone.
    const huge = await send('inner', { ...inner, count: MAX_ELEMENTS, k: 4 });
    assert.equal(huge.status, 400);
    // Slots narrower than the blinding carry nothing hidden: refused.
    assert.equal((await send('share', { key: job, share: id, offset: 0, count: 1, slotBits: 8 })).status, 400);
    assert.equal((await send('share-drop', { key: job, share: 'not-hex' })).status, 400);
    assert.equal((await send('share-drop', { key: job, share: id })).status, 200);
    await still();
  });
});

describe('the key server share store', () => {
  it('evicts the least recently used sets by value count, reports ranges and holes clearly', async () => {
    const store = new ShareStore();
    const a = 'a'.repeat(32),
      b = 'b'.repeat(32),
      c = 'c'.repeat(32);
    await store.put(a, 'k1', 0, Array(MAX_SHARED_VALUES / 2).fill(1n));
    await store.put(b, 'k1', 0, Array(MAX_SHARED_VALUES / 4).fill(2n));
    await store.get(a, 'k1', 0, 1); // a is now the most recently used
    await store.put(c, 'k1', 0, Array(MAX_SHARED_VALUES / 2).fill(3n)); // b goes, a stays
    await assert.rejects(store.get(b, 'k1', 0, 1), UnknownShareError);
    assert.deepEqual(await store.get(a, 'k1', 5, 2), [1n, 1n]);
    await assert.rejects(store.get(a, 'k2', 0, 1), UnknownShareError);
    await assert.rejects(store.get(a, 'k1', MAX_SHARED_VALUES / 2, 1), /outside the share/);
    await store.put(b, 'k1', 10, [7n]);
    await assert.rejects(store.get(b, 'k1', 0, 11), UnknownShareError); // holes: incomplete
    await assert.rejects(store.put(b, 'k1', MAX_SHARED_VALUES, [1n]), /out of bounds/);
    assert.ok((await store.drop(a)) && !(await store.drop(a)));
  });

  it('replicas on one backing: a part another replica wrote, or a whole set, is read from the backing', async () => {
    const rows = new Map<string, Array<{ key: string; offset: number; values: bigint[] }>>();
    const backing = {
      async putShare(id: string, key: string, offset: number, values: readonly bigint[]) {
        rows.set(id, [...(rows.get(id) ?? []).filter((r) => r.offset !== offset), { key, offset, values: [...values] }]);
      },
      async share(id: string) {
        return [...(rows.get(id) ?? [])].sort((x, y) => x.offset - y.offset);
      },
      async dropShare(id: string) {
        return rows.delete(id);
      },
    };
    const one = new ShareStore(backing);
    const two = new ShareStore(backing);
    const id = 'd'.repeat(32);
    await one.put(id, 'k1', 0, [1n, 2n]);
    await two.put(id, 'k1', 2, [3n, 4n]); // another replica converted the second part
    assert.deepEqual(await one.get(id, 'k1', 1, 3), [2n, 3n, 4n]);
    assert.deepEqual(await new ShareStore(backing).get(id, 'k1', 0, 4), [1n, 2n, 3n, 4n]);
    await assert.rejects(one.get(id, 'k1', 0, 5), /outside the share/);
    await assert.rejects(one.get('e'.repeat(32), 'k1', 0, 1), UnknownShareError);
    assert.ok(await two.drop(id));
    await assert.rejects(new ShareStore(backing).get(id, 'k1', 0, 1), UnknownShareError);
  });
});
