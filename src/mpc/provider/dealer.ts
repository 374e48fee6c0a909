/**
 * The `dealer` provider: a trusted third party (seed 002's KGC, the trusted authority seed 001
 * already assumes) that never sees data. It gives each server a PRG seed once; party 0 then draws
 * all of its material from its seed, party 1 draws a and b from its own, and only party 1's c, the
 * correction that makes c = a * b hold, crosses the wire: a fraction of the data's size.
 *
 * Trust: the dealer knows every triple, so a dealer that colludes with either server, or that a
 * server impersonates, breaks privacy; with an honest dealer each server's view is independent of
 * the data (Beaver 1991; the ABY and SecureML offline phases).
 */
import { ParameterError } from '../../crypto/errors.js';
import { Prg, SEED_BYTES } from '../prg.js';
import * as ring from '../ring.js';
import * as wide from '../wide-ring.js';
import type { AndTriple, BeaverTriple, CorrelatedRandomness, DaBits, MatmulTriple, ProviderCounters, WideMatmulTriple } from './provider.js';

/** One request to the dealer: what party 1 needs a correction for. */
export type DealerRequest =
  | { kind: 'triple'; n: number }
  | { kind: 'matmul'; m: number; k: number; n: number }
  | { kind: 'and'; words: number }
  | { kind: 'dabits'; n: number }
  | { kind: 'wideMatmul'; bits: number; m: number; k: number; n: number };

/** How party 1 reaches the dealer: in memory, or over the network. */
export interface DealerLink {
  correction(request: DealerRequest): Promise<Uint8Array>;
  /** Several corrections in one exchange, concatenated in order (an offline phase's plan). */
  corrections(requests: readonly DealerRequest[]): Promise<Uint8Array>;
}

/** Bytes of party 1's correction for a request. */
export const correctionBytes = (r: DealerRequest): number =>
  r.kind === 'matmul' ? 8 * r.m * r.n : r.kind === 'wideMatmul' ? 8 * wide.limbsOf(r.bits) * r.m * r.n : r.kind === 'and' ? 4 * r.words : 8 * r.n;

/** The most correction bytes one `corrections` exchange carries (a plan is fetched in pieces of this). */
export const MAX_CORRECTION_BATCH_BYTES = 32 << 20;

export const MAX_DEALER_ELEMENTS = 1 << 26;

/** The most products one wide matrix triple may cost the dealer (about a second of bigint work). */
export const MAX_WIDE_PRODUCTS = 1 << 22;

function checkSize(r: DealerRequest): void {
  const matrix = r.kind === 'matmul' || r.kind === 'wideMatmul';
  const size = matrix ? Math.max(r.m * r.k, r.k * r.n, r.m * r.n) : r.kind === 'and' ? r.words : r.n;
  const dims = matrix ? [r.m, r.k, r.n] : [size];
  // The dealer multiplies wide matrices with bigints: bound the work (m k n products) as well.
  const wideBad =
    r.kind === 'wideMatmul' &&
    (!Number.isSafeInteger(r.bits) ||
      r.bits < 2 ||
      r.bits > 512 ||
      dims.some((d) => d < 1) ||
      r.m * r.k * r.n > MAX_WIDE_PRODUCTS ||
      size * wide.limbsOf(r.bits) > MAX_DEALER_ELEMENTS);
  if (wideBad) {
    throw new ParameterError(`a wide matrix triple of ${JSON.stringify(r)} is malformed or larger than ${MAX_WIDE_PRODUCTS} products`);
  }
  if (!dims.every((d) => Number.isSafeInteger(d) && d >= 0) || size > MAX_DEALER_ELEMENTS) {
    throw new ParameterError(`a dealer request of ${JSON.stringify(r)} is malformed or larger than ${MAX_DEALER_ELEMENTS} elements`);
  }
}

