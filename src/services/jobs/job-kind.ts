/**
 * A job kind: everything the system needs to offer one capability. The spec and result schemas (zod)
 * are the single definition the server validates with, the client library decodes with and the CLI
 * builds from; `admit` checks a parsed spec against the store before anything is stored (grants,
 * shapes, bit budgets) and names the privacy-budget charge, if any, that is taken with the job's
 * creation; `run` does the work in steps, saving a checkpoint or a named intermediate after each,
 * so that a restart of either server resumes rather than starts over. A new capability is one new
 * kind (see count-records in test/services/job-kinds.test.ts for the smallest one) plus its
 * algorithm in analytics/.
 */
import type { KeyObject } from 'node:crypto';
import type { z } from 'zod';
import type { BcpParams, BcpPublicKey } from '../../crypto/index.js';
import type { ComputeSideContext } from '../../protocols/index.js';
import type { NoiseControl } from '../../analytics/stats-secure.js';
import type { BudgetCharge, Checkpoint, Party, Store } from '../store/index.js';
import type { JobProgress } from './job-status.js';
import type { FanOutOptions, TaskHandler } from './tasks.js';

/** What a job runs against: the compute server's (CCS) state and its side of the protocols. */
export interface JobServices {
  store: Store;
  /** The transport to the key server (KMS) and the worker pool. */
  compute: ComputeSideContext;
  params: BcpParams;
  /** Unwraps owners' AES envelopes; opens no ciphertext. */
  x25519: KeyObject;
  /** Test-only noise hooks (never set from the CLI or the environment). */
  noise: NoiseControl;
  /**
   * Records per k-means assignment task (`--block-records`): smaller blocks spread an iteration
   * over more compute workers; default 1024 (16384 with a dealer).
   */
  blockRecords?: number;
  /**
   * The k-means conversion does not leave the key server the record share as it goes; the loop
   * shares the converted records once instead. Set with compute workers (`--queue`), where a task
   * may run twice at once (a worker presumed dead that was only slow), and with key-server
   * replicas, where a conversion part written again after a restart could reach another replica
   * than the first time: in both cases the key server could keep other blinds than the stored
   * result's. A share made in one call under a fresh id cannot differ so.
   */
  separateRecordShare?: boolean;
}

export interface AdmitContext {
  services: JobServices;
  client: Party;
}

export interface Admission<S> {
  /** The spec as it will be stored and run (defaults filled in, e.g. k-means' initial records). */
  spec: S;
  charge?: BudgetCharge;
}

export interface JobContext<S> {
  readonly id: string;
  readonly spec: S;
  readonly client: Party;
  readonly services: JobServices;
  /** Runs one phase: shown as the job's phase while it runs, its seconds added to the timings. */
  phase<T>(name: string, work: () => Promise<T>): Promise<T>;
  /**
   * Reports progress in the kind's own unit (iterations, values, ...), with public words on where
   * it is and, for the client's eyes only, values encrypted under its key.
   */
  progress(done: number, total: number, unit: string, extra?: Pick<JobProgress, 'note' | 'secret'>): Promise<void>;
  /** Adds seconds to a named timing (for steps inside a phase, e.g. each iteration). */
  time(name: string, seconds: number): Promise<void>;
  latestCheckpoint(): Promise<Checkpoint | undefined>;
  /** Replaces the job's checkpoint and its progress together. */
  saveCheckpoint(cp: Checkpoint, progress?: { done: number; total: number; unit: string }): Promise<void>;
  /** A named intermediate made once per job: after a restart it is read back, not made again. */
  once(name: string, make: () => Promise<Buffer[]>): Promise<Buffer[]>;
  /** This job's key pk_c, made by the key server on first use and remembered with the job. */
  jobKey(): Promise<BcpPublicKey>;
  /**
   * From here on the job's privacy charge stays even if an outage ends it: call it before a step
   * that shows a server something derived from the data (the mode's choice), which a refund would
   * leave uncounted.
   */
  keepCharge(): Promise<void>;
  /** The job's mailbox to its outside participants (JobKind.participants; mailbox.ts). */
  readonly mailbox: JobMailboxContext;
  /**
   * Runs a step as chunk tasks (tasks.ts): chunk i runs the kind's task `task` on inputs[i], here
   * or on the compute workers, and its result is stored once; chunks done before a restart are not
   * run again. Returns the results in chunk order.
   */
  fanOut(step: string, task: string, inputs: readonly unknown[], opts?: FanOutOptions): Promise<Buffer[]>;
  /** Forgets the stored chunk results of steps whose names start with `prefix` (folded into a checkpoint). */
  dropSteps(prefix: string): Promise<void>;
  /** Forgets the job's named intermediates whose names start with `prefix` (per-iteration plans, shares' blinds). */
  dropBlobs(prefix: string): Promise<void>;
}

/** A job's side of its mailbox: participants poll for what it sends and post what it receives. */
export interface JobMailboxContext {
  send(to: string, topic: string, data: Buffer): void;
  /** Waits up to `timeoutMs` for a participant's message on `topic`; undefined if none came. */
  receive(from: string, topic: string, timeoutMs: number): Promise<Buffer | undefined>;
  /** When the participant last polled (undefined: never). */
  seen(party: string): number | undefined;
  /** Forgets all messages, for a protocol that starts over when the job runs again. */
  reset(): void;
}

export interface JobKind<S = any, R = any> {
  readonly name: string;
  /** One line for `GET /v1/job-kinds` and the CLI's help. */
  readonly description: string;
  readonly spec: z.ZodType<S, any>;
  readonly result: z.ZodType<R, any>;
  admit(ctx: AdmitContext, spec: S): Promise<Admission<S>>;
  run(ctx: JobContext<S>): Promise<R>;
  /**
   * Parties besides the client that take part in a job of this kind (seed 003's hosts): they may
   * read and post the job's mailbox. Absent: nobody but the servers.
   */
  participants?(spec: S): readonly string[];
  /** The chunk tasks its steps fan out (JobContext.fanOut), by name; a worker runs them. */
  readonly tasks?: Readonly<Record<string, TaskHandler<S>>>;
}

/** Identity, for type inference of S and R at the definition. */
export function defineJobKind<S, R>(kind: JobKind<S, R>): JobKind<S, R> {
  return kind;
}
