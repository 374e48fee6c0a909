/**
 * Offline and online apart: a plan of the correlated randomness a computation consumes (recorded
 * by running it once on a planning provider that hands out zeros), obtained from the real provider
 * in advance, then served in order during the online phase. A request that departs from the plan
 * is refused, since both parties must consume the same material in the same order.
 */
import { ParameterError } from '../../crypto/errors.js';
import type { DealerRequest } from './dealer.js';
import type { AndTriple, BeaverTriple, CorrelatedRandomness, DaBits, MatmulTriple, ProviderCounters } from './provider.js';

type Material = BeaverTriple | AndTriple | DaBits;

/** Records requests; its material is all zeros (correct shapes, no secrecy: planning only). */
export class PlanningProvider implements CorrelatedRandomness {
  readonly name = 'dealer' as const;
  readonly counters: ProviderCounters = { offlineBytes: 0, offlineSeconds: 0 };
  readonly plan: DealerRequest[] = [];
  constructor(readonly party: 0 | 1) {}

  async triple(n: number): Promise<BeaverTriple> {
    this.plan.push({ kind: 'triple', n });
    return { a: new BigUint64Array(n), b: new BigUint64Array(n), c: new BigUint64Array(n) };
  }
  async matmulTriple(m: number, k: number, n: number): Promise<MatmulTriple> {
    this.plan.push({ kind: 'matmul', m, k, n });
    return { a: new BigUint64Array(m * k), b: new BigUint64Array(k * n), c: new BigUint64Array(m * n) };
  }
  async andTriple(words: number): Promise<AndTriple> {
    this.plan.push({ kind: 'and', words });
    return { a: new Uint32Array(words), b: new Uint32Array(words), c: new Uint32Array(words) };
  }
  async daBits(n: number): Promise<DaBits> {
    this.plan.push({ kind: 'dabits', n });
    return { bits: new Uint32Array(Math.ceil(n / 32)), arith: new BigUint64Array(n) };
  }
}

export class PreprocessedProvider implements CorrelatedRandomness {
  readonly counters: ProviderCounters;
  private constructor(
    private readonly inner: CorrelatedRandomness,
    private readonly queue: Array<{ request: DealerRequest; material: Material }>,
  ) {
    this.counters = inner.counters;
  }

  get name() {
    return this.inner.name;
  }
  get party() {
    return this.inner.party;
  }

  /** Obtains everything the plan needs from `inner`, in order (the offline phase). */
  static async prepare(inner: CorrelatedRandomness, plan: readonly DealerRequest[]): Promise<PreprocessedProvider> {
    const queue: Array<{ request: DealerRequest; material: Material }> = [];
    for (const r of plan) {
      const material =
        r.kind === 'triple'
          ? await inner.triple(r.n)
          : r.kind === 'matmul'
            ? await inner.matmulTriple(r.m, r.k, r.n)
            : r.kind === 'and'
              ? await inner.andTriple(r.words)
              : await inner.daBits(r.n);
      queue.push({ request: r, material });
    }
    return new PreprocessedProvider(inner, queue);
  }

  private next<T extends Material>(request: DealerRequest): T {
    const head = this.queue.shift();
    if (!head || JSON.stringify(head.request) !== JSON.stringify(request)) {
      throw new ParameterError(`the online phase asked for ${JSON.stringify(request)}, the plan had ${JSON.stringify(head?.request ?? 'nothing')}`);
    }
    return head.material as T;
  }

  async triple(n: number): Promise<BeaverTriple> {
    return this.next<BeaverTriple>({ kind: 'triple', n });
  }
  async matmulTriple(m: number, k: number, n: number): Promise<MatmulTriple> {
    return this.next<MatmulTriple>({ kind: 'matmul', m, k, n });
  }
  async andTriple(words: number): Promise<AndTriple> {
    return this.next<AndTriple>({ kind: 'and', words });
  }
  async daBits(n: number): Promise<DaBits> {
    return this.next<DaBits>({ kind: 'dabits', n });
  }
}
