/**
 * The `ot` provider: no third party, the same two-server trust as seed 000. The servers run base
 * OTs once (Chou-Orlandi over ristretto255), then IKNP extension in both directions at once, and
 * turn the random OTs into correlated randomness:
 *
 * - AND triples: a0 b1 from the OT where party 0 sends (its a0 = x0 ^ x1, party 1's b1 = its
 *   choice), a1 b0 from the other direction; c = a0 b0 ^ a1 b1 ^ both cross shares (ABY, NDSS 2015).
 * - arithmetic triples: Gilboa's product (CRYPTO 1999): 64 correlated OTs per cross term, the
 *   receiver's choices being the bits of its share of b and the sender correcting each pair by
 *   2^k a; matrix triples the same with vector messages (a column of A per OT), which costs
 *   64 k n m values on the wire: fine for narrow products, heavy for wide ones, where a dealer
 *   (or homomorphic encryption, as SecureML does) is the better source.
 * - daBits: one bit each side, their product shared by one correlated OT.
 *
 * Trust: semi-honest, non-colluding servers; each server's view is the other's IKNP matrices and
 * corrections, which are uniformly random given its own outputs. No one else is involved.
 */
import { randomBytes } from 'node:crypto';
import { bytesOf, MAX_MESSAGE_BYTES, MpcChannelError, type PartyChannel } from '../channel.js';
import { ParameterError } from '../../crypto/errors.js';
import { baseOts, BASE_OTS } from '../ot/base-ot.js';
import type { ForkedBase } from '../ot/base-ot-cache.js';
import { hashRows, IknpReceiver, IknpSender, roundUp, ROW_BYTES } from '../ot/iknp.js';
import * as ring from '../ring.js';
import type { AndTriple, BeaverTriple, CorrelatedRandomness, DaBits, MatmulTriple, ProviderCounters } from './provider.js';

/** Random OTs per exchange (the IKNP matrix is then 16 MB), and per piece of local work. */
const EXCHANGE_OTS = 1 << 20;
const PIECE_OTS = 1 << 16;
/** Elements per Gilboa exchange: 64 corrections of 8 bytes each, 16 MB a message. */
const GILBOA_PIECE = 1 << 15;

function concatBytes(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) out.set(p, (at += p.length) - p.length);
  return out;
}

const aligned = (b: Uint8Array): Uint8Array => (b.byteOffset % 8 === 0 ? b : Uint8Array.from(b));
const u32 = (b: Uint8Array) => new Uint32Array(b.buffer, b.byteOffset, b.byteLength >>> 2);

/** A batch of m random OTs each way: this party's two messages as sender, its choices and chosen messages as receiver. */
interface RandomOts {
  m: number;
  zero: Buffer;
  one: Buffer;
  choices: Uint8Array;
  chosen: Buffer;
}

export class OtProvider implements CorrelatedRandomness {
  readonly name = 'ot' as const;
  readonly counters: ProviderCounters = { offlineBytes: 0, offlineSeconds: 0 };
  private ready?: Promise<{ sender: IknpSender; receiver: IknpReceiver }>;

  /**
   * `channel` links this party to the other server's OtProvider (its own session, apart from the
   * online one). `base`, when given, is a session's keys forked from base OTs run earlier
   * (ot/base-ot-cache.ts), so the session skips the public-key work.
   */
  constructor(
    readonly party: 0 | 1,
    private readonly channel: PartyChannel,
    private readonly base?: ForkedBase,
  ) {}

  private setup() {
    this.ready ??= (async () => {
      if (this.base) return { sender: new IknpSender(this.base.choices, this.base.received), receiver: new IknpReceiver(this.base.sent) };
      const s = randomBytes(BASE_OTS / 8);
      const base = await baseOts(this.channel, s);
      return { sender: new IknpSender(s, base.received), receiver: new IknpReceiver(base.sent) };
    })();
    return this.ready;
  }

  private async exchange(message: Uint8Array): Promise<Uint8Array> {
    const before = this.channel.counters.bytesSent;
    const theirs = aligned(await this.channel.exchange(message));
    this.counters.offlineBytes += this.channel.counters.bytesSent - before;
    return theirs;
  }

