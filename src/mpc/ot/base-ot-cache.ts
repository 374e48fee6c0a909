/**
 * Base OTs once per pair of servers, forked for each engine session. The public-key work of the
 * base OTs (about 500 ristretto255 multiplications a side) would otherwise dominate every short
 * session, such as one k-means chunk's argmin.
 *
 * A fork for session sid replaces each base key k by H(k, sid): the IKNP receiver still knows both
 * keys of every pair, the sender still knows only the one its secret choice bits select, and
 * distinct session ids give independent PRG seeds, so each fork is a fresh IKNP extension with the
 * same choice vector, as one long extension cut into segments would be (libOTe's `split` does the
 * same). A session id must never be forked twice from one base: the same seeds with new choices
 * would show the other party the XOR of the choices. The key server therefore remembers the ids it
 * forked and refuses a repeat, and retires a base after MAX_FORKS sessions.
 */
import { createHash, randomBytes } from 'node:crypto';
import { CiphermineError } from '../../crypto/errors.js';
import { MpcChannelError, type PartyChannel } from '../channel.js';
import { baseOts, BASE_OTS, type BaseOtResult } from './base-ot.js';

/** Sessions forked from one base before it is retired (then both sides run new base OTs). */
export const MAX_FORKS = 4096;

/** One party's base OTs: its choice bits as IKNP sender, and both directions' keys. */
export interface OtBase extends BaseOtResult {
  choices: Uint8Array;
}

/** A session's keys, in the shape OtProvider starts from. */
export type ForkedBase = OtBase;

const derive = (key: Uint8Array, session: string): Buffer =>
  createHash('sha256').update('ciphermine OT fork v1\0').update(session).update('\0').update(key).digest().subarray(0, key.length);

export function forkBase(base: OtBase, session: string): ForkedBase {
  return {
    choices: base.choices,
    sent: base.sent.map(([k0, k1]) => [derive(k0, session), derive(k1, session)]),
    received: base.received.map((k) => derive(k, session)),
  };
}

/** Runs fresh base OTs over `channel` (both parties call this). */
export async function newBase(channel: PartyChannel): Promise<OtBase> {
  const choices = randomBytes(BASE_OTS / 8);
  return { choices, ...(await baseOts(channel, choices)) };
}

export class UnknownOtBaseError extends CiphermineError {
  constructor(id: string) {
    super('ERR_UNKNOWN_OT_BASE', `the key server holds no base OTs ${JSON.stringify(id)} (restarted or retired): run new ones`);
  }
}

/** The key server's bases, by id, with the sessions forked from each. Bounded. */
export class BaseOtStore {
  private readonly bases = new Map<string, { base: OtBase; forked: Set<string> }>();
  constructor(private readonly capacity = 16) {}

  add(id: string, base: OtBase): void {
    if (this.bases.has(id)) throw new MpcChannelError(`base OTs ${id} already exist`);
    if (this.bases.size >= this.capacity) this.bases.delete(this.bases.keys().next().value!);
    this.bases.set(id, { base, forked: new Set() });
  }

  /** The fork of base `id` for `session`; a repeated session or an exhausted base is refused. */
  fork(id: string, session: string): ForkedBase {
    const entry = this.bases.get(id);
    if (!entry || entry.forked.size >= MAX_FORKS) {
      this.bases.delete(id);
      throw new UnknownOtBaseError(id);
    }
    if (entry.forked.has(session)) throw new MpcChannelError(`session ${session} was already forked from base OTs ${id}`);
    entry.forked.add(session);
    return forkBase(entry.base, session);
  }
}
