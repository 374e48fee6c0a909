/**
 * A provider that serves a computation's material from stages obtained ahead (the offline phase),
 * and from its inner provider when no stage is loaded. A long computation whose requests repeat
 * (training: the same shapes every batch) loads a stage of many steps at once: with a dealer, one
 * exchange with the dealer per stage instead of one per request, so the online phase waits only on
 * the other party.
 */
import type { DealerRequest } from './dealer.js';
import { PreprocessedProvider } from './preprocessed.js';
import type { AndTriple, BeaverTriple, CorrelatedRandomness, DaBits, MatmulTriple, ProviderCounters } from './provider.js';

/** Bytes of this party's material for a request (a, b, c), for sizing stages. */
export const materialBytes = (r: DealerRequest): number =>
  r.kind === 'triple'
    ? 24 * r.n
    : r.kind === 'matmul'
      ? 8 * (r.m * r.k + r.k * r.n + r.m * r.n)
      : r.kind === 'and'
        ? 12 * r.words
        : 8 * r.n + r.n / 8;

export class StagedProvider implements CorrelatedRandomness {
  readonly counters: ProviderCounters = { offlineBytes: 0, offlineSeconds: 0 };
  private stage?: PreprocessedProvider;

  constructor(readonly inner: CorrelatedRandomness) {}

  get name() {
    return this.inner.name;
  }
  get party() {
    return this.inner.party;
  }

  /** Whether the loaded stage is used up (or none is loaded). */
  get empty(): boolean {
    return !this.stage || this.stage.remaining === 0;
  }

  /** Obtains the material of `plan` now; the requests that follow are served from it, in order. */
  async load(plan: readonly DealerRequest[]): Promise<void> {
    const t = performance.now();
    const before = this.inner.counters.offlineBytes;
    this.stage = await PreprocessedProvider.prepare(this.inner, plan);
    this.counters.offlineBytes += this.inner.counters.offlineBytes - before;
    this.counters.offlineSeconds += (performance.now() - t) / 1000;
  }

  /** Time spent waiting for the other party to finish its stage counts as offline too. */
  addOfflineSeconds(s: number): void {
    this.counters.offlineSeconds += s;
  }

  private from(): CorrelatedRandomness {
    return this.empty ? this.inner : this.stage!;
  }

  triple(n: number): Promise<BeaverTriple> {
    return this.from().triple(n);
  }
  matmulTriple(m: number, k: number, n: number): Promise<MatmulTriple> {
    return this.from().matmulTriple(m, k, n);
  }
  andTriple(words: number): Promise<AndTriple> {
    return this.from().andTriple(words);
  }
  daBits(n: number): Promise<DaBits> {
    return this.from().daBits(n);
  }
}