  /**
   * `count` random OTs in each direction (rounded up to a multiple of 128), handed to `consume`
   * piece by piece (2^16 OTs, 1 MB of rows, so nothing large is held), one exchange per 2^20.
   */
  private async eachRandomOts(count: number, consume: (at: number, ots: RandomOts) => void): Promise<void> {
    const { sender, receiver } = await this.setup();
    const m = roundUp(count);
    for (let group = 0; group < m; group += EXCHANGE_OTS) {
      const pieces: number[] = [];
      for (let at = group; at < Math.min(m, group + EXCHANGE_OTS); at += PIECE_OTS) pieces.push(Math.min(PIECE_OTS, m - at));
      const mine = pieces.map((size) => receiver.extend(size));
      const theirs = await this.exchange(concatBytes(mine.map((x) => x.u)));
      let offset = 0;
      let at = group;
      pieces.forEach((size, i) => {
        const bytes = (size / 8) * 128;
        if (theirs.length < offset + bytes)
          throw new MpcChannelError(`the OT extension matrix is ${theirs.length} bytes, short of ${offset + bytes}`);
        const sent = sender.extend(size, theirs.subarray(offset, offset + bytes));
        offset += bytes;
        consume(at, { m: size, zero: sent.zero, one: sent.one, choices: mine[i]!.choices, chosen: mine[i]!.chosen });
        at += size;
      });
      if (offset !== theirs.length) throw new MpcChannelError(`the OT extension matrix has ${theirs.length - offset} bytes too many`);
    }
  }

  /** All of `count` random OTs at once (for small batches). */
  private async randomOts(count: number): Promise<RandomOts> {
    const m = roundUp(count);
    const out: RandomOts = {
      m,
      zero: Buffer.alloc(m * ROW_BYTES),
      one: Buffer.alloc(m * ROW_BYTES),
      choices: new Uint8Array(m / 8),
      chosen: Buffer.alloc(m * ROW_BYTES),
    };
    await this.eachRandomOts(m, (at, ots) => {
      out.zero.set(ots.zero, at * ROW_BYTES);
      out.one.set(ots.one, at * ROW_BYTES);
      out.chosen.set(ots.chosen, at * ROW_BYTES);
      out.choices.set(ots.choices, at / 8);
    });
    return out;
  }

  /** Calls run one at a time: each is several exchanges on one channel, and IKNP's PRG streams and tweaks must advance in the same order at both parties, whatever order callers start them in. */
  private queue: Promise<unknown> = Promise.resolve();

  private timed<T>(f: () => Promise<T>): Promise<T> {
    const run = async () => {
      const t = performance.now();
      try {
        return await f();
      } finally {
        this.counters.offlineSeconds += (performance.now() - t) / 1000;
      }
    };
    const next = this.queue.then(run, run);
    this.queue = next.catch(() => undefined);
    return next;
  }

  andTriple(words: number): Promise<AndTriple> {
    return this.timed(async () => {
      const [a, b, c] = [new Uint32Array(words), new Uint32Array(words), new Uint32Array(words)];
      await this.eachRandomOts(32 * words, (at, ots) => {
        const choices = u32(ots.choices);
        const end = Math.min(words, (at + ots.m) / 32);
        for (let w = at / 32; w < end; w++) {
          const local = w - at / 32;
          let x0 = 0;
          let x1 = 0;
          let xc = 0;
          for (let k = 31, row = (32 * local + 31) * ROW_BYTES; k >= 0; k--, row -= ROW_BYTES) {
            x0 = (x0 << 1) | (ots.zero[row]! & 1);
            x1 = (x1 << 1) | (ots.one[row]! & 1);
            xc = (xc << 1) | (ots.chosen[row]! & 1);
          }
          // As sender: a = x0 ^ x1, and x0 is this party's share of a & b_other. As receiver:
          // b = the choices, and the chosen message is its share of a_other & b.
          a[w] = x0 ^ x1;
          b[w] = choices[local]!;
          c[w] = (a[w]! & b[w]!) ^ x0 ^ xc;
        }
      });
      return { a, b, c };
    });
  }

