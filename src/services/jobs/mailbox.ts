/**
 * Job-scoped mailboxes: how a job talks to outside participants (seed 003's hosts) that sit behind
 * firewalls. The servers never connect to a participant: participants poll the compute server for
 * messages addressed to them and post theirs (mailbox-routes.ts); a running job sends and receives
 * through its JobContext. Messages are opaque bytes (the federated kind sends only ciphertexts and
 * protocol flags), held in memory: a compute server restart loses them (docs/federated.md).
 */

import { randomUUID } from 'node:crypto';

/** A message to a participant, numbered so a poller asks only for what is new. */
export interface OutboundMessage {
  seq: number;
  to: string;
  topic: string;
  data: Buffer;
}

/** Bounds per job, so a participant cannot fill the server's memory. */
export const MAX_MESSAGE_BYTES = 16 * 1024 * 1024;
const MAX_PENDING_PER_PARTY = 64;

export class JobMailbox {
  /** Names this mailbox: after a compute server restart participants see a new one and read it from the start. */
  readonly epoch = randomUUID();
  private readonly inbound = new Map<string, Map<string, Buffer>>();
  /** Topics a job already took from a party: a second post of one (a rejoined host replaying) is ignored. */
  private readonly taken = new Set<string>();
  private readonly outbound: OutboundMessage[] = [];
  private readonly lastSeen = new Map<string, number>();
  /** Numbers keep growing across resets, so a participant polling `after` a number still sees what is new. */
  private seq = 0;

  /**
   * Forgets every message (a job that runs again after an outage starts its protocol over): what
   * participants posted and what was sent them. Participants see the job's new first message next.
   * Before the first message is sent it keeps what was posted.
   */
  reset(): void {
    // Nothing sent yet: this is the first run, and what arrived before it (a participant that posted
    // while the job waited in the queue) belongs to it.
    if (this.seq === 0 && this.taken.size === 0) return;
    this.inbound.clear();
    this.taken.clear();
    this.outbound.length = 0;
  }

  /** Stores a participant's message; false when the topic was already posted or taken (first wins). */
  post(from: string, topic: string, data: Buffer): boolean {
    const key = `${from}\n${topic}`;
    const mine = this.inbound.get(from) ?? new Map<string, Buffer>();
    if (this.taken.has(key) || mine.has(topic)) return false;
    if (mine.size >= MAX_PENDING_PER_PARTY) return false;
    mine.set(topic, data);
    this.inbound.set(from, mine);
    return true;
  }

  /** Takes a participant's message on `topic` if it has arrived. */
  take(from: string, topic: string): Buffer | undefined {
    const mine = this.inbound.get(from);
    const data = mine?.get(topic);
    if (data === undefined) return undefined;
    mine!.delete(topic);
    this.taken.add(`${from}\n${topic}`);
    return data;
  }

  send(to: string, topic: string, data: Buffer): void {
    this.outbound.push({ seq: ++this.seq, to, topic, data });
  }

  /** Messages for `to` numbered above `after`; also notes that the participant is present. */
  read(to: string, after: number): OutboundMessage[] {
    this.lastSeen.set(to, Date.now());
    return this.outbound.filter((m) => m.to === to && m.seq > after);
  }

  /** When the participant last polled (undefined: never). */
  seen(party: string): number | undefined {
    return this.lastSeen.get(party);
  }
}

/** Every job's mailbox on this compute server; a finished job's stays a while so participants read its last messages. */
export class Mailboxes {
  private readonly boxes = new Map<string, JobMailbox>();

  of(jobId: string): JobMailbox {
    let b = this.boxes.get(jobId);
    if (!b) this.boxes.set(jobId, (b = new JobMailbox()));
    return b;
  }

  has(jobId: string): boolean {
    return this.boxes.has(jobId);
  }

  /** Forgets a finished job's mailbox after `ms`. */
  retire(jobId: string, ms = 600_000): void {
    setTimeout(() => this.boxes.delete(jobId), ms).unref();
  }
}
