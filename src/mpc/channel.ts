/**
 * The link between the two computing parties (party 0: the compute server, CCS; party 1: the key
 * server, KMS): each protocol round sends one message per party and receives the other's. Rounds
 * and bytes are counted here, so every protocol's cost is measured the same way. Messages are
 * checked for the expected size before use: a malformed or oversized message is refused.
 */
import { CiphermineError } from '../crypto/errors.js';

export class MpcChannelError extends CiphermineError {
  constructor(message: string) {
    super('ERR_BAD_REQUEST', message);
  }
}

/** The key server restarted and lost the session's state: an outage, retried from the last checkpoint. */
export class MpcSessionLostError extends CiphermineError {
  constructor(message: string) {
    super('ERR_SESSION_LOST', message);
  }
}

export interface ChannelCounters {
  rounds: number;
  bytesSent: number;
}

export interface PartyChannel {
  /** Sends this party's message of the round and returns the other party's. */
  exchange(message: Uint8Array): Promise<Uint8Array>;
  readonly counters: ChannelCounters;
}

/** Largest message of one round (a tensor of 2^24 ring elements). */
export const MAX_MESSAGE_BYTES = 8 << 24;

class Mailbox {
  private readonly waiting: Array<(m: Uint8Array) => void> = [];
  private readonly queued: Uint8Array[] = [];
  closedWith?: Error;
  private readonly failers: Array<(e: Error) => void> = [];

  put(m: Uint8Array): void {
    const w = this.waiting.shift();
    this.failers.shift();
    if (w) w(m);
    else this.queued.push(m);
  }

  take(): Promise<Uint8Array> {
    const m = this.queued.shift();
    if (m) return Promise.resolve(m);
    if (this.closedWith) return Promise.reject(this.closedWith);
    return new Promise((resolve, reject) => {
      this.waiting.push(resolve);
      this.failers.push(reject);
    });
  }

  close(e: Error): void {
    this.closedWith = e;
    for (const f of this.failers.splice(0)) f(e);
    this.waiting.length = 0;
  }
}

class InMemoryChannel implements PartyChannel {
  readonly counters: ChannelCounters = { rounds: 0, bytesSent: 0 };
  constructor(
    private readonly inbox: Mailbox,
    private readonly outbox: Mailbox,
  ) {}

  async exchange(message: Uint8Array): Promise<Uint8Array> {
    if (message.length > MAX_MESSAGE_BYTES) throw new MpcChannelError(`a ${message.length}-byte message exceeds the ${MAX_MESSAGE_BYTES}-byte limit`);
    this.counters.rounds++;
    this.counters.bytesSent += message.length;
    this.outbox.put(Uint8Array.from(message));
    return this.inbox.take();
  }

  /** The other party disappears: pending and later exchanges fail with a clear error. */
  disconnect(): void {
    const e = new MpcChannelError('the other party disconnected mid-protocol');
    this.inbox.close(e);
    this.outbox.close(e);
  }
}

/** Two connected in-memory channels, for tests and single-process use. */
export function channelPair(): [InMemoryChannel, InMemoryChannel] {
  const a = new Mailbox();
  const b = new Mailbox();
  return [new InMemoryChannel(a, b), new InMemoryChannel(b, a)];
}

/** Reads a message as `n` ring elements, refusing any other size. */
export function asRing(message: Uint8Array, n: number): BigUint64Array {
  if (message.length !== 8 * n) throw new MpcChannelError(`expected ${8 * n} bytes (${n} ring elements), got ${message.length}`);
  return new BigUint64Array(new Uint8Array(message).buffer, 0, n);
}

/** Reads a message as `n` 32-bit words, refusing any other size. */
export function asWords(message: Uint8Array, n: number): Uint32Array {
  if (message.length !== 4 * n) throw new MpcChannelError(`expected ${4 * n} bytes (${n} words), got ${message.length}`);
  return new Uint32Array(new Uint8Array(message).buffer, 0, n);
}

export const bytesOf = (a: BigUint64Array | Uint32Array): Uint8Array => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