  daBits(n: number): Promise<DaBits> {
    return this.timed(async () => {
      const ots = await this.randomOts(n);
      // Each party's bit is its receiver choice; the product r0 r1 comes from the OTs party 0
      // sends, corrected by y = x1 - x0 - r0, so that party 1's chosen message minus c y is x0 + c r0.
      const bits = u32(ots.choices).slice(0, Math.ceil(n / 32));
      const r = (i: number) => BigInt((bits[i >>> 5]! >>> (i & 31)) & 1);
      const arith = new BigUint64Array(n);
      if (this.party === 0) {
        const [x0, x1] = [lows(ots.zero, n), lows(ots.one, n)];
        const y = new BigUint64Array(n);
        for (let i = 0; i < n; i++) y[i] = x1[i]! - x0[i]! - r(i);
        ringOf(await this.exchange(bytesOf(y)), 0);
        // r = r0 + r1 - 2 r0 r1, and party 0's share of r0 r1 is -x0.
        for (let i = 0; i < n; i++) arith[i] = r(i) + 2n * x0[i]!;
      } else {
        const y = ringOf(await this.exchange(new Uint8Array(0)), n);
        const xc = lows(ots.chosen, n);
        for (let i = 0; i < n; i++) arith[i] = r(i) - 2n * (r(i) ? xc[i]! - y[i]! : xc[i]!);
      }
      return { bits, arith };
    });
  }

  triple(n: number): Promise<BeaverTriple> {
    return this.timed(async () => {
      const a = ring.random(n);
      const [b, share] = [new BigUint64Array(n), new BigUint64Array(n)];
      // In pieces whose corrections (64 values per element) stay at 16 MB a message.
      for (let at = 0; at < n; at += GILBOA_PIECE) {
        const size = Math.min(GILBOA_PIECE, n - at);
        const part = await this.gilboa(a.subarray(at, at + size), size);
        b.set(part.mine, at);
        share.set(part.share, at);
      }
      return { a, b, c: ring.add(ring.mul(a, b), share) };
    });
  }

  /**
   * Gilboa's product in both directions: this party sends correlation a (its own), receives with
   * choices forming b (its own, random), and returns b and its share of a * b_other + a_other * b.
   */
  private async gilboa(a: BigUint64Array, n: number): Promise<{ mine: BigUint64Array; share: BigUint64Array }> {
    const ots = await this.randomOts(64 * n);
    const b = new BigUint64Array(new Uint8Array(ots.choices.slice(0, 8 * n)).buffer);
    const [x0, x1, xc] = [lows(ots.zero, 64 * n), lows(ots.one, 64 * n), lows(ots.chosen, 64 * n)];
    const y = new BigUint64Array(64 * n);
    const share = new BigUint64Array(n);
    for (let e = 0; e < n; e++) {
      let s = 0n;
      for (let k = 0; k < 64; k++) {
        const j = 64 * e + k;
        y[j] = x1[j]! - x0[j]! - (a[e]! << BigInt(k));
        s -= x0[j]!;
      }
      share[e] = s;
    }
    const theirY = ringOf(await this.exchange(bytesOf(y)), 64 * n);
    for (let e = 0; e < n; e++) {
      let s = share[e]!;
      const be = b[e]!;
      for (let k = 0; k < 64; k++) {
        const j = 64 * e + k;
        s += (be >> BigInt(k)) & 1n ? xc[j]! - theirY[j]! : xc[j]!;
      }
      share[e] = s;
    }
    return { mine: b, share };
  }

  matmulTriple(m: number, k: number, n: number): Promise<MatmulTriple> {
    return this.timed(async () => {
      const a = ring.random(m * k);
      const [b, share] = [new BigUint64Array(k * n), new BigUint64Array(m * n)];
      // Column blocks of B whose corrections (64 k m values per column) stay near 16 MB a message.
      const cols = Math.max(1, Math.floor((GILBOA_PIECE * 64) / (64 * k * Math.max(m, 1))));
      if (64 * k * m * 8 > MAX_MESSAGE_BYTES / 2) {
        // One column already needs 64 k m corrections; splitting A's rows would need chosen (not random) choices.
        throw new ParameterError(
          `a ${m}x${k} by ${k}x${n} matrix triple is too wide for the ot provider (64 k m = ${64 * k * m} values a column); use a dealer`,
        );
      }
      for (let j0 = 0; j0 < n; j0 += cols) {
        const nb = Math.min(cols, n - j0);
        const part = await this.gilboaMatrix(a, m, k, nb);
        for (let t = 0; t < k; t++) b.set(part.mine.subarray(t * nb, (t + 1) * nb), t * n + j0);
        for (let i = 0; i < m; i++) share.set(part.share.subarray(i * nb, (i + 1) * nb), i * n + j0);
      }
      return { a, b, c: ring.add(ring.matmul(a, b, m, k, n), share) };
    });
  }

