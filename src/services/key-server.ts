/**
 * The key server process (KMS, Bob; seed 000's KMS, seed 002's KGC). It makes the public parameters
 * and keeps the master key, the job keys and the channel key in key files (0600) under its data
 * directory, so a restart resumes with the same keys. It only ever talks to the compute server,
 * through the HMAC-authenticated channel; data owners and query clients never reach it.
 */
import { ProcessMetrics, serveMetrics, type MetricsOptions } from './metrics.js';
import { CiphermineError, ParameterError } from '../crypto/errors.js';
import { KeyServerStore, SHARE_MAX_AGE_MS } from './key-server-store.js';
import { describeLocation } from './store/open-store.js';
import type { RequestHandler } from '../protocols/transport.js';
import type { ShareBacking } from '../protocols/share-store.js';
import type { BcpPublicKey, BcpSecretKey } from '../crypto/index.js';
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import {
  setupAsync,
  BcpMasterKey,
  WorkerPool,
  readKeyFile,
  writeKeyFile,
  serializeMasterKey,
  deserializeMasterKey,
  serializePublicKey,
  deserializePublicKey,
  serializeSecretKey,
  deserializeSecretKey,
} from '../crypto/index.js';
import { KeyServerCore, serveHttp, type RunningServer } from '../protocols/index.js';
import type { MpcEndpoint } from '../mpc/server-channel.js';
import { keyServerEngine } from '../mpc/key-server-engine.js';
import { registerTrainingProgram } from '../analytics/mlp-two-server.js';
import { registerPredictProgram } from '../analytics/mlp-predict.js';
import { registerReleaseProgram } from '../analytics/mlp-release.js';
import { requireTlsOffLoopback, type TlsMaterial } from '../crypto/tls.js';
import type { DealerEndpoint } from '../protocols/round-trip.js';

export interface KeyServerOptions {
  dataDir: string;
  host?: string;
  port?: number;
  keyBits?: number;
  workers?: number;
  /** Certificate and key (crypto/tls.ts); required when `host` is not loopback-only. */
  tls?: TlsMaterial;
  /** The dealer's key-server endpoint and this server's key from it, when the deployment runs one. */
  dealer?: DealerEndpoint;
  /** Serve Prometheus metrics on a listener of their own (services/metrics.ts). */
  metrics?: MetricsOptions;
  /**
   * Replicas (issue 17): the database they share (a postgres:// URL, or an SQLite file for replicas
   * on one machine) for registered keys, job keys (sealed) and record shares. Every replica needs
   * the same master.key and channel.key in its data directory. Absent: key files, shares in memory.
   */
  database?: string;
  log?: (msg: string) => void;
}

export interface KeyServerHandle {
  url: string;
  channelKeyPath: string;
  core: KeyServerCore;
  /** The public parameters' fingerprint, which owners and clients may check at registration. */
  paramsFingerprint: string;
  /** SHA-256 of its TLS certificate, for the compute server's --key-server-fingerprint (TLS only). */
  tlsFingerprint?: string;
  /** The secret-sharing engine's sessions: job kinds register the key server's half of their protocols here. */
  mpc: MpcEndpoint;
  /** GET this for the Prometheus metrics, when asked for. */
  metricsUrl?: string;
  close(): Promise<void>;
}

export const CHANNEL_KEY_FILE = 'channel.key';

/** The channel key both servers share; made by the key server on first start. */
export function loadOrCreateChannelKey(dataDir: string): Buffer {
  const path = join(dataDir, CHANNEL_KEY_FILE);
  if (!existsSync(path)) writeKeyFile(path, randomBytes(32));
  const key = readKeyFile(path);
  if (key.length !== 32) throw new Error(`${path} must hold 32 bytes`);
  return key;
}

