/**
 * A host of federated k-means (seed 003's Host A, Host B, ..., any number): it keeps its table,
 * connects out to the compute server only (it polls the job's mailbox, so it can sit behind a
 * firewall), and per round sends nothing but ciphertexts under the job key: its column moments for
 * the private mean, its initial rows, then its per-cluster sums and counts. It decrypts the totals
 * the servers release to its own key, takes the next step locally (federated-kmeans.ts) and decides
 * with the other hosts, who hold the same totals, when to stop.
 *
 * A host is a registered party with its own BCP key (a query client's identity). A host that
 * restarts reads the job's messages from the beginning, replays its steps from its table and goes on
 * where the job is (the job waits `hostTimeoutSeconds` for it).
 */
import { randomInt } from 'node:crypto';
import { ParameterError } from '../crypto/errors.js';
import {
  deserializeCiphertexts,
  deserializePublicKey,
  deserializeSecretKey,
  serializeCiphertexts,
  FixedPointCodec,
  type BcpPublicKey,
  type BcpSecretKey,
} from '../crypto/index.js';
import type { ClusterState } from '../analytics/kmeans-plain.js';
import {
  clusterFromVector,
  clusterVector,
  denormalize,
  localClusterStats,
  localMoments,
  momentsFromVector,
  momentsVector,
  movedLessThan,
  nextState,
  normalizeRow,
  type Normalizer,
} from '../analytics/federated-kmeans.js';
import { hostStart, release, type HostStart } from '../services/jobs/kinds/federated-kmeans-schema.js';
import { unpackSigned } from '../protocols/sct-fanout.js';
import { ApiError, ComputeServerApi, isTransient } from './api.js';
import type { IdentityFile } from './identity.js';
import type { NumericTable } from './csv.js';

export interface HostOutcome {
  columns: string[];
  /** Final centres in the input's units (for display; the exact values are sums / sizes). */
  centroids: number[][];
  /** Exact centre sums in normalised fixed-point units, with the sizes: centre = sum / size / 2^f. */
  sums: bigint[][];
  sizes: bigint[];
  /** The cluster of each of this host's rows, under the final centres. */
  assignments: number[];
  iterations: number;
  converged: boolean;
  normalizer: Normalizer;
  /** The initial centres (normalised, fixed point), as released to this host. */
  initial: bigint[][];
  /** The global totals (sums and counts) released in each iteration, as this host decrypted them (noisy under epsilon). */
  rounds: ClusterState[];
  /** Seconds this host spent encoding and normalising (once), assigning (once per iteration and once at the end), and encrypting and decrypting. */
  seconds: { prepare: number; assign: number; crypto: number };
}

export interface JoinOptions {
  /** One line per step, for a progress display. */
  onEvent?: (msg: string) => void;
  pollMs?: number;
  /** Leaves the job (the job waits its timeout for this host to come back). */
  signal?: AbortSignal;
}

interface Message {
  seq: number;
  topic: string;
  data: string;
}

interface Mailbox {
  epoch: string;
  state: string;
  error: string | null;
  errorCode: string | null;
  messages: Message[];
}

const round3 = (x: number) => Number(x.toFixed(3));

/** A message to post; made lazily, so a host replaying old rounds encrypts only its latest. */
type Post = { topic: string; body: () => unknown };

/** One host's run of one job: the state it rebuilds from the job's messages. */
class HostRun {
  private start?: HostStart;
  private jobKey?: BcpPublicKey;
  private encoded: bigint[][] = [];
  private normalizer?: Normalizer;
  private rows: bigint[][] = [];
  private state?: ClusterState;
  private iterations = 0;
  private converged = false;
  private readonly rounds: ClusterState[] = [];
  private initial: bigint[][] = [];
  private readonly seconds = { prepare: 0, assign: 0, crypto: 0 };
  finished = false;

  constructor(
    private readonly sk: BcpSecretKey,
    private readonly table: NumericTable,
    private readonly say: (msg: string) => void,
  ) {}

  /** Handles one message of the job; returns what the host must post next, if anything. */
  handle(msg: Message): Post[] {
    const data = Buffer.from(msg.data, 'base64');
    if (msg.topic === 'start') return this.onStart(hostStart.parse(JSON.parse(data.toString('utf8'))));
    const totals = this.open(data);
    if (msg.topic === 'moments') return [this.onMoments(totals)];
    if (msg.topic === 'init') return [this.onInit(totals)];
    const t = /^round-(\d+)$/.exec(msg.topic);
    if (t) return [this.onRound(Number(t[1]), totals)];
    return [];
  }

