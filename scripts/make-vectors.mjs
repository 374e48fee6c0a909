#!/usr/bin/env node
/**
 * Writes test/fixtures/vectors.json: fixed inputs and the outputs the CURRENT code produces for every
 * stored or wire format (serialised BCP objects, ciphertexts under fixed randomness, KMS form, X25519 +
 * HKDF keys, AES-GCM envelopes and upload contexts, HMAC tags, protocol messages, the HTTP transport's
 * MACs, fixed-point encoding). test/crypto/vectors.test.ts recomputes all of it and compares byte for byte.
 *
 * The vectors are a regression net: once committed they must NOT be regenerated to make a failing test
 * pass, since a changed vector means data stored by an earlier version no longer opens. A deliberate
 * format change needs a new format version (and a migration), then new vectors. Hence --force.
 *
 * Usage: npm run build && node scripts/make-vectors.mjs [--force]
 */
import { createHash, createHmac, createPublicKey } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = new URL('..', import.meta.url);
const dist = (p) => new URL(`dist/src/${p}`, root).href;
const out = fileURLToPath(new URL('test/fixtures/vectors.json', root));
if (existsSync(out) && !process.argv.includes('--force')) {
  console.error(`${out} exists; vectors are a regression net and are not regenerated without --force`);
  process.exit(1);
}

const crypto = await import(dist('crypto/index.js'));
const { KmsEncryptor, KmsRerandomizer, kmsBase } = await import(dist('crypto/kms-paillier.js'));
const { sealWithNonce } = await import(dist('crypto/envelope.js'));
const { encodeMessage, ProtocolError } = await import(dist('protocols/messages.js'));
const { serveHttp } = await import(dist('protocols/http-transport.js'));
const {
  BcpParams,
  BcpPublicKey,
  BcpSecretKey,
  BcpMasterKey,
  add,
  scalarMultiply,
  addPlain,
  Ciphertext,
  serializeParams,
  serializePublicKey,
  serializeSecretKey,
  serializeMasterKey,
  serializeCiphertext,
  serializeCiphertexts,
  importAgreementPrivateKey,
  exportAgreementPrivateKey,
  deriveEnvelopeKey,
  uploadContext,
  ciphertextTag,
  FixedPointCodec,
  backend,
} = crypto;

const hex = (x) => x.toString(16);
const bytesHex = (b) => Buffer.from(b).toString('hex');

/** A fixed "random" value below `bound`: SHAKE256 of a label, 128 bits longer than the bound, reduced. */
function derive(label, bound) {
  const len = Math.ceil(bound.toString(2).length / 8) + 16;
  const d = createHash('shake256', { outputLength: len }).update(`ciphermine test vector ${label}`).digest('hex');
  return BigInt('0x' + d) % bound;
}

// ---- BCP over the 512-bit fixture parameters ------------------------------------------------------
const fx = JSON.parse(readFileSync(new URL('test/fixtures/bcp-params.json', root), 'utf8'))['512'];
const [N, g, p, q] = [fx.N, fx.g, fx.p, fx.q].map((x) => BigInt('0x' + x));
const params = new BcpParams(N, g);
const a = 1n + derive('bcp secret key a', params.N2 / 4n - 1n);
const h = backend().modPow(g, a, params.N2);
const pk = new BcpPublicKey(params, h);
const sk = BcpSecretKey.checked(pk, a);
const msk = new BcpMasterKey(params, p, q);

const half = N / 2n;
const messages = [0n, 1n, -1n, 42n, -123456789n, 2n ** 63n, half, -(half - 1n), derive('bcp message', N) - (N - 1n) / 2n];
const encryptions = messages.map((m, i) => {
  const r = derive(`bcp r ${i}`, N);
  const c = pk.encryptWith(m, r);
  if (sk.decrypt(c) !== m || msk.decrypt(c) !== m) throw new Error('round trip failed');
  return { m: m.toString(), r: hex(r), A: hex(c.A), B: hex(c.B), serialized: bytesHex(serializeCiphertext(c)) };
});
const cts = encryptions.map((e) => new Ciphertext(pk, BigInt('0x' + e.A), BigInt('0x' + e.B)));
const homomorphic = {
  add: { of: [3, 4], ...pairOf(add(cts[3], cts[4])), m: (messages[3] + messages[4]).toString() },
  scalarMultiply: { of: 3, k: '-3', ...pairOf(scalarMultiply(cts[3], -3n)), m: (messages[3] * -3n).toString() },
  addPlain: { of: 4, k: '1000', ...pairOf(addPlain(cts[4], 1000n)), m: (messages[4] + 1000n).toString() },
};
function pairOf(c) {
  return { A: hex(c.A), B: hex(c.B) };
}

