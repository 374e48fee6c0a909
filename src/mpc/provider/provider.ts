/**
 * Correlated randomness, kept apart from the protocols that consume it (CrypTen's mpc/provider):
 * every protocol asks its party's provider for this party's share of Beaver triples, matrix
 * triples, AND triples and daBits, and never learns how they were made. Both parties must ask
 * for the same material in the same order, which a deterministic protocol guarantees.
 */
import type { RingArray } from '../ring.js';
import type { WideArray } from '../wide-ring.js';

/** This party's additive shares of a, b and c = a * b (elementwise, in Z_2^64). */
export interface BeaverTriple {
  a: RingArray;
  b: RingArray;
  c: RingArray;
}

/** This party's shares of A (m x k), B (k x n) and C = A B. */
export type MatmulTriple = BeaverTriple;

/** This party's shares of A (m x k), B (k x n) and C = A B in Z_2^l, l > 64 (wide-ring.ts). */
export interface WideMatmulTriple {
  a: WideArray;
  b: WideArray;
  c: WideArray;
}

/** This party's XOR shares of bit-sliced words a, b and c = a AND b. */
export interface AndTriple {
  a: Uint32Array;
  b: Uint32Array;
  c: Uint32Array;
}

/** A random bit r per element, shared twice: XOR-shared (packed 32 per word) and additively in Z_2^64. */
export interface DaBits {
  bits: Uint32Array;
  arith: RingArray;
}

export interface ProviderCounters {
  /** Bytes this party received for its correlated randomness. */
  offlineBytes: number;
  /** Seconds this party spent obtaining it. */
  offlineSeconds: number;
}

export interface CorrelatedRandomness {
  readonly name: 'dealer' | 'ot';
  readonly party: 0 | 1;
  triple(n: number): Promise<BeaverTriple>;
  matmulTriple(m: number, k: number, n: number): Promise<MatmulTriple>;
  andTriple(words: number): Promise<AndTriple>;
  daBits(n: number): Promise<DaBits>;
  /**
   * Matrix triples in a wide ring, where the provider makes them cheaply (the dealer: one product by
   * the dealer, one correction on the wire). OT extension would need l-bit Gilboa products per
   * element, so the `ot` provider has none and its callers take another route.
   */
  wideMatmulTriple?(bits: number, m: number, k: number, n: number): Promise<WideMatmulTriple>;
  readonly counters: ProviderCounters;
}
