/**
 * The parties' channel over the servers' authenticated link (protocols/http-transport.ts: HMAC over
 * every request and reply, replays refused). The compute server (party 0) is the HTTP client: each
 * round it POSTs its message, and the key server (party 1) answers with its own message of the same
 * round, so one round is one request. Frames carry the session and round number; a message for
 * another round or session is refused, and a party that goes silent fails the other's next round
 * with a clear error instead of hanging.
 */
import { CiphermineError } from '../crypto/errors.js';
import { RemoteError, type Transport } from '../protocols/transport.js';
import { MAX_MESSAGE_BYTES, MpcChannelError, MpcSessionLostError, type ChannelCounters, type PartyChannel } from './channel.js';
import { BaseOtStore, newBase } from './ot/base-ot-cache.js';
import type { DealerEndpoint } from '../protocols/round-trip.js';
import type { CorrelatedRandomness } from './provider/provider.js';
import { OtProvider } from './provider/ot.js';
import { remoteDealerProvider } from './provider/dealer-http.js';

export const MPC_METHOD = 'mpc.exchange';
export const MPC_START_METHOD = 'mpc.start';
/** Session ids: a top-level id (no ':') and its subsessions `id:suffix` (the provider's channel). */
export const SESSION_PATTERN = /^[A-Za-z0-9_.:-]{1,80}$/;
const TOP_LEVEL_SESSION = /^[A-Za-z0-9_.-]{1,64}$/;
/**
 * How long a party waits for the other's message of a round. A round may include the other
 * party's local work on a whole batch (decrypting or encrypting thousands of ciphertexts), so this
 * is generous; it exists so that a vanished peer fails the session instead of hanging it.
 */
export const DEFAULT_ROUND_TIMEOUT_MS = 10 * 60_000;

function checkSession(session: string): void {
  if (!SESSION_PATTERN.test(session)) throw new MpcChannelError('malformed MPC session id');
}

export function encodeFrame(session: string, round: number, payload: Uint8Array): Uint8Array {
  const id = Buffer.from(session, 'utf8');
  const out = new Uint8Array(1 + id.length + 4 + payload.length);
  out[0] = id.length;
  out.set(id, 1);
  new DataView(out.buffer).setUint32(1 + id.length, round);
  out.set(payload, 5 + id.length);
  return out;
}

export function decodeFrame(frame: Uint8Array): { session: string; round: number; payload: Uint8Array } {
  if (frame.length < 1 || frame.length < 5 + frame[0]!) throw new MpcChannelError('truncated MPC frame');
  const len = frame[0]!;
  const session = Buffer.from(frame.subarray(1, 1 + len)).toString('utf8');
  checkSession(session);
  const round = new DataView(frame.buffer, frame.byteOffset).getUint32(1 + len);
  const payload = frame.subarray(5 + len);
  if (payload.length > MAX_MESSAGE_BYTES) throw new MpcChannelError(`a ${payload.length}-byte message exceeds the ${MAX_MESSAGE_BYTES}-byte limit`);
  return { session, round, payload };
}

/** Party 0's end: each exchange is one authenticated request to the key server. */
export class TransportChannel implements PartyChannel {
  readonly counters: ChannelCounters = { rounds: 0, bytesSent: 0 };
  constructor(
    private readonly transport: Transport,
    readonly session: string,
  ) {
    checkSession(session);
  }

  async exchange(message: Uint8Array): Promise<Uint8Array> {
    if (message.length > MAX_MESSAGE_BYTES) throw new MpcChannelError(`a ${message.length}-byte message exceeds the ${MAX_MESSAGE_BYTES}-byte limit`);
    const round = this.counters.rounds++;
    this.counters.bytesSent += message.length;
    try {
      return await this.transport.call(MPC_METHOD, encodeFrame(this.session, round, message), { latencySensitive: true });
    } catch (e) {
      const code = (e as CiphermineError).code;
      // Still an outage, so the job waits for the key server and restarts the step from its checkpoint.
      if (code === 'ERR_UNREACHABLE')
        throw new RemoteError('ERR_UNREACHABLE', `the key server disappeared mid-protocol (session ${this.session}, round ${round})`, 503);
      throw e;
    }
  }
}

