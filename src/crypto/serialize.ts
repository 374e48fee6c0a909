/**
 * Versioned binary forms of BCP objects: "CMN" magic, a version byte, a kind byte, then
 * length-prefixed big-endian fields. Ciphertexts carry their key's fingerprint, so one under another
 * key or other parameters is refused on arrival rather than decrypted to garbage.
 */
import { BcpParams } from './bcp-params.js';
import { BcpPublicKey, BcpSecretKey } from './bcp-keys.js';
import { BcpMasterKey } from './bcp-master.js';
import { Ciphertext } from './ciphertext.js';
import { byteLength, fromBytes, toBytes } from './bigint.js';
import { InvalidCiphertextError, KeyMismatchError, SerializationError } from './errors.js';

const MAGIC = Buffer.from('CMN');
export const FORMAT_VERSION = 1;
/** Largest field accepted: the byte length of N^2 at 8192-bit N. */
const MAX_FIELD_BYTES = 2048;
const FINGERPRINT_BYTES = 16;

export enum Kind {
  Params = 1,
  PublicKey = 2,
  SecretKey = 3,
  MasterKey = 4,
  Ciphertext = 5,
  CiphertextBatch = 6,
}

function header(kind: Kind): Buffer {
  return Buffer.concat([MAGIC, Buffer.from([FORMAT_VERSION, kind])]);
}

function field(x: bigint): Buffer {
  const bytes = toBytes(x, byteLength(x));
  const len = Buffer.alloc(4);
  len.writeUInt32BE(bytes.length);
  return Buffer.concat([len, bytes]);
}

/** Sequential reader that turns every overrun into a SerializationError. */
class Reader {
  private pos = 0;
  constructor(private readonly buf: Uint8Array) {}
  take(n: number): Buffer {
    if (n < 0 || this.pos + n > this.buf.length) throw new SerializationError('input is truncated');
    const out = Buffer.from(this.buf.buffer, this.buf.byteOffset + this.pos, n);
    this.pos += n;
    return out;
  }
  u32(): number {
    return this.take(4).readUInt32BE(0);
  }
  bigint(): bigint {
    const n = this.u32();
    if (n > MAX_FIELD_BYTES) throw new SerializationError(`field of ${n} bytes exceeds the ${MAX_FIELD_BYTES}-byte limit`);
    return fromBytes(this.take(n));
  }
  end(): void {
    if (this.pos !== this.buf.length) throw new SerializationError('trailing bytes after the object');
  }
}

function open(bytes: Uint8Array, kind: Kind): Reader {
  if (!(bytes instanceof Uint8Array)) throw new SerializationError('expected bytes');
  const r = new Reader(bytes);
  if (!r.take(3).equals(MAGIC)) throw new SerializationError('not a Ciphermine object (bad magic)');
  const [version, got] = r.take(2);
  if (version !== FORMAT_VERSION) throw new SerializationError(`unsupported format version ${version}`);
  if (got !== kind) throw new SerializationError(`expected a ${Kind[kind]}, got kind ${got}`);
  return r;
}

function wrapParamErrors<T>(f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof SerializationError || e instanceof InvalidCiphertextError || e instanceof KeyMismatchError) throw e;
    throw new SerializationError(`invalid object: ${(e as Error).message}`);
  }
}

export function serializeParams(pp: BcpParams): Buffer {
  return Buffer.concat([header(Kind.Params), field(pp.N), field(pp.g)]);
}

function readParams(r: Reader): BcpParams {
  const N = r.bigint();
  const g = r.bigint();
  return new BcpParams(N, g);
}

export function deserializeParams(bytes: Uint8Array): BcpParams {
  return wrapParamErrors(() => {
    const r = open(bytes, Kind.Params);
    const pp = readParams(r);
    r.end();
    return pp;
  });
}

export function serializePublicKey(pk: BcpPublicKey): Buffer {
  return Buffer.concat([header(Kind.PublicKey), field(pk.params.N), field(pk.params.g), field(pk.h)]);
}

