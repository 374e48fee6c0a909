/** `ciphermine key-server start` and `ciphermine compute-server start`. */
import type { MetricsOptions } from '../services/metrics.js';
import type { Command } from 'commander';
import { checkKeyBits } from '../crypto/params-policy.js';
import { startKeyServer } from '../services/key-server.js';
import { startComputeServer } from '../services/compute-server.js';
import { startDealerServer } from '../services/dealer-server.js';
import { startComputeWorker } from '../services/compute-worker.js';
import { readKeyFile } from '../crypto/keyfile.js';
import { integerFlag } from './parse.js';
import { loadTls, makeSelfSigned, requireCertFingerprint, type TlsMaterial } from '../crypto/tls.js';
import { ParameterError } from '../crypto/errors.js';
import type { DealerEndpoint } from '../protocols/round-trip.js';

const env = process.env;

const TLS_CERT_HELP = 'TLS certificate (PEM); required when --host is not loopback-only (make one with: ciphermine tls make)';
const TLS_KEY_HELP = "the certificate's private key (PEM, a 0600 file)";

const METRICS_PORT_HELP = 'serve Prometheus metrics at GET /metrics on this port (0: any free port; default: none)';
const METRICS_HOST_HELP = 'address of the metrics listener (default 127.0.0.1: scrape from this machine, or put it behind your own proxy)';

/** The metrics flags: a port turns the listener on. */
function metricsOf(o: { metricsPort?: number; metricsHost?: string }): MetricsOptions | undefined {
  return o.metricsPort === undefined ? undefined : { port: o.metricsPort, host: o.metricsHost };
}

/** The dealer flags: all of --dealer and --dealer-key, or none. */
function dealerOf(o: { dealer?: string; dealerKey?: string; dealerFingerprint?: string }): DealerEndpoint | undefined {
  if (!o.dealer && !o.dealerKey) return undefined;
  if (!o.dealer || !o.dealerKey) throw new ParameterError('give both --dealer and --dealer-key');
  return { url: o.dealer, key: readKeyFile(o.dealerKey), fingerprint: o.dealerFingerprint };
}

const DEALER_HELP = (role: string) =>
  `the dealer's ${role} endpoint: the engine's correlated randomness then comes from it (a third party both servers trust not to collude); default: OT extension between the servers`;
const DEALER_KEY_HELP = (role: string) => `the key file the dealer made for this server (${role}.dealer.key)`;
const DEALER_FP_HELP = "the dealer's TLS certificate fingerprint (an https dealer)";

/** Both TLS flags or neither. */
function tlsOf(o: { tlsCert?: string; tlsKey?: string }): TlsMaterial | undefined {
  if (!o.tlsCert && !o.tlsKey) return undefined;
  if (!o.tlsCert || !o.tlsKey) throw new ParameterError('give both --tls-cert and --tls-key');
  return loadTls(o.tlsCert, o.tlsKey);
}
const KEY_SERVER_HELP = 'the key server, or its replicas separated by commas (http://ks1:7401,http://ks2:7401)';
const QUEUE_HELP =
  "redis://host:port: run jobs' chunk tasks on compute workers (ciphermine worker start) through BullMQ; the database must be PostgreSQL (default: in this process)";

const log = (m: string) => console.error(`[${new Date().toISOString()}] ${m}`);

/** One JSON line on stdout when listening, so a parent process (the demo) can find the port. */
function announce(event: Record<string, unknown>): void {
  console.log(JSON.stringify({ event: 'listening', ...event }));
}

function onSignals(close: () => Promise<void>): void {
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => void close().then(() => process.exit(0)));
}