  outcome(): HostOutcome {
    const s = this.start!;
    const scale = 2 ** s.fractionBits;
    const st = this.state!;
    return {
      columns: s.columns,
      sums: st.sums,
      sizes: st.sizes,
      centroids: st.sums.map((sum, j) => sum.map((x, a) => denormalize(this.normalizer!, a, Number(x) / Number(st.sizes[j]!) / scale))),
      assignments: this.timed('assign', () => localClusterStats(this.rows, st).assignments),
      iterations: this.iterations,
      converged: this.converged,
      normalizer: this.normalizer!,
      rounds: this.rounds,
      initial: this.initial,
      seconds: { prepare: round3(this.seconds.prepare), assign: round3(this.seconds.assign), crypto: round3(this.seconds.crypto) },
    };
  }

  private timed<T>(what: 'prepare' | 'assign' | 'crypto', f: () => T): T {
    const t = performance.now();
    try {
      return f();
    } finally {
      this.seconds[what] += (performance.now() - t) / 1000;
    }
  }

  /** A release: packs of signed slots under this host's key (sct-fanout.ts). */
  private open(data: Buffer): bigint[] {
    const r = release.parse(JSON.parse(data.toString('utf8')));
    const pk = this.sk.publicKey;
    const packs = this.timed('crypto', () => deserializeCiphertexts(Buffer.from(r.cts, 'base64'), pk).map((c) => this.sk.decrypt(c)));
    return unpackSigned(packs, pk.params.N, r.slotBits, r.count);
  }

  private encrypt(v: readonly bigint[]): { cts: string } {
    const key = this.jobKey!;
    return this.timed('crypto', () => ({
      cts: serializeCiphertexts(
        key,
        v.map((x) => key.encrypt(x)),
      ).toString('base64'),
    }));
  }

  /** Joins (the job checks the columns) and sends the moments for the private mean. */
  private onStart(s: HostStart): Post[] {
    // A second start means the job began again (after an outage): everything before it is void.
    this.rounds.length = 0;
    this.finished = false;
    this.start = s;
    this.jobKey = deserializePublicKey(Buffer.from(s.jobKey, 'base64'), this.sk.publicKey.params);
    // Fixed-base tables for g and pk_c: every later encryption is then a few table look-ups.
    this.timed('crypto', () => this.jobKey!.precompute());
    const columns = this.table.columns;
    const join = { topic: 'join', body: () => ({ columns }) };
    if (columns.join('\n') !== s.columns.join('\n')) return [join]; // the job names the mismatch
    try {
      const codec = new FixedPointCodec({ fractionBits: s.fractionBits, maxAbs: s.maxAbs });
      this.encoded = this.timed('prepare', () => this.table.rows.map((r) => codec.encodeRow(r)));
    } catch (e) {
      this.say(`cannot encode this table for the job: ${(e as Error).message}`);
      return [{ topic: 'join', body: () => ({ columns, abort: 'a value lies outside the range the job declares (maxAbs)' }) }];
    }
    const bad = s.init !== 'random' && s.init.find((i) => i.row >= this.encoded.length);
    if (bad) return [{ topic: 'join', body: () => ({ columns, abort: `an initial row is beyond this host's ${this.encoded.length} rows` }) }];
    this.say(`joined: ${this.encoded.length} local records x ${columns.length} columns, k = ${s.k}`);
    const moments = this.timed('prepare', () => localMoments(this.encoded, columns.length));
    return [join, { topic: 'moments', body: () => this.encrypt(momentsVector(moments, s.normalize)) }];
  }

  private onMoments(totals: bigint[]): Post {
    const s = this.start!;
    const moments = momentsFromVector(totals, s.columns.length, s.normalize);
    if (moments.count < BigInt(s.k))
      return { topic: 'init', body: () => ({ abort: `k = ${s.k} is larger than the ${moments.count} records the hosts hold in total` }) };
    this.normalizer = { kind: s.normalize, moments, fractionBits: s.fractionBits };
    this.rows = this.timed('prepare', () => this.encoded.map((r) => normalizeRow(this.normalizer!, r)));
    this.say(`private ${s.normalize === 'none' ? 'count' : s.normalize} over ${moments.count} records in total`);
    const m = s.columns.length;
    const mine = new Array<bigint>(s.k * m).fill(0n);
    for (const { cluster, row } of s.init === 'random' ? this.candidates(s.k) : s.init)
      this.rows[row]!.forEach((x, a) => (mine[cluster * m + a] = x));
    return { topic: 'init', body: () => this.encrypt(mine) };
  }

