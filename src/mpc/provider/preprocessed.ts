/**
 * Offline and online apart: a plan of the correlated randomness a computation consumes (recorded
 * by running it once on a planning provider that hands out zeros), obtained from the real provider
 * in advance, then served in order during the online phase. A request that departs from the plan
 * is refused, since both parties must consume the same material in the same order.
 */
import { ParameterError } from '../../crypto/errors.js';
import { DealerProvider, type DealerRequest } from './dealer.js';
import type { AndTriple, BeaverTriple, CorrelatedRandomness, DaBits, MatmulTriple, ProviderCounters } from './provider.js';

type Material = BeaverTriple | AndTriple | DaBits;

/** Records requests; its material is all zeros (correct shapes, no secrecy: planning only). */
export class PlanningProvider implements CorrelatedRandomness {
  readonly counters: ProviderCounters = { offlineBytes: 0, offlineSeconds: 0 };
  readonly plan: DealerRequest[] = [];
  /** `name`: the provider the plan is for (protocols may pick circuits by its cost model). */
  constructor(
    readonly party: 0 | 1,
    readonly name: 'dealer' | 'ot' = 'dealer',
  ) {}

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

/** The largest batch of AND triples fetched at once (2^26 triples, 24 MB of material). */
const AND_BATCH_WORDS = 1 << 21;
const sumWords = (rs: readonly DealerRequest[]) => rs.reduce((n, r) => n + (r.kind === 'and' ? r.words : 0), 0);

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
    // A dealer hands out a whole plan in a few exchanges.
    if (inner instanceof DealerProvider) {
      const materials = await inner.materials(plan);
      return new PreprocessedProvider(
        inner,
        plan.map((request, i) => ({ request, material: materials[i]! })),
      );
    }
    const queue: Array<{ request: DealerRequest; material: Material }> = [];
    for (let i = 0; i < plan.length; i++) {
      const r = plan[i]!;
      if (r.kind === 'and') {
        // A run of AND requests (one per round of a circuit) is fetched as one batch: an OT
        // provider then runs one extension for all of them instead of one per round.
        let j = i;
        while (j + 1 < plan.length && plan[j + 1]!.kind === 'and' && AND_BATCH_WORDS > sumWords(plan.slice(i, j + 2))) j++;
        const run = plan.slice(i, j + 1) as Array<{ kind: 'and'; words: number }>;
        const all = await inner.andTriple(sumWords(run));
        let at = 0;
        for (const req of run) {
          const part = (x: Uint32Array) => x.subarray(at, at + req.words);
          queue.push({ request: req, material: { a: part(all.a), b: part(all.b), c: part(all.c) } });
          at += req.words;
        }
        i = j;
        continue;
      }
      const material =
        r.kind === 'triple' ? await inner.triple(r.n) : r.kind === 'matmul' ? await inner.matmulTriple(r.m, r.k, r.n) : await inner.daBits(r.n);
      queue.push({ request: r, material });
    }
    return new PreprocessedProvider(inner, queue);
  }

  /** Requests of the plan not served yet. */
  get remaining(): number {
    return this.queue.length;
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
