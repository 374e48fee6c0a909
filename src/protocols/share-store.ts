/**
 * The key server's (KMS, Bob) store of shared records: for a k-means job it keeps X' = x + c, each
 * record value statistically blinded by the compute server's c (what it decrypted anyway while
 * converting the job's data), so later iterations need no decryption per record. Bounded: at most
 * MAX_SHARES sets (the oldest goes first) and MAX_VALUES values each. A set that is gone (restart,
 * eviction) is reported as ERR_UNKNOWN_SHARE and the compute server shares again.
 */
import { CiphermineError } from '../crypto/errors.js';
import { ProtocolError } from './messages.js';

const MAX_SHARES = 32;
const MAX_VALUES = 1 << 26;

export class UnknownShareError extends CiphermineError {
  constructor(id: string) {
    super('ERR_UNKNOWN_SHARE', `no shared records ${id} at the key server (restarted?); share again`);
  }
}

interface ShareSet {
  key: string;
  values: Array<bigint | undefined>;
}

export class ShareStore {
  private readonly sets = new Map<string, ShareSet>();

  put(id: string, key: string, offset: number, values: readonly bigint[]): void {
    if (!Number.isInteger(offset) || offset < 0 || offset + values.length > MAX_VALUES) throw new ProtocolError('share range out of bounds');
    let set = this.sets.get(id);
    if (set && set.key !== key) throw new ProtocolError('share belongs to another key');
    if (!set) {
      if (this.sets.size >= MAX_SHARES) this.sets.delete(this.sets.keys().next().value!);
      set = { key, values: [] };
      this.sets.set(id, set);
    }
    values.forEach((v, i) => (set.values[offset + i] = v));
  }

  get(id: string, key: string, offset: number, count: number): bigint[] {
    const set = this.sets.get(id);
    if (!set || set.key !== key) throw new UnknownShareError(id);
    if (!Number.isInteger(offset) || offset < 0 || !Number.isInteger(count) || count < 0) throw new ProtocolError('bad share range');
    const out = set.values.slice(offset, offset + count);
    if (out.length !== count || out.some((v) => v === undefined)) throw new UnknownShareError(id);
    return out as bigint[];
  }
}