export function addServerCommands(program: Command): void {
  program
    .command('tls')
    .description('TLS material for the listeners that are not loopback-only')
    .command('make')
    .description(
      'make a self-signed certificate and key for a private deployment (ECDSA P-256); prints its SHA-256 fingerprint, which the parties that connect pin',
    )
    .requiredOption('--host <names>', 'host names and addresses the certificate is for, comma-separated', (v: string) => v.split(',').filter(Boolean))
    .requiredOption('--cert <file>', 'where to write the certificate (PEM)')
    .requiredOption('--key <file>', 'where to write the private key (PEM, mode 0600)')
    .option('--days <n>', 'validity in days', integerFlag('--days', 1, 3650), 825)
    .addHelpText(
      'after',
      '\nExample:\n  $ ciphermine tls make --host cs.example.org,10.0.0.5 --cert cs.crt --key cs.key\n  $ ciphermine compute-server start --host 0.0.0.0 --tls-cert cs.crt --tls-key cs.key ...\n',
    )
    .action(async (o) => {
      const t = await makeSelfSigned(o.host, o.cert, o.key, o.days);
      console.log(JSON.stringify({ cert: o.cert, key: o.key, fingerprint: t.fingerprint }));
    });

  program
    .command('key-server')
    .description('the key server (KMS): master key, job keys, the key-server halves of the protocols')
    .command('start')
    .description(
      'run the key server in the foreground (its own terminal): makes the public parameters, master key and channel key on first start, in 0600 key files',
    )
    .option('--data-dir <dir>', 'key files live here (git-ignored default)', env.CIPHERMINE_KEY_SERVER_DATA_DIR ?? '.ciphermine/key-server')
    .option('--host <host>', 'address to listen on', env.CIPHERMINE_KEY_SERVER_HOST ?? '127.0.0.1')
    .option('--port <port>', 'port (0: any free port)', integerFlag('--port', 0, 65535), Number(env.CIPHERMINE_KEY_SERVER_PORT ?? 7401))
    .option(
      '--key-bits <bits>',
      'size of N for new parameters (at least 2048)',
      (v: string) => checkKeyBits(integerFlag('--key-bits', 256)(v)),
      Number(env.CIPHERMINE_KEY_BITS ?? 2048),
    )
    .option('--workers <n>', 'worker threads (default: one per core)', integerFlag('--workers', 0))
    .option('--tls-cert <file>', TLS_CERT_HELP, env.CIPHERMINE_KEY_SERVER_TLS_CERT)
    .option('--dealer <url>', DEALER_HELP('key-server'))
    .option('--dealer-key <file>', DEALER_KEY_HELP('key-server'))
    .option('--dealer-fingerprint <sha256>', DEALER_FP_HELP, (v: string) => requireCertFingerprint(v))
    .option('--tls-key <file>', TLS_KEY_HELP, env.CIPHERMINE_KEY_SERVER_TLS_KEY)
    .option('--metrics-port <port>', METRICS_PORT_HELP, integerFlag('--metrics-port', 0, 65535))
    .option('--metrics-host <host>', METRICS_HOST_HELP)
    .option(
      '--database <url-or-file>',
      'replicas: the database they share for keys and record shares (postgres://...); each replica has the same master.key and channel.key (default: key files, shares in memory)',
    )
    .addHelpText('after', '\nExample:\n  $ ciphermine key-server start --data-dir .ciphermine/key-server --port 7401\n')
    .action(async (o) => {
      const ks = await startKeyServer({
        tls: tlsOf(o),
        dealer: dealerOf(o),
        dataDir: o.dataDir,
        host: o.host,
        port: o.port,
        keyBits: checkKeyBits(o.keyBits), // also when the size came from CIPHERMINE_KEY_BITS
        workers: o.workers,
        metrics: metricsOf(o),
        database: o.database,
        log,
      });
      announce({
        role: 'key-server',
        url: ks.url,
        channelKey: ks.channelKeyPath,
        paramsFingerprint: ks.paramsFingerprint,
        tlsFingerprint: ks.tlsFingerprint,
        metricsUrl: ks.metricsUrl,
      });
      onSignals(ks.close);
    });

  program
    .command('compute-server')
    .description('the compute server (CCS): stores uploads, authorises clients, runs jobs with the key server')
    .command('start')
    .description(
      'run the compute server in the foreground (its own terminal): the one server owners and clients talk to; needs the key server running and its channel key',
    )
    .option(
      '--data-dir <dir>',
      'X25519 key (and the SQLite database by default) live here',
      env.CIPHERMINE_COMPUTE_SERVER_DATA_DIR ?? '.ciphermine/compute-server',
    )
    .option(
      '--database <url-or-file>',
      'postgres://user@host:port/db for PostgreSQL, or an SQLite file (default: <data-dir>/compute.db)',
      env.CIPHERMINE_DATABASE_URL,
    )
    .option('--host <host>', 'address to listen on', env.CIPHERMINE_COMPUTE_SERVER_HOST ?? '127.0.0.1')
    .option('--port <port>', 'port (0: any free port)', integerFlag('--port', 0, 65535), Number(env.CIPHERMINE_COMPUTE_SERVER_PORT ?? 7400))
    .option('--key-server <urls>', KEY_SERVER_HELP, env.CIPHERMINE_KEY_SERVER_URL ?? 'http://127.0.0.1:7401')
    .option('--queue <redis-url>', QUEUE_HELP, env.CIPHERMINE_QUEUE_URL)
    .option(
      '--block-records <n>',
      'records per k-means assignment task (default 1024; 16384 with a dealer) and values per DP aggregation task (default 4096)',
      integerFlag('--block-records', 1),
    )
    .option(
      '--channel-key <file>',
      "the key server's channel.key (authenticates the two servers to each other)",
      env.CIPHERMINE_CHANNEL_KEY ?? '.ciphermine/key-server/channel.key',
    )
    .option('--workers <n>', 'worker threads (default: one per core)', integerFlag('--workers', 0))
    .option(
      '--key-server-fingerprint <sha256>',
      "the key server's TLS certificate fingerprint, as its start printed it (required for an https key server)",
      (v: string) => requireCertFingerprint(v),
      env.CIPHERMINE_KEY_SERVER_FINGERPRINT,
    )
    .option('--tls-cert <file>', TLS_CERT_HELP, env.CIPHERMINE_COMPUTE_SERVER_TLS_CERT)
    .option('--dealer <url>', DEALER_HELP('compute-server'))
    .option('--dealer-key <file>', DEALER_KEY_HELP('compute-server'))
    .option('--dealer-fingerprint <sha256>', DEALER_FP_HELP, (v: string) => requireCertFingerprint(v))
    .option('--tls-key <file>', TLS_KEY_HELP, env.CIPHERMINE_COMPUTE_SERVER_TLS_KEY)
    .option('--metrics-port <port>', METRICS_PORT_HELP, integerFlag('--metrics-port', 0, 65535))
    .option('--metrics-host <host>', METRICS_HOST_HELP)
    .addHelpText(
      'after',
      '\nExample:\n  $ ciphermine compute-server start --data-dir .ciphermine/compute-server --key-server http://127.0.0.1:7401 \\\n      --channel-key .ciphermine/key-server/channel.key\n',
    )
    .action(async (o) => {
      const cs = await startComputeServer({
        dataDir: o.dataDir,
        database: o.database,
        host: o.host,
        port: o.port,
        keyServerUrl: o.keyServer,
        keyServerFingerprint: o.keyServerFingerprint,
        queue: o.queue,
        blockRecords: o.blockRecords,
        tls: tlsOf(o),
        dealer: dealerOf(o),
        channelKey: readKeyFile(o.channelKey),
        workers: o.workers,
        metrics: metricsOf(o),
        log,
      });
      announce({ role: 'compute-server', url: cs.url, tlsFingerprint: cs.tlsFingerprint, metricsUrl: cs.metricsUrl });
      onSignals(cs.close);
    });

  program
    .command('worker')
    .description("a compute worker: runs jobs' chunk tasks from the compute server's queue (scale-out; any number, on any machine)")
    .command('start')
    .description("run a compute worker in the foreground; it needs the compute server's database, its queue and its x25519.key")
    .requiredOption('--database <url>', "the compute server's database (postgres://...)", env.CIPHERMINE_DATABASE_URL)
    .requiredOption('--queue <redis-url>', "the compute server's --queue", env.CIPHERMINE_QUEUE_URL)
    .option(
      '--data-dir <dir>',
      "the compute server's data directory, or one holding a 0600 copy of its x25519.key",
      env.CIPHERMINE_COMPUTE_SERVER_DATA_DIR ?? '.ciphermine/compute-server',
    )
    .option('--key-server <urls>', KEY_SERVER_HELP, env.CIPHERMINE_KEY_SERVER_URL ?? 'http://127.0.0.1:7401')
    .option('--channel-key <file>', "the key server's channel.key", env.CIPHERMINE_CHANNEL_KEY ?? '.ciphermine/key-server/channel.key')
    .option('--key-server-fingerprint <sha256>', "the key server's TLS certificate fingerprint (an https key server)", (v: string) =>
      requireCertFingerprint(v),
    )
    .option('--dealer <url>', DEALER_HELP('compute-server'))
    .option('--dealer-key <file>', DEALER_KEY_HELP('compute-server'))
    .option('--dealer-fingerprint <sha256>', DEALER_FP_HELP, (v: string) => requireCertFingerprint(v))
    .option(
      '--concurrency <n>',
      "tasks at once in this process (one's key-server round trip overlaps another's arithmetic)",
      integerFlag('--concurrency', 1, 64),
      2,
    )
    .option('--threads <n>', 'worker threads for batch arithmetic', integerFlag('--threads', 0, 64), 1)
    .option(
      '--lock-ms <ms>',
      "how long a task's lock lasts: a dead worker's task moves on after about this long",
      integerFlag('--lock-ms', 1000),
      30_000,
    )
    .option('--metrics-port <port>', METRICS_PORT_HELP, integerFlag('--metrics-port', 0, 65535))
    .option('--metrics-host <host>', METRICS_HOST_HELP)
    .addHelpText(
      'after',
      '\nExample:\n  $ ciphermine worker start --database postgres://cm@db/cm --queue redis://queue:6379 \\\n      --key-server http://ks1:7401,http://ks2:7401 --channel-key channel.key --data-dir /etc/ciphermine/worker\n',
    )
    .action(async (o) => {
      const w = await startComputeWorker({
        database: o.database,
        queue: o.queue,
        dataDir: o.dataDir,
        keyServerUrl: o.keyServer,
        keyServerFingerprint: o.keyServerFingerprint,
        channelKey: readKeyFile(o.channelKey),
        dealer: dealerOf(o),
        concurrency: o.concurrency,
        threads: o.threads,
        lockMs: o.lockMs,
        metrics: metricsOf(o),
        log,
      });
      announce({ role: 'compute-worker', metricsUrl: w.metricsUrl });
      onSignals(w.close);
    });

  program
    .command('dealer')
    .description(
      'the dealer: a trusted third party that hands the two servers correlated randomness for the secret-sharing engine; it never sees data, but a dealer that colludes with either server breaks privacy',
    )
    .command('start')
    .description(
      'run the dealer in the foreground (its own terminal): one listener per server, each under a key file made on first start (give compute-server.dealer.key to the compute server, key-server.dealer.key to the key server)',
    )
    .option('--data-dir <dir>', 'the two key files live here (git-ignored default)', env.CIPHERMINE_DEALER_DATA_DIR ?? '.ciphermine/dealer')
    .option('--host <host>', 'address to listen on', env.CIPHERMINE_DEALER_HOST ?? '127.0.0.1')
    .option(
      '--port <port>',
      "the compute server's endpoint (0: any free port)",
      integerFlag('--port', 0, 65535),
      Number(env.CIPHERMINE_DEALER_PORT ?? 7402),
    )
    .option(
      '--key-server-port <port>',
      "the key server's endpoint (0: any free port)",
      integerFlag('--key-server-port', 0, 65535),
      Number(env.CIPHERMINE_DEALER_KEY_SERVER_PORT ?? 7403),
    )
    .option('--tls-cert <file>', TLS_CERT_HELP, env.CIPHERMINE_DEALER_TLS_CERT)
    .option('--tls-key <file>', TLS_KEY_HELP, env.CIPHERMINE_DEALER_TLS_KEY)
    .option('--metrics-port <port>', METRICS_PORT_HELP, integerFlag('--metrics-port', 0, 65535))
    .option('--metrics-host <host>', METRICS_HOST_HELP)
    .addHelpText(
      'after',
      [
        '',
        'Providers of correlated randomness and the trust each needs:',
        '  dealer  this process; trusted never to collude with either server (it knows every triple), never sees data',
        '  ot      no third party: the two servers make it between themselves by OT extension (IKNP over',
        '          Chou-Orlandi base OTs); the same two non-colluding servers as everything else, no dealer to run',
        '',
        'Example:',
        '  $ ciphermine dealer start --data-dir .ciphermine/dealer --port 7402 --key-server-port 7403',
        '',
      ].join('\n'),
    )
    .action(async (o) => {
      const tls = tlsOf(o);
      const d = await startDealerServer({
        dataDir: o.dataDir,
        host: o.host,
        port: o.port,
        keyServerPort: o.keyServerPort,
        tls,
        log,
        metrics: metricsOf(o),
      });
      announce({
        role: 'dealer',
        url: d.computeServerUrl,
        keyServerUrl: d.keyServerUrl,
        tlsFingerprint: tls?.fingerprint,
        metricsUrl: d.metricsUrl,
        ...d.keyFiles,
      });
      onSignals(d.close);
    });
}