/** A public key; when `params` is given, the key must use exactly those parameters. */
export function deserializePublicKey(bytes: Uint8Array, params?: BcpParams): BcpPublicKey {
  return wrapParamErrors(() => {
    const r = open(bytes, Kind.PublicKey);
    const pp = readParams(r);
    const pk = new BcpPublicKey(params && params.equals(pp) ? params : pp, r.bigint());
    r.end();
    if (params && !params.equals(pp)) throw new KeyMismatchError('public key uses other public parameters');
    return pk;
  });
}

export function serializeSecretKey(sk: BcpSecretKey): Buffer {
  const pk = sk.publicKey;
  return Buffer.concat([header(Kind.SecretKey), field(pk.params.N), field(pk.params.g), field(pk.h), field(sk.a)]);
}

export function deserializeSecretKey(bytes: Uint8Array): BcpSecretKey {
  return wrapParamErrors(() => {
    const r = open(bytes, Kind.SecretKey);
    const pk = new BcpPublicKey(readParams(r), r.bigint());
    const a = r.bigint();
    r.end();
    return BcpSecretKey.checked(pk, a);
  });
}

export function serializeMasterKey(msk: BcpMasterKey): Buffer {
  const pp = msk.params;
  return Buffer.concat([header(Kind.MasterKey), field(pp.N), field(pp.g), field(msk.p), field(msk.q)]);
}

export function deserializeMasterKey(bytes: Uint8Array): BcpMasterKey {
  return wrapParamErrors(() => {
    const r = open(bytes, Kind.MasterKey);
    const pp = readParams(r);
    const p = r.bigint();
    const q = r.bigint();
    r.end();
    return new BcpMasterKey(pp, p, q);
  });
}

function checkFingerprint(r: Reader, pk: BcpPublicKey): void {
  const fp = r.take(FINGERPRINT_BYTES).toString('hex');
  if (fp !== pk.fingerprint) throw new KeyMismatchError('ciphertext is under another public key or other parameters');
}

function element(r: Reader, pk: BcpPublicKey): bigint {
  return fromBytes(r.take(pk.params.elementBytes));
}

function pair(c: Ciphertext): Buffer[] {
  const n = c.publicKey.params.elementBytes;
  return [toBytes(c.A, n), toBytes(c.B, n)];
}

export function serializeCiphertext(c: Ciphertext): Buffer {
  return Buffer.concat([header(Kind.Ciphertext), Buffer.from(c.publicKey.fingerprint, 'hex'), ...pair(c)]);
}

export function deserializeCiphertext(bytes: Uint8Array, pk: BcpPublicKey): Ciphertext {
  const r = open(bytes, Kind.Ciphertext);
  checkFingerprint(r, pk);
  const A = element(r, pk);
  const B = element(r, pk);
  r.end();
  return Ciphertext.checked(pk, A, B);
}

/** A batch under one key: one header, then fixed-size (A, B) pairs. */
export function serializeCiphertexts(pk: BcpPublicKey, cs: readonly Ciphertext[]): Buffer {
  const count = Buffer.alloc(4);
  count.writeUInt32BE(cs.length);
  const parts = [header(Kind.CiphertextBatch), Buffer.from(pk.fingerprint, 'hex'), count];
  for (const c of cs) {
    if (!c.publicKey.equals(pk)) throw new KeyMismatchError('batch mixes public keys');
    parts.push(...pair(c));
  }
  return Buffer.concat(parts);
}

export function deserializeCiphertexts(bytes: Uint8Array, pk: BcpPublicKey, maxCount = 1 << 20): Ciphertext[] {
  const r = open(bytes, Kind.CiphertextBatch);
  checkFingerprint(r, pk);
  const n = r.u32();
  if (n > maxCount) throw new SerializationError(`batch of ${n} ciphertexts exceeds the limit of ${maxCount}`);
  const expected = 3 + 2 + FINGERPRINT_BYTES + 4 + n * 2 * pk.params.elementBytes;
  if (bytes.length < expected) throw new SerializationError('input is truncated');
  if (bytes.length > expected) throw new SerializationError('trailing bytes after the object');
  const out: Ciphertext[] = [];
  for (let i = 0; i < n; i++) out.push(Ciphertext.checked(pk, element(r, pk), element(r, pk)));
  r.end();
  return out;
}