// ---- KMS form -------------------------------------------------------------------------------------
const kmsEnc = new KmsEncryptor(N, p, q);
const kms = {
  hN: hex(kmsBase(N)),
  encryptions: [0n, 7n, -5n, half].map((m, i) => {
    const rho = derive(`kms rho ${i}`, N);
    return { m: m.toString(), rho: hex(rho), c: hex(kmsEnc.encryptWith(m, rho)) };
  }),
  rerandomize: (() => {
    const rho = derive('kms rho prime', N << 40n);
    return { rho: hex(rho), factor: hex(new KmsRerandomizer(N).factorWith(rho)) };
  })(),
};

// ---- X25519 + HKDF, envelope, upload context, HMAC tag -------------------------------------------
// RFC 7748 section 6.1's key pairs, so the raw X25519 step is checked against the RFC too.
const PKCS8_X25519 = '302e020100300506032b656e04220420';
const ownerPriv = importAgreementPrivateKey(Buffer.from(PKCS8_X25519 + '77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a', 'hex'));
const serverPriv = importAgreementPrivateKey(Buffer.from(PKCS8_X25519 + '5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb', 'hex'));
const pubOf = (k) => createPublicKey(k).export({ format: 'jwk' }).x;
const ctx = { ownerId: 'hospital-a', datasetId: 'ds-0001' };
const aesKey = deriveEnvelopeKey(ownerPriv, pubOf(serverPriv), ctx);
const tagKey = deriveEnvelopeKey(ownerPriv, pubOf(serverPriv), ctx, 'hmac-tag');
const keyAgreement = {
  owner: { pkcs8: bytesHex(exportAgreementPrivateKey(ownerPriv)), publicKey: pubOf(ownerPriv) },
  server: { pkcs8: bytesHex(exportAgreementPrivateKey(serverPriv)), publicKey: pubOf(serverPriv) },
  sharedSecret: '4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742',
  context: ctx,
  hkdfSalt: 'ciphermine-x25519-hkdf-salt-v1',
  aesInfo: `ciphermine/v1/aes-envelope/owner=${ctx.ownerId}/dataset=${ctx.datasetId}`,
  hmacInfo: `ciphermine/v1/hmac-tag/owner=${ctx.ownerId}/dataset=${ctx.datasetId}`,
  aesKey: bytesHex(aesKey),
  hmacKey: bytesHex(tagKey),
};

// One upload chunk as a data owner makes it: a batch of 3 ciphertexts, sealed, tagged.
const chunk = { datasetId: ctx.datasetId, idx: 2, rows: 3 };
const context = uploadContext(chunk.datasetId, chunk.idx, chunk.rows);
const batch = serializeCiphertexts(pk, cts.slice(0, 3));
const nonce = Buffer.from('000102030405060708090a0b', 'hex');
const upload = {
  ...chunk,
  context,
  batchOf: [0, 1, 2],
  nonce: bytesHex(nonce),
  envelope: bytesHex(sealWithNonce(aesKey, batch, context, nonce)),
  tag: ciphertextTag(tagKey, context, batch),
};
const envelopeShort = {
  key: '00'.repeat(16) + 'ff'.repeat(16),
  nonce: 'cafebabefacedbaddecaf888',
  aad: 'batch-0',
  plaintext: bytesHex(Buffer.from('ciphertext batch bytes')),
};
envelopeShort.envelope = bytesHex(
  sealWithNonce(
    Buffer.from(envelopeShort.key, 'hex'),
    Buffer.from(envelopeShort.plaintext, 'hex'),
    envelopeShort.aad,
    Buffer.from(envelopeShort.nonce, 'hex'),
  ),
);
const emptyEnvelope = { ...envelopeShort, plaintext: '', aad: '' };
emptyEnvelope.envelope = bytesHex(sealWithNonce(Buffer.from(emptyEnvelope.key, 'hex'), Buffer.alloc(0), '', Buffer.from(emptyEnvelope.nonce, 'hex')));

// ---- protocol messages --------------------------------------------------------------------------
const eb = params.elementBytes;
const msgs = [
  {
    name: 'request with a key, 2 ciphertexts',
    header: { key: pk.fingerprint, count: 2, slotBits: 40 },
    elements: [cts[0].A, cts[0].B, cts[1].A, cts[1].B],
  },
  { name: 'reply (encodeReply layout)', header: { count: 1 }, elements: [cts[2].A, cts[2].B] },
  { name: 'no elements', header: { key: pk.fingerprint, share: 'job-1' }, elements: [] },
  { name: 'small elements are left-padded', header: { count: 1 }, elements: [1n, 2n] },
].map((x) => ({
  name: x.name,
  header: x.header,
  elementBytes: eb,
  elements: x.elements.map(hex),
  encoded: bytesHex(encodeMessage(x.header, x.elements, eb)),
}));

