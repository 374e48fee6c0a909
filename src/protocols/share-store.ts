/**
 * The key server's (KMS, Bob) store of shared records: for a k-means job it keeps X' = x + c, each
 * record value statistically blinded by the compute server's c (what it decrypted anyway while
 * converting the job's data), so later iterations need no decryption per record.
 *
 * Bounded by the number of values across all sets (MAX_SHARED_VALUES, about 40 bytes each): a new
 * set pushes out the least recently used ones, never the one being written. A set that is gone
 * (restart, eviction) or incomplete is reported as ERR_UNKNOWN_SHARE and the compute server shares
 * again; jobs larger than the bound do not ask for a share (the k-means loop uses SDM instead). The
 * compute server drops a job's set when the job ends.
 */
import { CiphermineError } from '../crypto/errors.js';
import { ProtocolError } from './messages.js';

/** Values one key server keeps for all running jobs together (~320 MB). */
export const MAX_SHARED_VALUES = 1 << 23;

export class UnknownShareError extends CiphermineError {
  constructor(id: string) {
    super('ERR_UNKNOWN_SHARE', `no complete shared records ${id} at the key server (restarted?); share again`);
  }
}

/** A range past the end of what this process holds of a share (another replica may hold more). */
class ShortShareError extends ProtocolError {
  constructor() {
    super('records outside the share');
  }
}

interface ShareSet {
  key: string;
  values: Array<bigint | undefined>;
}

/**
 * Where key-server replicas keep shares for each other (services/key-server-store.ts): every part
 * written goes there too, and a replica that lacks a set loads it from there.
 */
export interface ShareBacking {
  putShare(id: string, key: string, offset: number, values: readonly bigint[]): Promise<void>;
  share(id: string): Promise<Array<{ key: string; offset: number; values: bigint[] }>>;
  dropShare(id: string): Promise<boolean>;
}

export class ShareStore {
  /** In order of last use, least recent first. */
  private readonly sets = new Map<string, ShareSet>();
  private total = 0;

  constructor(private readonly backing?: ShareBacking) {}

  async put(id: string, key: string, offset: number, values: readonly bigint[]): Promise<void> {
    this.putHere(id, key, offset, values);
    await this.backing?.putShare(id, key, offset, values);
  }

  async get(id: string, key: string, offset: number, count: number): Promise<bigint[]> {
    try {
      return this.getHere(id, key, offset, count);
    } catch (e) {
      if (!(e instanceof UnknownShareError || e instanceof ShortShareError) || !this.backing) throw e;
    }
    // Another replica wrote it, or wrote parts of it this one has not seen (or this one evicted
    // it): read every part from the shared database.
    const parts = await this.backing.share(id);
    if (parts.length === 0) throw new UnknownShareError(id);
    this.dropHere(id);
    for (const p of parts) this.putHere(id, p.key, p.offset, p.values);
    return this.getHere(id, key, offset, count);
  }

  /** True when there was such a set. */
  async drop(id: string): Promise<boolean> {
    const here = this.dropHere(id);
    const there = (await this.backing?.dropShare(id)) ?? false;
    return here || there;
  }

  private putHere(id: string, key: string, offset: number, values: readonly bigint[]): void {
    const end = offset + values.length;
    if (!Number.isInteger(offset) || offset < 0 || end > MAX_SHARED_VALUES) throw new ProtocolError('share range out of bounds');
    const set = this.touch(id) ?? { key, values: [] };
    if (set.key !== key) throw new ProtocolError('share belongs to another key');
    this.sets.set(id, set);
    const grow = Math.max(0, end - set.values.length);
    for (const other of this.sets.keys()) {
      if (this.total + grow <= MAX_SHARED_VALUES) break;
      if (other !== id) this.dropHere(other);
    }
    if (this.total + grow > MAX_SHARED_VALUES) throw new ProtocolError('the key server keeps no more shared values');
    while (set.values.length < end) set.values.push(undefined);
    this.total += grow;
    values.forEach((v, i) => (set.values[offset + i] = v));
  }

  private getHere(id: string, key: string, offset: number, count: number): bigint[] {
    const set = this.touch(id);
    if (!set || set.key !== key) throw new UnknownShareError(id);
    if (!Number.isInteger(offset) || offset < 0 || !Number.isInteger(count) || count < 0) throw new ProtocolError('records outside the share');
    if (offset + count > set.values.length) throw new ShortShareError();
    const out = set.values.slice(offset, offset + count);
    if (out.some((v) => v === undefined)) throw new UnknownShareError(id);
    return out as bigint[];
  }

  private dropHere(id: string): boolean {
    const set = this.sets.get(id);
    if (!set) return false;
    this.total -= set.values.length;
    return this.sets.delete(id);
  }

  private touch(id: string): ShareSet | undefined {
    const set = this.sets.get(id);
    if (set) {
      this.sets.delete(id);
      this.sets.set(id, set);
    }
    return set;
  }
}
