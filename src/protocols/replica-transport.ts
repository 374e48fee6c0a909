/**
 * The compute side's link to several key-server (KMS) replicas (issue 17): the replicas share the
 * master key (each loads it from its own 0600 key file) and keep what must be shared in one
 * database, so any of them can answer any request. A process stays with one replica while it
 * answers, because an engine session and a batch of base OTs live in the replica that started
 * them; when that replica cannot be reached, the call fails as an outage (the job or the task
 * retries) and the next call goes to another replica.
 */
import { HttpTransport } from './http-transport.js';
import { RemoteError, type CallOptions, type Transport } from './transport.js';

/** How long a replica that could not be reached is passed over. */
const DOWN_FOR_MS = 2000;

export class ReplicaTransport implements Transport {
  private readonly replicas: HttpTransport[];
  private readonly downUntil: number[];
  private current: number;

  constructor(
    readonly urls: readonly string[],
    hmacKey: Uint8Array,
    opts: { fingerprints?: readonly (string | undefined)[] } = {},
  ) {
    if (urls.length === 0) throw new RangeError('at least one key server');
    this.replicas = urls.map((u, i) => new HttpTransport(u, hmacKey, { fingerprint: opts.fingerprints?.[i] ?? opts.fingerprints?.[0] }));
    this.downUntil = urls.map(() => 0);
    // The first URL is this process's preferred replica: listing the replicas in different orders
    // on different workers spreads the load without a balancer in front.
    this.current = 0;
  }

  /** The replica this process talks to now. */
  get replica(): string {
    return this.urls[this.current]!;
  }

  async call(method: string, body: Uint8Array, opts?: CallOptions): Promise<Uint8Array> {
    const at = this.current;
    try {
      return await this.replicas[at]!.call(method, body, opts);
    } catch (e) {
      if (e instanceof RemoteError && e.code === 'ERR_UNREACHABLE') this.failOver(at);
      throw e;
    }
  }

  /** Passes over replica `at` for a while and moves to the next one that is not passed over. */
  private failOver(at: number): void {
    this.downUntil[at] = Date.now() + DOWN_FOR_MS;
    if (this.current !== at) return;
    const n = this.urls.length;
    for (let step = 1; step <= n; step++) {
      const next = (at + step) % n;
      if (this.downUntil[next]! <= Date.now()) {
        this.current = next;
        return;
      }
    }
    this.current = (at + 1) % n;
  }

  async close(): Promise<void> {
    await Promise.all(this.replicas.map((r) => r.close()));
  }
}

/** The transport to one key server, or to replicas of it (a comma-separated list of URLs). */
export function keyServerTransport(urls: string, hmacKey: Uint8Array, opts: { fingerprint?: string } = {}): Transport {
  const list = urls
    .split(',')
    .map((u) => u.trim())
    .filter(Boolean);
  return list.length === 1 ? new HttpTransport(list[0]!, hmacKey, opts) : new ReplicaTransport(list, hmacKey, { fingerprints: [opts.fingerprint] });
}