// ---- HTTP transport MACs ------------------------------------------------------------------------
// The request MAC has a timestamp, so its vector is computed by the documented formula here; the test
// checks against a live server that the code accepts exactly that formula. Reply MACs carry no
// timestamp and are taken from a live server.
const sha = (b) => createHash('sha256').update(b).digest();
const macOf = (key, ...parts) => {
  const m = createHmac('sha256', key);
  for (const x of parts) m.update(x).update('\n');
  return m.digest('hex');
};
const hmacKey = Buffer.from('http transport key'.padEnd(32, '.'));
const http = {
  hmacKey: bytesHex(hmacKey),
  method: 'square',
  timestamp: '1700000000000',
  nonce: '0123456789abcdef0123456789abcdef',
  requestBody: bytesHex(Buffer.from('request body bytes')),
  replyBody: bytesHex(Buffer.from('reply body bytes')),
  errorMessage: 'a bad header',
};
http.requestSignature = macOf(hmacKey, 'request', http.method, http.timestamp, http.nonce, sha(Buffer.from(http.requestBody, 'hex')));
http.headSignature = macOf(hmacKey, 'head', http.method, http.timestamp, http.nonce, String(Buffer.from(http.requestBody, 'hex').length));
{
  const server = await serveHttp(
    async (method) => {
      if (method === 'fail') throw new ProtocolError(http.errorMessage);
      return Buffer.from(http.replyBody, 'hex');
    },
    { hmacKey },
  );
  const call = async (method, nonce) => {
    const ts = String(Date.now());
    const body = Buffer.from(http.requestBody, 'hex');
    const res = await fetch(`${server.url}/rpc/${method}`, {
      method: 'POST',
      headers: {
        'content-type': 'application/octet-stream',
        'x-cm-timestamp': ts,
        'x-cm-nonce': nonce,
        'x-cm-head': macOf(hmacKey, 'head', method, ts, nonce, String(body.length)),
        'x-cm-signature': macOf(hmacKey, 'request', method, ts, nonce, sha(body)),
      },
      body,
    });
    return { status: res.status, signature: res.headers.get('x-cm-signature'), body: Buffer.from(await res.arrayBuffer()) };
  };
  const ok = await call(http.method, http.nonce);
  if (ok.status !== 200 || bytesHex(ok.body) !== http.replyBody) throw new Error('live call failed');
  http.replySignature = ok.signature;
  const errNonce = 'fedcba9876543210fedcba9876543210';
  const bad = await call('fail', errNonce);
  http.error = { nonce: errNonce, status: bad.status, body: bad.body.toString('utf8'), signature: bad.signature };
  await server.close();
}

// ---- fixed-point encoding -----------------------------------------------------------------------
const codecs = [
  { spec: {}, values: [0, 1, -1, 0.5, -0.5, 3.14159, -2.71828, 1e-6, 0.1 + 0.2, 1.5 / 65536, -1.5 / 65536, 2.5 / 65536, 2 ** 20, -(2 ** 20)] },
  { spec: { fractionBits: 8, maxAbs: 1000 }, values: [0, 1, -1, 0.001, 0.5 / 256, -0.5 / 256, 999.99, -1000, 12.34] },
  { spec: { fractionBits: 0, maxAbs: 100 }, values: [0, 1, -1, 0.5, -0.5, 1.5, 99.6] },
].map(({ spec, values }) => {
  const c = new FixedPointCodec(spec);
  return {
    spec,
    json: c.toJSON(),
    maxEncoded: c.maxEncoded.toString(),
    encoded: values.map((v) => ({ v, x: c.encode(v).toString(), decoded: c.decode(c.encode(v)) })),
  };
});

const vectors = {
  comment:
    'Regression vectors for stored and wire formats (scripts/make-vectors.mjs, checked by test/crypto/vectors.test.ts). ' +
    'Never regenerate to make a test pass: a changed vector means stored data no longer opens. Big integers are hex, signed plaintexts decimal.',
  bcp: {
    params: {
      N: hex(N),
      g: hex(g),
      p: hex(p),
      q: hex(q),
      elementBytes: eb,
      fingerprint: params.fingerprint,
      serialized: bytesHex(serializeParams(params)),
    },
    keys: {
      a: hex(a),
      h: hex(h),
      fingerprint: pk.fingerprint,
      serializedPublicKey: bytesHex(serializePublicKey(pk)),
      serializedSecretKey: bytesHex(serializeSecretKey(sk)),
      serializedMasterKey: bytesHex(serializeMasterKey(msk)),
    },
    encryptions,
    batch: { of: encryptions.map((_, i) => i), serialized: bytesHex(serializeCiphertexts(pk, cts)) },
    emptyBatch: bytesHex(serializeCiphertexts(pk, [])),
    homomorphic,
  },
  kms,
  keyAgreement,
  envelope: { upload, short: envelopeShort, empty: emptyEnvelope },
  messages: msgs,
  http,
  fixedPoint: codecs,
};
writeFileSync(out, JSON.stringify(vectors, null, 1) + '\n');
console.log(`wrote ${out}`);
