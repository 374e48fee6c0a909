/**
 * Operational metrics in Prometheus's text format (issue 17, item 5), one registry per process,
 * served on a listener of its own (`--metrics-port`, loopback unless `--metrics-host` says
 * otherwise): the servers' public and authenticated ports stay as they are, and scraping needs no
 * party token. What the metrics show is the process's own operational view (requests per method,
 * time per job phase, queue depth, the runtime's CPU and memory), never data or ciphertexts; the
 * leakage table (docs/leakage.md) lists it.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';
import type { RequestHandler } from '../protocols/transport.js';

export type ProcessRole = 'compute-server' | 'compute-worker' | 'key-server' | 'dealer';

export class ProcessMetrics {
  readonly registry = new Registry();
  /** Requests on the servers' authenticated channel, per method (key server, dealer). */
  readonly requests: Counter<'method' | 'outcome'>;
  readonly requestSeconds: Counter<'method'>;
  /** Bytes on the channel, in (requests) and out (replies), for sizing the network. */
  readonly channelBytes: Counter<'direction'>;
  /** Seconds spent in each job phase (compute server). */
  readonly phaseSeconds: Counter<'kind' | 'phase'>;
  /** Jobs that ended, per kind and final state (compute server). */
  readonly jobsEnded: Counter<'kind' | 'state'>;
  /** HTTP requests of owners and clients, per route and status class (compute server). */
  readonly httpRequests: Counter<'route' | 'status'>;

  constructor(readonly role: ProcessRole) {
    this.registry.setDefaultLabels({ role });
    collectDefaultMetrics({ register: this.registry, prefix: 'ciphermine_' });
    const r = [this.registry];
    this.requests = new Counter({
      name: 'ciphermine_channel_requests_total',
      help: 'requests on the servers channel',
      labelNames: ['method', 'outcome'],
      registers: r,
    });
    this.requestSeconds = new Counter({
      name: 'ciphermine_channel_request_seconds_total',
      help: 'seconds spent answering them',
      labelNames: ['method'],
      registers: r,
    });
    this.channelBytes = new Counter({
      name: 'ciphermine_channel_bytes_total',
      help: 'bytes of requests (in) and replies (out) on the servers channel',
      labelNames: ['direction'],
      registers: r,
    });
    this.phaseSeconds = new Counter({
      name: 'ciphermine_job_phase_seconds_total',
      help: 'seconds jobs spent in each phase',
      labelNames: ['kind', 'phase'],
      registers: r,
    });
    this.jobsEnded = new Counter({
      name: 'ciphermine_jobs_ended_total',
      help: 'jobs that ended, by final state',
      labelNames: ['kind', 'state'],
      registers: r,
    });
    this.httpRequests = new Counter({
      name: 'ciphermine_http_requests_total',
      help: 'owner and client requests',
      labelNames: ['route', 'status'],
      registers: r,
    });
  }

  /** A counter of this process's own (tasks run, busy seconds). */
  counter<L extends string>(name: string, help: string, labelNames: L[]): Counter<L> {
    return new Counter({ name, help, labelNames, registers: [this.registry] });
  }

  /** A gauge read at every scrape (queue depth, open sessions); an asynchronous read is awaited. */
  gauge(name: string, help: string, read: () => number | Promise<number>): void {
    new Gauge({
      name,
      help,
      registers: [this.registry],
      async collect() {
        this.set(await read());
      },
    });
  }

  /** The channel handler, counted and timed per method (tasks per second, busy time). */
  instrument(handle: RequestHandler): RequestHandler {
    return async (method, body) => {
      const start = performance.now();
      this.channelBytes.inc({ direction: 'in' }, body.byteLength);
      try {
        const out = await handle(method, body);
        this.channelBytes.inc({ direction: 'out' }, out.byteLength);
        this.requests.inc({ method, outcome: 'ok' });
        return out;
      } catch (e) {
        this.requests.inc({ method, outcome: 'error' });
        throw e;
      } finally {
        this.requestSeconds.inc({ method }, (performance.now() - start) / 1000);
      }
    };
  }
}

/** Where a process serves its metrics (`--metrics-host`, `--metrics-port`). */
export interface MetricsOptions {
  host?: string;
  port: number;
}

export interface MetricsListener {
  url: string;
  close(): Promise<void>;
}

/** Serves GET /metrics on host:port (port 0: any free port). */
export async function serveMetrics(metrics: ProcessMetrics, host: string, port: number): Promise<MetricsListener> {
  const server: Server = createServer((req, res) => {
    if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('only GET /metrics here\n');
      return;
    }
    metrics.registry
      .metrics()
      .then((text) => res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(text))
      .catch((e: Error) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`${e.message}\n`));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const { port: bound } = server.address() as AddressInfo;
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${bound}/metrics`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