  /**
   * Gilboa with vector messages, both directions: this party's B (k x n) is its receiver choices,
   * 64 per entry; for the OT of bit b of B[t][j] the other party's correlation is 2^b A[:, t] (m
   * values), and the chosen message adds it to column j of the product. Returns B and this
   * party's share of A B_other + A_other B. Cost: 64 k n OTs and 64 k n m values each way.
   */
  private async gilboaMatrix(a: BigUint64Array, m: number, k: number, n: number): Promise<{ mine: BigUint64Array; share: BigUint64Array }> {
    const count = 64 * k * n;
    const ots = await this.randomOts(count);
    const b = new BigUint64Array(new Uint8Array(ots.choices.slice(0, 8 * k * n)).buffer);
    const [x0, x1, xc] = [expand(ots.zero, count, m), expand(ots.one, count, m), expand(ots.chosen, count, m)];
    const y = new BigUint64Array(count * m);
    const share = new BigUint64Array(m * n); // row-major m x n
    for (let t = 0; t < k; t++) {
      for (let j = 0; j < n; j++) {
        for (let bit = 0; bit < 64; bit++) {
          const o = ((t * n + j) * 64 + bit) * m;
          for (let i = 0; i < m; i++) {
            y[o + i] = x1[o + i]! - x0[o + i]! - (a[i * k + t]! << BigInt(bit));
            share[i * n + j]! -= x0[o + i]!;
          }
        }
      }
    }
    const theirY = ringOf(await this.exchange(bytesOf(y)), count * m);
    for (let t = 0; t < k; t++) {
      for (let j = 0; j < n; j++) {
        const entry = b[t * n + j]!;
        for (let bit = 0; bit < 64; bit++) {
          const o = ((t * n + j) * 64 + bit) * m;
          const chose = (entry >> BigInt(bit)) & 1n;
          for (let i = 0; i < m; i++) share[i * n + j]! += chose ? xc[o + i]! - theirY[o + i]! : xc[o + i]!;
        }
      }
    }
    return { mine: b, share };
  }
}

/**
 * Each OT's 16-byte output stretched to `m` ring elements: element e of row j is the low or high
 * half of H(j-th row, block e / 2), the same correlation-robust hash with the block index folded
 * into the row (x ^ e) and a tweak per row, so both holders of a message stretch it alike.
 */
function expand(rows: Buffer, count: number, m: number): BigUint64Array {
  const blocks = Math.ceil(m / 2);
  const input = Buffer.alloc(count * blocks * ROW_BYTES);
  for (let j = 0; j < count; j++) {
    for (let e = 0; e < blocks; e++) {
      const at = (j * blocks + e) * ROW_BYTES;
      rows.copy(input, at, j * ROW_BYTES, (j + 1) * ROW_BYTES);
      input.writeUInt32LE((input.readUInt32LE(at + 8) ^ e) >>> 0, at + 8);
    }
  }
  const hashed = hashRows(input, 0);
  const all = new BigUint64Array(hashed.buffer, hashed.byteOffset, hashed.length / 8);
  const out = new BigUint64Array(count * m);
  for (let j = 0; j < count; j++) for (let i = 0; i < m; i++) out[j * m + i] = all[j * blocks * 2 + i]!;
  return out;
}

/** The low 64 bits of each 16-byte OT row, as ring elements. */
function lows(rows: Buffer, n: number): BigUint64Array {
  const all = new BigUint64Array(rows.buffer, rows.byteOffset, rows.length / 8);
  const out = new BigUint64Array(n);
  for (let i = 0; i < n; i++) out[i] = all[2 * i]!;
  return out;
}

function ringOf(message: Uint8Array, n: number): BigUint64Array {
  if (message.length !== 8 * n) throw new MpcChannelError(`expected ${8 * n} bytes of OT corrections, got ${message.length}`);
  return new BigUint64Array(Uint8Array.from(message).buffer);
}