class Deferred<T> {
  resolve!: (v: T) => void;
  reject!: (e: Error) => void;
  readonly promise = new Promise<T>((res, rej) => {
    this.resolve = res;
    this.reject = rej;
  });
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  const timeout = new Promise<never>((_, reject) => {
    // Unreferenced: a session left waiting by a vanished peer must not keep the process alive.
    timer = setTimeout(() => reject(new MpcChannelError(what)), ms).unref();
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/** Party 1's end of one session: rounds are matched by number with party 0's requests. */
export class EndpointChannel implements PartyChannel {
  readonly counters: ChannelCounters = { rounds: 0, bytesSent: 0 };
  private readonly incoming = new Map<number, Deferred<Uint8Array>>();
  private readonly outgoing = new Map<number, Deferred<Uint8Array>>();
  private failed?: Error;
  private nextDelivery = 0;

  constructor(
    readonly session: string,
    private readonly timeoutMs: number,
  ) {}

  private slot(map: Map<number, Deferred<Uint8Array>>, round: number): Deferred<Uint8Array> {
    let d = map.get(round);
    if (!d) map.set(round, (d = new Deferred()));
    return d;
  }

  async exchange(message: Uint8Array): Promise<Uint8Array> {
    if (this.failed) throw this.failed;
    if (message.length > MAX_MESSAGE_BYTES) throw new MpcChannelError(`a ${message.length}-byte message exceeds the ${MAX_MESSAGE_BYTES}-byte limit`);
    const round = this.counters.rounds++;
    this.counters.bytesSent += message.length;
    this.slot(this.outgoing, round).resolve(message);
    const theirs = await withTimeout(
      this.slot(this.incoming, round).promise,
      this.timeoutMs,
      `the compute server went silent mid-protocol (session ${this.session}, round ${round})`,
    );
    this.incoming.delete(round);
    return theirs;
  }

  /** Party 0's message of `round` arrives; the answer is party 1's message of the same round. */
  async deliver(round: number, payload: Uint8Array): Promise<Uint8Array> {
    if (this.failed) throw this.failed;
    // Party 0 awaits each round before the next, so rounds arrive in order; anything else is a
    // replay or a confused peer.
    if (round !== this.nextDelivery) throw new MpcChannelError(`session ${this.session} expected round ${this.nextDelivery}, got ${round}`);
    this.nextDelivery++;
    this.slot(this.incoming, round).resolve(Uint8Array.from(payload));
    const mine = await withTimeout(
      this.slot(this.outgoing, round).promise,
      this.timeoutMs,
      `the key server's side of session ${this.session} stopped at round ${round}`,
    );
    this.outgoing.delete(round);
    return mine;
  }

  fail(e: Error): void {
    this.failed = e;
    for (const d of [...this.incoming.values(), ...this.outgoing.values()]) d.reject(e);
  }
}

/**
 * A key-server program: its half of a computation, run for one session when party 0 starts it.
 * `provider()` is the session's correlated randomness, as party 0 chose it: OT extension forked
 * from base OTs the servers ran earlier, or the dealer the key server was configured with.
 */
export type MpcProgram = (channel: (suffix?: string) => PartyChannel, args: unknown, provider: () => Promise<CorrelatedRandomness>) => Promise<void>;

/** The program that runs base OTs for later sessions to fork (ot/base-ot-cache.ts). */
export const BASE_OT_PROGRAM = 'engine.base-ot';
const BASE_ID = /^[A-Za-z0-9_-]{1,64}$/;

/** The base OTs a session's start names, if any: `args.otBase`. */
function namedBase(args: unknown): string | undefined {
  const id = (args as { otBase?: unknown } | null)?.otBase;
  if (id === undefined) return undefined;
  if (typeof id !== 'string' || !BASE_ID.test(id)) throw new MpcChannelError('a base-OT id is 1 to 64 letters, digits, - or _');
  return id;
}

/**
 * The key server's registry of sessions and programs. `mpc.start` names a registered program and a
 * session; `mpc.exchange` frames then carry the rounds. Sessions are bounded and dropped when done.
 */
export class MpcEndpoint {
  private readonly sessions = new Map<string, EndpointChannel>();
  private readonly programs = new Map<string, { run: MpcProgram; check?: (args: unknown) => void }>();
  private readonly bases = new BaseOtStore();

  /** Sessions open now (metrics). */
  get openSessions(): number {
    return this.sessions.size;
  }

  constructor(private readonly opts: { timeoutMs?: number; maxSessions?: number; log?: (m: string) => void; dealer?: DealerEndpoint } = {}) {
    this.register(BASE_OT_PROGRAM, async (channel, args) => {
      const id = namedBase({ otBase: (args as { id?: unknown } | null)?.id });
      if (!id) throw new MpcChannelError('a base-OT session names its id');
      this.bases.add(id, await newBase(channel()));
    });
  }

  /** `check` validates a start's arguments before the session opens, so a bad start is refused in its reply. */
  register(name: string, program: MpcProgram, check?: (args: unknown) => void | Promise<void>): void {
    this.programs.set(name, { run: program, check });
  }

  private channel(session: string): EndpointChannel {
    checkSession(session);
    let c = this.sessions.get(session);
    if (!c) {
      if (this.sessions.size >= (this.opts.maxSessions ?? 256)) throw new MpcChannelError('too many MPC sessions at once');
      this.sessions.set(session, (c = new EndpointChannel(session, this.opts.timeoutMs ?? DEFAULT_ROUND_TIMEOUT_MS)));
    }
    return c;
  }

  /** Starts party 1's half of `program` for `session` (subsessions `session:suffix` for providers). */
  async start(program: string, session: string, args: unknown): Promise<void> {
    const registered = this.programs.get(program);
    if (!registered) throw new MpcChannelError(`the key server has no MPC program ${JSON.stringify(program)}`);
    await registered.check?.(args);
    const run = registered.run;
    if (!TOP_LEVEL_SESSION.test(session)) throw new MpcChannelError('a session id is 1 to 64 letters, digits, ".", "-" or "_"');
    if ([...this.sessions.keys()].some((id) => id === session || id.startsWith(`${session}:`))) {
      throw new MpcChannelError(`MPC session ${session} is already running`);
    }
    // Checked before anything starts, so party 0 hears of a lost base in the start's reply.
    const viaDealer = (args as { provider?: unknown } | null)?.provider === 'dealer';
    if (viaDealer && !this.opts.dealer) throw new MpcChannelError('this key server has no dealer: start it with --dealer, or use the ot provider');
    const baseId = program === BASE_OT_PROGRAM || viaDealer ? undefined : namedBase(args);
    const otBase = baseId === undefined ? undefined : this.bases.fork(baseId, session);
    const opened = new Map<string, EndpointChannel>();
    const channel = (suffix?: string) => {
      if (suffix !== undefined && !/^[A-Za-z0-9_-]{1,15}$/.test(suffix))
        throw new MpcChannelError('a subsession suffix is 1 to 15 letters, digits, - or _');
      const id = suffix ? `${session}:${suffix}` : session;
      let c = opened.get(id);
      if (!c) {
        if (this.sessions.has(id)) throw new MpcChannelError(`MPC session ${id} belongs to another computation`);
        opened.set(id, (c = this.channel(id)));
      }
      return c;
    };
    channel();
    const dealer = this.opts.dealer;
    const provider = async (): Promise<CorrelatedRandomness> =>
      viaDealer ? remoteDealerProvider(1, dealer!.url, dealer!.key, session, dealer!.fingerprint) : new OtProvider(1, channel('ot'), otBase);
    run(channel, args, provider)
      .catch((e: Error) => {
        this.opts.log?.(`MPC session ${session} (${program}) failed: ${e.message}`);
        for (const c of opened.values()) c.fail(e instanceof CiphermineError ? e : new MpcChannelError(`the key server's side failed: ${e.message}`));
      })
      .finally(() =>
        setTimeout(() => {
          for (const [id, c] of opened) if (this.sessions.get(id) === c) this.sessions.delete(id);
        }, 1000).unref(),
      );
  }

  /** Fails every open session (the key server is shutting down). */
  close(): void {
    const e = new MpcChannelError('the key server is shutting down');
    for (const c of this.sessions.values()) c.fail(e);
    this.sessions.clear();
  }

  /** The key server's RPC handler for the two methods. */
  async handle(method: string, body: Uint8Array): Promise<Uint8Array | undefined> {
    if (method === MPC_START_METHOD) {
      let parsed: { program?: unknown; session?: unknown; args?: unknown };
      try {
        parsed = JSON.parse(Buffer.from(body).toString('utf8'));
      } catch {
        throw new MpcChannelError('an MPC start request is JSON');
      }
      if (typeof parsed.program !== 'string' || typeof parsed.session !== 'string')
        throw new MpcChannelError('an MPC start request names a program and a session');
      await this.start(parsed.program, parsed.session, parsed.args);
      return new Uint8Array(0);
    }
    if (method === MPC_METHOD) {
      const { session, round, payload } = decodeFrame(body);
      const c = this.sessions.get(session);
      if (!c) throw new MpcSessionLostError(`no MPC session ${session} at the key server`);
      return c.deliver(round, payload);
    }
    return undefined;
  }
}

/** Party 0 asks the key server to run its half of `program` in `session`. */
export async function startRemote(transport: Transport, program: string, session: string, args: unknown): Promise<void> {
  await transport.call(MPC_START_METHOD, Buffer.from(JSON.stringify({ program, session, args })));
}
