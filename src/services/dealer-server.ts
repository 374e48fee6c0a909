/**
 * The dealer process (`ciphermine dealer start`): the trusted third party of the `dealer` provider
 * (seed 002's KGC; the trusted authority of seed 001). It never sees data: per session of
 * computation it draws two PRG seeds, gives each server its own, and computes the key server's
 * correction terms. Each server reaches it on its own listener under its own key (0600 files the
 * dealer makes on first start), so a server can fetch only its own seed, and only the key server
 * (party 1) can ask for corrections.
 */
import { ProcessMetrics, serveMetrics, type MetricsOptions } from './metrics.js';
import { existsSync, mkdirSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { readKeyFile, writeKeyFile } from '../crypto/keyfile.js';
import { ParameterError } from '../crypto/errors.js';
import { serveHttp, type RunningServer } from '../protocols/http-transport.js';
import { requireTlsOffLoopback, type TlsMaterial } from '../crypto/tls.js';
import { TrustedDealer, type DealerRequest } from '../mpc/provider/dealer.js';
import { SESSION_ID } from '../mpc/provider/dealer-http.js';

export const DEALER_KEY_FILES = { 0: 'compute-server.dealer.key', 1: 'key-server.dealer.key' } as const;

export interface DealerServerOptions {
  dataDir: string;
  host?: string;
  /** The compute server's endpoint (party 0); the key server's (party 1) is `keyServerPort`. */
  port?: number;
  keyServerPort?: number;
  /** Sessions kept at once (oldest dropped first). */
  maxSessions?: number;
  /** Certificate and key (crypto/tls.ts), for both listeners; required when `host` is not loopback-only. */
  tls?: TlsMaterial;
  log?: (m: string) => void;
  /** Serve Prometheus metrics on a listener of their own (services/metrics.ts). */
  metrics?: MetricsOptions;
}

export interface DealerServerHandle {
  computeServerUrl: string;
  keyServerUrl: string;
  keyFiles: { computeServer: string; keyServer: string };
  /** GET this for the Prometheus metrics, when asked for. */
  metricsUrl?: string;
  /** What the dealer has served: request kinds and sizes only (tests check it holds no data). */
  readonly served: Array<{ session: string; party: 0 | 1; request: DealerRequest | 'seed' }>;
  close(): Promise<void>;
}

function loadOrCreateKey(path: string): Buffer {
  if (!existsSync(path)) writeKeyFile(path, randomBytes(32));
  return readKeyFile(path);
}

export async function startDealerServer(o: DealerServerOptions): Promise<DealerServerHandle> {
  mkdirSync(o.dataDir, { recursive: true, mode: 0o700 });
  const paths = { computeServer: join(o.dataDir, DEALER_KEY_FILES[0]), keyServer: join(o.dataDir, DEALER_KEY_FILES[1]) };
  const keys = { 0: loadOrCreateKey(paths.computeServer), 1: loadOrCreateKey(paths.keyServer) };
  const sessions = new Map<string, TrustedDealer>();
  const served: DealerServerHandle['served'] = [];
  const maxSessions = o.maxSessions ?? 1000;

  const session = (id: string): TrustedDealer => {
    if (!SESSION_ID.test(id)) throw new ParameterError('malformed session id');
    let d = sessions.get(id);
    if (!d) {
      if (sessions.size >= maxSessions) sessions.delete(sessions.keys().next().value!);
      sessions.set(id, (d = new TrustedDealer()));
    }
    return d;
  };

  const handler = (party: 0 | 1) => async (method: string, body: Uint8Array) => {
    if (method === 'seed') {
      const id = Buffer.from(body).toString('utf8');
      served.push({ session: id, party, request: 'seed' });
      const d = session(id);
      return party === 0 ? d.seed0 : d.seed1;
    }
    if (method === 'correction' && party === 1) {
      let parsed: { session: string; request: DealerRequest };
      try {
        parsed = JSON.parse(Buffer.from(body).toString('utf8'));
      } catch {
        throw new ParameterError('a correction request is JSON');
      }
      if (!sessions.has(parsed.session)) throw new ParameterError(`no dealer session ${parsed.session}`);
      served.push({ session: parsed.session, party, request: parsed.request });
      return sessions.get(parsed.session)!.correction(parsed.request);
    }
    if (method === 'corrections' && party === 1) {
      let parsed: { session: string; requests: DealerRequest[] };
      try {
        parsed = JSON.parse(Buffer.from(body).toString('utf8'));
      } catch {
        throw new ParameterError('a corrections request is JSON');
      }
      if (!Array.isArray(parsed.requests) || parsed.requests.length > 1_000_000) throw new ParameterError('corrections take a list of requests');
      if (!sessions.has(parsed.session)) throw new ParameterError(`no dealer session ${parsed.session}`);
      for (const request of parsed.requests) served.push({ session: parsed.session, party, request });
      return sessions.get(parsed.session)!.corrections(parsed.requests);
    }
    throw new ParameterError(`the dealer has no method ${method} for party ${party}`);
  };

  const host = o.host ?? '127.0.0.1';
  requireTlsOffLoopback('dealer', host, o.tls);
  const metrics = o.metrics && new ProcessMetrics('dealer');
  metrics?.gauge('ciphermine_dealer_sessions', 'dealer sessions held', () => sessions.size);
  const listener = metrics && (await serveMetrics(metrics, o.metrics!.host ?? '127.0.0.1', o.metrics!.port));
  const counted = (party: 0 | 1) => (metrics ? metrics.instrument(handler(party)) : handler(party));
  const cs: RunningServer = await serveHttp(counted(0), { hmacKey: keys[0], host, port: o.port ?? 0, tls: o.tls });
  let ks: RunningServer;
  try {
    ks = await serveHttp(counted(1), { hmacKey: keys[1], host, port: o.keyServerPort ?? 0, tls: o.tls });
  } catch (e) {
    await cs.close();
    throw e;
  }
  o.log?.(`dealer listening on ${cs.url} (compute server) and ${ks.url} (key server)`);
  return {
    computeServerUrl: cs.url,
    keyServerUrl: ks.url,
    keyFiles: paths,
    served,
    metricsUrl: listener?.url,
    close: async () => {
      await listener?.close();
      await cs.close();
      await ks.close();
    },
  };
}