async function loadOrCreateMasterKey(dataDir: string, explicitBits: number | undefined, log: (m: string) => void): Promise<BcpMasterKey> {
  const keyBits = explicitBits ?? 2048;
  const path = join(dataDir, 'master.key');
  if (existsSync(path)) {
    const msk = deserializeMasterKey(readKeyFile(path));
    if (explicitBits !== undefined && msk.params.bits !== explicitBits) {
      throw new ParameterError(
        `${dataDir} holds ${msk.params.bits}-bit public parameters, but ${explicitBits} bits were asked for: use the same --key-bits, or another data directory for new parameters`,
      );
    }
    return msk;
  }
  log(`generating ${keyBits}-bit public parameters (safe primes)...`);
  const { params, p, q } = await setupAsync(keyBits);
  const msk = new BcpMasterKey(params, p, q);
  writeKeyFile(path, serializeMasterKey(msk));
  return msk;
}

function filesIn(dir: string): string[] {
  return existsSync(dir) ? readdirSync(dir).map((f) => join(dir, f)) : [];
}

export async function startKeyServer(opts: KeyServerOptions): Promise<KeyServerHandle> {
  const log = opts.log ?? (() => {});
  requireTlsOffLoopback('key server', opts.host ?? '127.0.0.1', opts.tls);
  mkdirSync(opts.dataDir, { recursive: true, mode: 0o700 });
  const msk = await loadOrCreateMasterKey(opts.dataDir, opts.keyBits, log);
  log(
    `public parameters: ${msk.params.bits}-bit N, fingerprint ${msk.params.fingerprint} (owners and clients can check it at registration with --expect-params)`,
  );
  const hmacKey = loadOrCreateChannelKey(opts.dataDir);
  const pkDir = join(opts.dataDir, 'public-keys');
  const jobDir = join(opts.dataDir, 'job-keys');
  const pool = new WorkerPool(opts.workers);
  const shared = opts.database === undefined ? undefined : await KeyServerStore.open(opts.database);
  let core: KeyServerCore;
  let sync: SharedKeys | undefined;
  let sweeper: NodeJS.Timeout | undefined;
  if (shared) {
    // Shares are sealed under the key server's own key before they reach the database.
    const sealed: ShareBacking = {
      putShare: (id, key, offset, values) =>
        shared.putShare(id, key, offset, values.length, core.sealForSelf(`share ${id} ${offset}`, Buffer.from(JSON.stringify(values.map(String))))),
      share: async (id) =>
        (await shared.share(id)).map((p) => ({
          key: p.key,
          offset: p.offset,
          values: (JSON.parse(core.unsealForSelf(`share ${id} ${p.offset}`, p.data).toString()) as string[]).map(BigInt),
        })),
      dropShare: (id) => shared.dropShare(id),
    };
    core = new KeyServerCore(msk, pool, { savePublicKey: (pk) => sync!.savePublic(pk), saveJobKey: (sk) => sync!.saveJob(sk) }, sealed);
    sync = new SharedKeys(core, shared);
    await sync.reload();
    // Shares that no job dropped (a job restarted under a new share id) age out, hourly.
    const sweep = () => shared.dropSharesOlderThan(SHARE_MAX_AGE_MS).catch(() => 0);
    await sweep();
    sweeper = setInterval(() => void sweep(), 3600_000);
    sweeper.unref();
    log(`key server state shared in ${describeLocation(opts.database!)}`);
  } else {
    core = new KeyServerCore(msk, pool, {
      savePublicKey: (pk) => writeKeyFile(join(pkDir, `${pk.fingerprint}.pk`), serializePublicKey(pk)),
      saveJobKey: (sk) => writeKeyFile(join(jobDir, `${sk.publicKey.fingerprint}.sk`), serializeSecretKey(sk)),
    });
    core.restore(
      filesIn(pkDir).map((f) => deserializePublicKey(readKeyFile(f), msk.params)),
      filesIn(jobDir).map((f) => deserializeSecretKey(readKeyFile(f))),
    );
  }
  // The engine's rounds share the servers' authenticated channel: its two methods first, then the core's.
  const engine = keyServerEngine(core, core.handle, log, opts.dealer);
  const mpc = engine.endpoint;
  const handle = sync ? sync.retryOnUnknownKey(engine.handle) : engine.handle;
  // The key server's halves of the job kinds built on the engine.
  registerTrainingProgram(mpc, core);
  registerPredictProgram(mpc, core);
  registerReleaseProgram(mpc, core);
  const metrics = opts.metrics && new ProcessMetrics('key-server');
  metrics?.gauge('ciphermine_engine_sessions', 'secret-sharing engine sessions open', () => mpc.openSessions);
  const listener = metrics && (await serveMetrics(metrics, opts.metrics!.host ?? '127.0.0.1', opts.metrics!.port));
  const server: RunningServer = await serveHttp(metrics ? metrics.instrument(handle) : handle, {
    hmacKey,
    host: opts.host,
    port: opts.port,
    tls: opts.tls,
  });
  log(`key server listening on ${server.url}${opts.tls ? ` (TLS certificate ${opts.tls.fingerprint})` : ''}`);
  return {
    url: server.url,
    channelKeyPath: join(opts.dataDir, CHANNEL_KEY_FILE),
    paramsFingerprint: msk.params.fingerprint,
    tlsFingerprint: opts.tls?.fingerprint,
    core,
    mpc,
    metricsUrl: listener?.url,
    close: async () => {
      sync?.stop();
      clearInterval(sweeper);
      mpc.close();
      await listener?.close();
      await server.close();
      await pool.close();
      await shared?.close();
    },
  };
}