const bytes = (a: BigUint64Array | Uint32Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

/** Bit i of packed words. */
const bitAt = (w: Uint32Array, i: number) => (w[i >>> 5]! >>> (i & 31)) & 1;

/**
 * The dealer's state: both seeds, and both parties' PRG streams, replayed in the order party 1
 * asks (party 0 asks for the same material in the same order, from its seed alone).
 */
export class TrustedDealer implements DealerLink {
  private readonly prg0: Prg;
  private readonly prg1: Prg;

  constructor(
    readonly seed0: Buffer = Prg.fresh().seed,
    readonly seed1: Buffer = Prg.fresh().seed,
  ) {
    if (seed0.length !== SEED_BYTES || seed1.length !== SEED_BYTES) throw new ParameterError('dealer seeds are 32 bytes');
    this.prg0 = new Prg(seed0);
    this.prg1 = new Prg(seed1);
  }

  async corrections(rs: readonly DealerRequest[]): Promise<Uint8Array> {
    rs.forEach(checkSize);
    if (rs.reduce((a, r) => a + correctionBytes(r), 0) > MAX_CORRECTION_BATCH_BYTES)
      throw new ParameterError(`a batch of corrections is at most ${MAX_CORRECTION_BATCH_BYTES} bytes`);
    const parts: Uint8Array[] = [];
    for (const r of rs) parts.push(await this.correction(r));
    return Buffer.concat(parts);
  }

  async correction(r: DealerRequest): Promise<Uint8Array> {
    checkSize(r);
    switch (r.kind) {
      case 'triple': {
        const [a0, b0, c0] = [this.prg0.ring(r.n), this.prg0.ring(r.n), this.prg0.ring(r.n)];
        const [a1, b1] = [this.prg1.ring(r.n), this.prg1.ring(r.n)];
        return bytes(ring.sub(ring.mul(ring.add(a0, a1), ring.add(b0, b1)), c0));
      }
      case 'matmul': {
        const [a0, b0, c0] = [this.prg0.ring(r.m * r.k), this.prg0.ring(r.k * r.n), this.prg0.ring(r.m * r.n)];
        const [a1, b1] = [this.prg1.ring(r.m * r.k), this.prg1.ring(r.k * r.n)];
        return bytes(ring.sub(ring.matmul(ring.add(a0, a1), ring.add(b0, b1), r.m, r.k, r.n), c0));
      }
      case 'wideMatmul': {
        const [a0, b0, c0] = [this.prg0.wide(r.bits, r.m * r.k), this.prg0.wide(r.bits, r.k * r.n), this.prg0.wide(r.bits, r.m * r.n)];
        const [a1, b1] = [this.prg1.wide(r.bits, r.m * r.k), this.prg1.wide(r.bits, r.k * r.n)];
        return bytes(wide.limbWords(wide.sub(wide.matmul(wide.add(a0, a1), wide.add(b0, b1), r.m, r.k, r.n), c0)));
      }
      case 'and': {
        const [a0, b0, c0] = [this.prg0.words(r.words), this.prg0.words(r.words), this.prg0.words(r.words)];
        const [a1, b1] = [this.prg1.words(r.words), this.prg1.words(r.words)];
        const c1 = new Uint32Array(r.words);
        for (let i = 0; i < r.words; i++) c1[i] = ((a0[i]! ^ a1[i]!) & (b0[i]! ^ b1[i]!)) ^ c0[i]!;
        return bytes(c1);
      }
      case 'dabits': {
        const words = Math.ceil(r.n / 32);
        const [bits0, arith0] = [this.prg0.words(words), this.prg0.ring(r.n)];
        const bits1 = this.prg1.words(words);
        const arith1 = new BigUint64Array(r.n);
        for (let i = 0; i < r.n; i++) arith1[i] = BigInt(bitAt(bits0, i) ^ bitAt(bits1, i)) - arith0[i]!;
        return bytes(arith1);
      }
    }
  }
}

/** One party's end of the dealer provider. */
export class DealerProvider implements CorrelatedRandomness {
  readonly name = 'dealer' as const;
  readonly counters: ProviderCounters = { offlineBytes: 0, offlineSeconds: 0 };
  private readonly prg: Prg;

  /** Party 1 needs a link to the dealer; party 0 needs only its seed. */
  constructor(
    readonly party: 0 | 1,
    seed: Uint8Array,
    private readonly link?: DealerLink,
  ) {
    if (party === 1 && !link) throw new ParameterError('party 1 of the dealer provider needs a link to the dealer');
    this.prg = new Prg(seed);
  }

  private async fetchCorrection(r: DealerRequest): Promise<Uint8Array> {
    const t = performance.now();
    const c = await this.link!.correction(r);
    this.counters.offlineBytes += c.length;
    this.counters.offlineSeconds += (performance.now() - t) / 1000;
    return c;
  }

  private ringOf(c: Uint8Array, n: number): BigUint64Array {
    if (c.length !== 8 * n) throw new ParameterError(`the dealer sent ${c.length} bytes where ${8 * n} were due`);
    return new BigUint64Array(new Uint8Array(c).buffer, 0, n);
  }

  /**
   * All the material of a plan, in order, with party 1's corrections fetched in a few large
   * exchanges instead of one per request (the offline phase of preprocessed.ts).
   */
  async materials(plan: readonly DealerRequest[]): Promise<Array<BeaverTriple | AndTriple | DaBits>> {
    const own = plan.map((r) => this.ownPart(r));
    if (this.party === 0) return own.map((m, i) => this.withC(plan[i]!, m, undefined));
    const out: Array<BeaverTriple | AndTriple | DaBits> = [];
    for (let i = 0; i < plan.length;) {
      let j = i;
      let size = 0;
      while (j < plan.length && (j === i || size + correctionBytes(plan[j]!) <= MAX_CORRECTION_BATCH_BYTES)) size += correctionBytes(plan[j++]!);
      const t = performance.now();
      const bytes = await this.link!.corrections(plan.slice(i, j));
      this.counters.offlineBytes += bytes.length;
      this.counters.offlineSeconds += (performance.now() - t) / 1000;
      if (bytes.length !== size) throw new ParameterError(`the dealer sent ${bytes.length} bytes where ${size} were due`);
      let at = 0;
      for (let k = i; k < j; k++) {
        const n = correctionBytes(plan[k]!);
        out.push(this.withC(plan[k]!, own[k]!, bytes.subarray(at, (at += n))));
      }
      i = j;
    }
    return out;
  }

  /** This party's a and b (and, party 0, its c) for a request, drawn in the request's order. */
  private ownPart(r: DealerRequest): { a: BigUint64Array | Uint32Array; b?: BigUint64Array | Uint32Array; c?: BigUint64Array | Uint32Array } {
    switch (r.kind) {
      case 'triple':
        return { a: this.prg.ring(r.n), b: this.prg.ring(r.n), c: this.party === 0 ? this.prg.ring(r.n) : undefined };
      case 'matmul':
        return { a: this.prg.ring(r.m * r.k), b: this.prg.ring(r.k * r.n), c: this.party === 0 ? this.prg.ring(r.m * r.n) : undefined };
      case 'and':
        return { a: this.prg.words(r.words), b: this.prg.words(r.words), c: this.party === 0 ? this.prg.words(r.words) : undefined };
      case 'dabits':
        return { a: this.prg.words(Math.ceil(r.n / 32)), c: this.party === 0 ? this.prg.ring(r.n) : undefined };
      case 'wideMatmul':
        throw new ParameterError('wide matrix triples are fetched one at a time, not in a plan');
    }
  }

  private withC(r: DealerRequest, own: ReturnType<DealerProvider['ownPart']>, correction: Uint8Array | undefined): BeaverTriple | AndTriple | DaBits {
    const c = own.c ?? (r.kind === 'and' ? new Uint32Array(new Uint8Array(correction!).buffer) : this.ringOf(correction!, correctionBytes(r) / 8));
    if (r.kind === 'dabits') return { bits: own.a as Uint32Array, arith: c as BigUint64Array };
    if (r.kind === 'and') return { a: own.a as Uint32Array, b: own.b as Uint32Array, c: c as Uint32Array };
    return { a: own.a as BigUint64Array, b: own.b as BigUint64Array, c: c as BigUint64Array };
  }

  async triple(n: number): Promise<BeaverTriple> {
    const [a, b] = [this.prg.ring(n), this.prg.ring(n)];
    const c = this.party === 0 ? this.prg.ring(n) : this.ringOf(await this.fetchCorrection({ kind: 'triple', n }), n);
    return { a, b, c };
  }

  async matmulTriple(m: number, k: number, n: number): Promise<MatmulTriple> {
    const [a, b] = [this.prg.ring(m * k), this.prg.ring(k * n)];
    const c = this.party === 0 ? this.prg.ring(m * n) : this.ringOf(await this.fetchCorrection({ kind: 'matmul', m, k, n }), m * n);
    return { a, b, c };
  }

  async wideMatmulTriple(bits: number, m: number, k: number, n: number): Promise<WideMatmulTriple> {
    const [a, b] = [this.prg.wide(bits, m * k), this.prg.wide(bits, k * n)];
    if (this.party === 0) return { a, b, c: this.prg.wide(bits, m * n) };
    const request: DealerRequest = { kind: 'wideMatmul', bits, m, k, n };
    const c = await this.fetchCorrection(request);
    if (c.length !== correctionBytes(request))
      throw new ParameterError(`the dealer sent ${c.length} bytes where ${correctionBytes(request)} were due`);
    return { a, b, c: wide.fromLimbWords(bits, m * n, new BigUint64Array(new Uint8Array(c).buffer)) };
  }

  async andTriple(words: number): Promise<AndTriple> {
    const [a, b] = [this.prg.words(words), this.prg.words(words)];
    if (this.party === 0) return { a, b, c: this.prg.words(words) };
    const c = await this.fetchCorrection({ kind: 'and', words });
    if (c.length !== 4 * words) throw new ParameterError(`the dealer sent ${c.length} bytes where ${4 * words} were due`);
    return { a, b, c: new Uint32Array(new Uint8Array(c).buffer, 0, words) };
  }

  async daBits(n: number): Promise<DaBits> {
    const bits = this.prg.words(Math.ceil(n / 32));
    const arith = this.party === 0 ? this.prg.ring(n) : this.ringOf(await this.fetchCorrection({ kind: 'dabits', n }), n);
    return { bits, arith };
  }
}

/** Both parties' providers around one in-memory dealer (tests, single-process use). */
export function dealerProviders(): [DealerProvider, DealerProvider] {
  const dealer = new TrustedDealer();
  return [new DealerProvider(0, dealer.seed0), new DealerProvider(1, dealer.seed1, dealer)];
}