  /** A random start: k distinct rows of this host's (repeating only when it holds fewer than k). */
  private candidates(k: number): Array<{ cluster: number; row: number }> {
    const order = this.rows.map((_, i) => i);
    for (let i = order.length - 1; i > 0; i--) {
      const j = randomInt(i + 1);
      [order[i], order[j]] = [order[j]!, order[i]!];
    }
    return Array.from({ length: k }, (_, cluster) => ({ cluster, row: order[cluster % order.length]! }));
  }

  private onInit(totals: bigint[]): Post {
    const s = this.start!;
    const m = s.columns.length;
    this.state = { sums: Array.from({ length: s.k }, (_, j) => totals.slice(j * m, (j + 1) * m)), sizes: new Array<bigint>(s.k).fill(1n) };
    this.initial = this.state.sums;
    return this.contribution(1);
  }

  private onRound(t: number, totals: bigint[]): Post {
    const s = this.start!;
    const released = clusterFromVector(totals, s.k, s.columns.length);
    this.rounds[t - 1] = released;
    const next = nextState(this.state!, released);
    const converged = movedLessThan(this.state!, next, s.tolerance, s.fractionBits);
    this.state = next;
    this.iterations = t;
    this.say(`iteration ${t}: sizes ${next.sizes.join(' ')}${converged ? ' (converged)' : ''}`);
    if (!converged && t < s.maxIter) return this.contribution(t + 1);
    this.converged = converged;
    this.finished = true;
    return { topic: `round-${t + 1}`, body: () => ({ stop: true, converged }) };
  }

  private contribution(t: number): Post {
    const state = this.state!;
    return { topic: `round-${t}`, body: () => this.encrypt(clusterVector(this.timed('assign', () => localClusterStats(this.rows, state).totals))) };
  }
}

export class Host {
  private constructor(
    readonly id: string,
    private readonly api: ComputeServerApi,
    readonly sk: BcpSecretKey,
  ) {}

  /** A host acts with a registered party's identity (`client register` makes one). */
  static fromIdentity(f: IdentityFile): Host {
    if (f.role !== 'client') throw new ParameterError(`identity ${f.id} is a data owner's; a host needs its own party identity (client register)`);
    const api = new ComputeServerApi(f.server, f.token, { tls: f.pins?.tls, params: f.pins?.params });
    return new Host(f.id, api, deserializeSecretKey(Buffer.from(f.bcpSecretKey, 'base64')));
  }

  /** Takes part in federated k-means job `jobId` with `table` (kept here) until the job ends. */
  async join(jobId: string, table: NumericTable, o: JoinOptions = {}): Promise<HostOutcome> {
    const run = new HostRun(this.sk, table, o.onEvent ?? (() => undefined));
    const path = `/v1/jobs/${encodeURIComponent(jobId)}/mailbox`;
    let after = 0;
    let epoch: string | undefined;
    for (;;) {
      o.signal?.throwIfAborted();
      let box = await this.poll(`${path}?after=${after}`);
      // A new mailbox (the compute server restarted and the job began again): read it from the start.
      if (epoch !== undefined && box.epoch !== epoch) {
        after = 0;
        box = await this.poll(`${path}?after=0`);
      }
      epoch = box.epoch;
      // Only the last message's posts: earlier ones (a rejoined host replaying) were taken already.
      let posts: Post[] = [];
      for (const msg of box.messages) {
        after = msg.seq;
        const p = run.handle(msg);
        if (p.length) posts = p;
      }
      for (const p of posts) await this.post(path, p);
      if (box.state === 'failed') throw new ApiError(409, box.errorCode ?? 'ERR_INTERNAL', `job ${jobId} failed: ${box.error ?? 'unknown reason'}`);
      if (box.state === 'done' && run.finished) return run.outcome();
      if (box.messages.length === 0) await new Promise((r) => setTimeout(r, o.pollMs ?? 100));
    }
  }

  /** Polls, riding out a compute server that is briefly away. */
  private async poll(path: string): Promise<Mailbox> {
    for (let tries = 0; ; tries++) {
      try {
        return await this.api.request<Mailbox>('GET', path);
      } catch (e) {
        if (!isTransient(e) || tries > 30) throw e;
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
  }

  private async post(path: string, p: Post): Promise<void> {
    const body = Buffer.from(JSON.stringify(p.body())).toString('base64');
    for (let tries = 0; ; tries++) {
      try {
        await this.api.request('POST', path, { topic: p.topic, data: body });
        return;
      } catch (e) {
        // A job that ended meanwhile answers 409; the next poll reports how it ended.
        if (e instanceof ApiError && e.status === 409) return;
        // A server that is restarting: the post may be lost with its mailbox, which the next poll notices.
        if (!isTransient(e) || tries > 30) throw e;
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
  }
}