/**
 * Keys made or registered at any replica, kept in step: read from the shared database every half
 * second, and again at once when a request names a key this replica has not seen (the request is
 * then answered again; requests look their key up before they change anything).
 */
class SharedKeys {
  private readonly timer: NodeJS.Timeout;
  private loading: Promise<void> | undefined;

  constructor(
    private readonly core: KeyServerCore,
    private readonly store: KeyServerStore,
  ) {
    this.timer = setInterval(() => void this.reload().catch(() => undefined), 500);
    this.timer.unref();
  }

  async savePublic(pk: BcpPublicKey): Promise<void> {
    // A job key's row carries its public key too: one row, so no replica sees it half-made.
    if (this.core.isJobKey(pk.fingerprint)) return;
    await this.store.putKey(pk.fingerprint, 'public', serializePublicKey(pk));
  }

  saveJob(sk: BcpSecretKey): Promise<void> {
    // Sealed under a key derived from the master key: the database alone opens nothing.
    return this.store.putKey(sk.publicKey.fingerprint, 'job', this.core.sealForSelf('job-key', serializeSecretKey(sk)));
  }

  /** Reads the keys again; joins a reading under way (the timer's). */
  reload(): Promise<void> {
    return (this.loading ??= this.read().finally(() => (this.loading = undefined)));
  }

  /** A reading that starts after any under way, so it sees every key saved before this call. */
  async reloadNow(): Promise<void> {
    await this.loading?.catch(() => undefined);
    await this.reload();
  }

  private async read(): Promise<void> {
    {
      const rows = await this.store.keys();
      const params = this.core.msk.params;
      this.core.restore(
        rows.filter((r) => r.kind === 'public' && !this.core.knows(r.fingerprint)).map((r) => deserializePublicKey(r.data, params)),
        rows
          .filter((r) => r.kind === 'job' && !this.core.isJobKey(r.fingerprint))
          .map((r) => deserializeSecretKey(this.core.unsealForSelf('job-key', r.data))),
      );
    }
  }

  retryOnUnknownKey(handle: RequestHandler): RequestHandler {
    return async (method, body) => {
      try {
        return await handle(method, body);
      } catch (e) {
        if (!(e instanceof CiphermineError && (e.code === 'ERR_UNKNOWN_KEY' || e.code === 'ERR_NOT_JOB_KEY'))) throw e;
        await this.reloadNow();
        return handle(method, body);
      }
    };
  }

  stop(): void {
    clearInterval(this.timer);
  }
}
