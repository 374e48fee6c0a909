/**
 * IKNP OT extension (Ishai, Kilian, Nissim and Petrank, CRYPTO 2003), semi-honest, random OTs:
 * 128 base OTs seed 128 PRG pairs; each batch of m OTs then costs the receiver one 128 x m bit
 * matrix on the wire and both sides a bit transpose and AES hashing, whatever m is.
 *
 * Receiver: t^i = G(k_i^0), u^i = t^i ^ G(k_i^1) ^ r (r its m choice bits), sends u.
 * Sender (base choices s): q^i = G(k_i^{s_i}) ^ s_i u^i, so row j of Q is t_j ^ r_j s.
 * Outputs: the sender has H(j, q_j) and H(j, q_j ^ s), the receiver H(j, t_j), the one it chose.
 * H is the tweakable correlation-robust hash pi(pi(x) ^ j) ^ pi(x) of Guo, Katz, Wang and Yu
 * (S&P 2020), pi fixed-key AES-128 from node:crypto.
 */
import { createCipheriv, randomBytes, type Cipher } from 'node:crypto';
import { MpcChannelError } from '../channel.js';
import { transposeBits } from '../bit-matrix.js';
import { BASE_OTS } from './base-ot.js';
import { loadNativeGmp } from '../../crypto/backend-gmp.js';

/** Bytes of one OT's row (the extension's security parameter, 128 bits). */
export const ROW_BYTES = 16;

const ZERO_IV = Buffer.alloc(16);
/** The fixed public key of pi: any constant works; this one is "nothing up my sleeve". */
const PI_KEY = Buffer.from('ciphermine-iknp!', 'utf8');
const pi = createCipheriv('aes-128-ecb', PI_KEY, null).setAutoPadding(false);

/** Rounds m up to whole 128-bit blocks (the transpose works on 16-row groups of bytes). */
export const roundUp = (m: number): number => Math.ceil(m / 128) * 128;

const words = (b: Uint8Array) => new Uint32Array(b.buffer, b.byteOffset, b.byteLength >>> 2);

const native = process.env.CIPHERMINE_BACKEND === 'js' ? undefined : loadNativeGmp();
export const nativeOtHash = typeof native?.otHash === 'function';
const NO_MASK = new Uint8Array(16);

/** H(j, x ^ mask) for rows x_0.. of 16 bytes, j counting from `tweak`: the native kernel when built. */
export function hashRows(rows: Uint8Array, tweak: number, mask: Uint8Array = NO_MASK): Buffer {
  const out = Buffer.allocUnsafe(rows.length);
  if (nativeOtHash) native!.otHash!(rows, out, PI_KEY, tweak, mask);
  else out.set(hashRowsJs(rows, tweak, mask));
  return out;
}

/** The TypeScript hash, byte for byte what the native kernel computes. */
export function hashRowsJs(rows: Uint8Array, tweak: number, mask: Uint8Array = NO_MASK): Buffer {
  const masked = Buffer.from(rows);
  const mw = words(masked);
  const kw = words(Uint8Array.from(mask));
  for (let i = 0; i < mw.length; i++) mw[i]! ^= kw[i & 3]!;
  const y = pi.update(masked);
  const z = Buffer.from(y);
  const zw = words(z);
  const m = rows.length / ROW_BYTES;
  for (let j = 0; j < m; j++) {
    const t = tweak + j;
    zw[4 * j]! ^= t >>> 0;
    zw[4 * j + 1]! ^= Math.floor(t / 2 ** 32);
  }
  const out = pi.update(z);
  const ow = words(out);
  const yw = words(y);
  for (let i = 0; i < ow.length; i++) ow[i]! ^= yw[i]!;
  return out;
}

class PrgStream {
  private readonly cipher: Cipher;
  constructor(key: Uint8Array) {
    this.cipher = createCipheriv('aes-128-ctr', key, ZERO_IV);
  }
  next(bytes: number): Buffer {
    return this.cipher.update(Buffer.alloc(bytes));
  }
}

/** The extension's receiver: holds both keys of each base OT (it was their sender). */
export class IknpReceiver {
  private readonly g0: PrgStream[];
  private readonly g1: PrgStream[];
  private tweak = 0;

  constructor(pairs: ReadonlyArray<readonly [Uint8Array, Uint8Array]>) {
    if (pairs.length !== BASE_OTS) throw new MpcChannelError(`IKNP needs ${BASE_OTS} base OTs`);
    this.g0 = pairs.map(([k0]) => new PrgStream(k0));
    this.g1 = pairs.map(([, k1]) => new PrgStream(k1));
  }

  /** m random OTs (m a multiple of 128): the message u for the sender, the choices and outputs. */
  extend(m: number): { u: Uint8Array; choices: Uint8Array; chosen: Buffer } {
    const cols = m / 8;
    const choices = randomBytes(cols);
    const cw = words(choices);
    const t = new Uint8Array(BASE_OTS * cols);
    const u = new Uint8Array(BASE_OTS * cols);
    for (let i = 0; i < BASE_OTS; i++) {
      const ti = this.g0[i]!.next(cols);
      const gi = this.g1[i]!.next(cols);
      t.set(ti, i * cols);
      const [tw, gw, uw] = [words(ti), words(gi), words(u.subarray(i * cols, (i + 1) * cols))];
      for (let w = 0; w < tw.length; w++) uw[w] = tw[w]! ^ gw[w]! ^ cw[w]!;
    }
    const chosen = hashRows(transposeBits(t, BASE_OTS, m), this.tweak);
    this.tweak += m;
    return { u, choices, chosen };
  }
}

/** The extension's sender: its secret s is its base-OT choices, with the keys they gave it. */
export class IknpSender {
  private readonly g: PrgStream[];
  private readonly sBits: number[];
  private tweak = 0;

  constructor(
    private readonly s: Uint8Array,
    keys: readonly Uint8Array[],
  ) {
    if (keys.length !== BASE_OTS || s.length !== BASE_OTS / 8) throw new MpcChannelError(`IKNP needs ${BASE_OTS} base OTs`);
    this.g = keys.map((k) => new PrgStream(k));
    this.sBits = Array.from({ length: BASE_OTS }, (_, i) => (s[i >>> 3]! >>> (i & 7)) & 1);
  }

  /** Both messages of each of the m random OTs whose receiver sent u. */
  extend(m: number, u: Uint8Array): { zero: Buffer; one: Buffer } {
    const cols = m / 8;
    if (u.length !== BASE_OTS * cols) throw new MpcChannelError(`expected an OT extension matrix of ${BASE_OTS * cols} bytes, got ${u.length}`);
    const q = new Uint8Array(BASE_OTS * cols);
    for (let i = 0; i < BASE_OTS; i++) {
      const gi = this.g[i]!.next(cols);
      if (this.sBits[i]) {
        const [gw, uw] = [words(gi), words(u.subarray(i * cols, (i + 1) * cols))];
        for (let w = 0; w < gw.length; w++) gw[w]! ^= uw[w]!;
      }
      q.set(gi, i * cols);
    }
    const rows = transposeBits(q, BASE_OTS, m);
    const zero = hashRows(rows, this.tweak);
    const one = hashRows(rows, this.tweak, this.s);
    this.tweak += m;
    return { zero, one };
  }
}
