/**
 * The compute server process (CCS, Alice): the only party data owners (DO) and query clients (QC)
 * talk to. It stores owners' uploads (AES-GCM wrapped BCP ciphertexts) in SQLite with their grants,
 * authenticates every request with the bearer token issued at registration, and runs jobs with the
 * key server over the authenticated channel. It never holds a key that opens data: its X25519 key
 * only unwraps the AES layer, under which everything is still BCP-encrypted under the owners' keys.
 */
import { ProcessMetrics, serveMetrics, type MetricsOptions } from './metrics.js';
import { ringSlots } from '../mpc/packed-conversion.js';
import { registerModelRoutes } from './model-routes.js';
import { registerTokenRoutes } from './token-routes.js';
import type { TrainingInfo } from './store/store.js';
import type { DealerEndpoint } from '../protocols/round-trip.js';
import rateLimit from '@fastify/rate-limit';
import { requireTlsOffLoopback, type TlsMaterial } from '../crypto/tls.js';
import { GRANT_SCOPES } from './store/store.js';
import { ID_HASH_BYTES } from '../crypto/id-hash.js';
import { CiphermineError } from '../crypto/errors.js';
import { checkParamsPolicy } from '../crypto/params-policy.js';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { createPublicKey, type KeyObject } from 'node:crypto';
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify';
import { z } from 'zod';
import {
  deserializeParams,
  serializeParams,
  deserializePublicKey,
  deserializeCiphertexts,
  serializePublicKey,
  generateAgreementKeyPair,
  exportAgreementPrivateKey,
  importAgreementPrivateKey,
  bitLength,
  importAgreementPublicKey,
  deriveEnvelopeKey,
  openEnvelope,
  readKeyFile,
  writeKeyFile,
  FixedPointCodec,
  uploadContext,
  checkCiphertextTag,
  type BcpParams,
} from '../crypto/index.js';
import { keyServerTransport, createProtocolPool, processStats, ownerSlotBits, packCount, type Transport } from '../protocols/index.js';
import type { NoiseControl } from '../analytics/stats-secure.js';
import { openStore, describeLocation, type Party, type Store } from './store/index.js';
import { JobRunner, isKeyServerUnavailable } from './jobs/runner.js';
import { BullTaskQueue, redisConnection } from './jobs/bullmq-queue.js';
import type { JobKind } from './jobs/job-kind.js';
import { builtInJobKinds } from './jobs/kinds/index.js';
import { registerJobRoutes } from './job-routes.js';
import { registerMailboxRoutes } from './mailbox-routes.js';
import { HttpError, badRequest, conflict, forbidden, notFound, unauthorized } from './http-errors.js';
import { httpStatusOf, isErrorCode } from '../crypto/errors.js';

export interface ComputeServerOptions {
  dataDir: string;
  /** Serve Prometheus metrics on a listener of their own (services/metrics.ts). */
  metrics?: MetricsOptions;
  /**
   * Where the state lives: a postgres:// URL for PostgreSQL, or an SQLite file (default
   * <dataDir>/compute.db).
   */
  database?: string;
  /** The key server's URL, or its replicas' URLs separated by commas (replica-transport.ts). */
  keyServerUrl: string;
  channelKey: Buffer;
  /**
   * A redis:// URL: jobs' chunk tasks go to BullMQ on it, for compute workers (`ciphermine worker
   * start`) to run; the database must then be one the workers reach (PostgreSQL). Absent: the tasks
   * run in this process (the embedded default).
   */
  queue?: string;
  /** Records per k-means assignment task (default 1024, or 16384 with a dealer). */
  blockRecords?: number;
  /** The key server's TLS certificate fingerprint, pinned (required for an https key server). */
  keyServerFingerprint?: string;
  /** Certificate and key (crypto/tls.ts); required when `host` is not loopback-only. */
  tls?: TlsMaterial;
  host?: string;
  port?: number;
  workers?: number;
  /** How long a job waits for an unreachable key server. */
  retryForMs?: number;
  /**
   * Test-only: switch DP noise off or watch the compute server's noise. Deliberately not reachable
   * from the CLI or the environment, so a production configuration cannot enable it.
   */
  unsafeNoiseControlForTests?: NoiseControl;
  /**
   * The dealer's compute-server endpoint and this server's key from it: the engine then takes its
   * correlated randomness from the dealer instead of OT extension (the key server needs its own).
   */
  dealer?: DealerEndpoint;
  /** Registrations accepted per client address per minute (default 30). */
  registrationsPerMinute?: number;
  /** Job kinds beyond the built-in ones (a deployment's own, or a test's). */
  extraJobKinds?: readonly JobKind[];
  log?: (msg: string) => void;
}

/** What the registration limit counts by: the IPv4 address, or the /64 prefix of an IPv6 one. */
export function registrationSource(ip: string): string {
  const v4 = /^(?:::ffff:)?(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  if (v4) return v4[1]!;
  const [head = '', tail = ''] = ip.toLowerCase().split('::');
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const groups = ip.includes('::') ? [...left, ...new Array(Math.max(0, 8 - left.length - right.length)).fill('0'), ...right] : left;
  return `${groups
    .slice(0, 4)
    .map((g) => g.replace(/^0+(?=.)/, ''))
    .join(':')}::/64`;
}

export interface ComputeServerHandle {
  url: string;
  /** GET this for the Prometheus metrics, when asked for. */
  metricsUrl?: string;
  /** SHA-256 of its TLS certificate, which owners and clients pin at registration (TLS only). */
  tlsFingerprint?: string;
  app: FastifyInstance;
  store: Store;
  runner: JobRunner;
  close(): Promise<void>;
}

const MAX_UPLOAD_BYTES = 64 * 1024 * 1024;

function loadOrCreateX25519(dataDir: string): KeyObject {
  const path = join(dataDir, 'x25519.key');
  if (!existsSync(path)) writeKeyFile(path, exportAgreementPrivateKey(generateAgreementKeyPair().privateKey));
  return importAgreementPrivateKey(readKeyFile(path));
}

/** Asks the key server for pp, waiting for it to come up (the compute server and its workers). */
export async function fetchParams(transport: Transport, waitMs: number): Promise<BcpParams> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    try {
      return checkParamsPolicy(deserializeParams(await transport.call('params', new Uint8Array(0))), 'the key server');
    } catch (e) {
      if (!isKeyServerUnavailable(e) || Date.now() > deadline) throw e;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}

const registerBody = z.object({
  role: z.enum(['owner', 'client']),
  name: z.string().min(1).max(200),
  bcpPublicKey: z.string().min(1).max(8192),
  x25519PublicKey: z.string().max(100).optional(),
});
const datasetBody = z.object({
  name: z.string().min(1).max(200),
  columns: z
    .array(z.string().min(1).max(200))
    .min(1)
    .max(1000)
    .refine((cs) => new Set(cs).size === cs.length, 'column names must be distinct'),
  fractionBits: z.number().int().min(0).max(52),
  maxAbs: z.number().positive().finite(),
  rows: z.number().int().min(1).max(10_000_000),
  /** Total epsilon the owner allows DP queries to spend on this dataset (absent: none). */
  epsilonBudget: z.number().nonnegative().finite().max(1e6).optional(),
  /** k-means releases refuse clusters with fewer members than this (default 5). */
  minClusterSize: z.number().int().min(1).max(1_000_000).optional(),
  /** The largest delta one Gaussian query may spend on this dataset (default 1e-6; 0: no Gaussian queries). */
  maxDelta: z.number().min(0).max(0.1).optional(),
  /** The total delta all Gaussian queries on this dataset may spend (default 1e-5). */
  deltaBudget: z.number().min(0).max(1).optional(),
  /**
   * Owner-side packing (protocols/owner-packs.ts): the values are packed, with the slot width the
   * declared range implies, several to a ciphertext. Not for training uploads, which pack shares.
   */
  packed: z.boolean().optional(),
  /** A training upload (seed 002): secret-shared values and the encrypted seed of the key server's shares. */
  training: z
    .object({
      task: z.enum(['classification', 'regression']),
      /** Empty for an upload for prediction (no label; targets 0). */
      labelColumn: z.string().max(200),
      classes: z.array(z.number().finite()).min(2).max(1000).nullable(),
      targets: z.number().int().min(0).max(1000),
      seed: z.string().min(1).max(100_000),
      slots: z.number().int().min(1).max(1000),
      /** Per feature column, a power of two at least its largest |value| (the owner's declared range). */
      featureBounds: z
        .array(
          z
            .number()
            .positive()
            .max(2 ** 20),
        )
        .max(10_000)
        .optional(),
      /** Keyed id hashes (16 bytes a row, base64) of a part of a vertically partitioned table. */
      ids: z.string().max(64_000_000).optional(),
    })
    .optional(),
});
const chunkBody = z.object({
  rows: z.number().int().min(1).max(1_000_000),
  envelope: z.string().min(1),
  tag: z.string().regex(/^[0-9a-f]{64}$/, 'an HMAC-SHA256 tag is 64 hex digits'),
});
/** Scopes: the job kinds the grant allows; absent, the kinds that release to a client today (k-means and DP statistics). */
const grantBody = z.object({
  clientId: z.string().min(1).max(200),
  scopes: z.array(z.enum(GRANT_SCOPES)).min(1).max(GRANT_SCOPES.length).optional(),
});
const idParam = z.object({ id: z.string().min(1).max(200) });
const grantParam = z.object({ id: z.string().min(1).max(200), clientId: z.string().min(1).max(200) });
const chunkParam = z.object({ id: z.string().min(1).max(200), idx: z.coerce.number().int().min(0).max(1_000_000) });

function parse<T>(schema: z.ZodType<T>, value: unknown): T {
  const r = schema.safeParse(value);
  if (!r.success) {
    const issue = r.error.issues[0];
    throw badRequest(`invalid request: ${issue?.path.join('.') || 'body'}: ${issue?.message ?? 'invalid'}`);
  }
  return r.data;
}

/** A training upload's description must fit its columns, and its seed be a ciphertext under the owner's key. */
function checkTraining(t: TrainingInfo, columns: number, rows: number, owner: Party, params: BcpParams): TrainingInfo {
  if (t.targets >= columns) throw badRequest('a training upload needs at least one feature column besides its targets');
  const forPrediction = t.targets === 0;
  if (forPrediction && (t.classes !== null || t.labelColumn !== '')) throw badRequest('an upload for prediction has no label and no classes');
  if (!forPrediction && t.labelColumn === '') throw badRequest('a training upload names its label column');
  if (!forPrediction && t.task === 'classification' && t.classes?.length !== t.targets)
    throw badRequest('a classification upload has one target column per class');
  if (!forPrediction && t.task === 'regression' && (t.targets !== 1 || t.classes !== null))
    throw badRequest('a regression upload has one target column and no classes');
  if (t.ids !== undefined && Buffer.from(t.ids, 'base64').length !== rows * ID_HASH_BYTES)
    throw badRequest(`the id hashes are ${ID_HASH_BYTES} bytes for each of the ${rows} rows`);
  const pk = deserializePublicKey(owner.bcpPublicKey, params);
  if (deserializeCiphertexts(Buffer.from(t.seed, 'base64'), pk).length !== 1) throw badRequest('the training seed is one ciphertext');
  if (t.slots > ringSlots(params.N)) throw badRequest(`at most ${ringSlots(params.N)} values fit a ciphertext`);
  return t;
}

export async function startComputeServer(opts: ComputeServerOptions): Promise<ComputeServerHandle> {
  requireTlsOffLoopback('compute server', opts.host ?? '127.0.0.1', opts.tls);
  mkdirSync(opts.dataDir, { recursive: true, mode: 0o700 });
  const location = opts.database ?? join(opts.dataDir, 'compute.db');
  const store = await openStore(location);
  opts.log?.(`compute server state in ${describeLocation(location)}`);
  const x25519 = loadOrCreateX25519(opts.dataDir);
  const x25519Public = createPublicKey(x25519).export({ format: 'jwk' }).x!;
  const transport = keyServerTransport(opts.keyServerUrl, opts.channelKey, { fingerprint: opts.keyServerFingerprint });
  const params = await fetchParams(transport, 60_000);
  const pool = createProtocolPool(opts.workers);
  const metrics = opts.metrics && new ProcessMetrics('compute-server');
  const services = {
    store,
    compute: { transport, pool, dealer: opts.dealer },
    params,
    x25519,
    noise: opts.unsafeNoiseControlForTests ?? {},
    blockRecords: opts.blockRecords,
    separateRecordShare: opts.queue !== undefined || opts.keyServerUrl.includes(','),
  };
  const queue = opts.queue;
  const runner = new JobRunner({
    services,
    kinds: [...builtInJobKinds, ...(opts.extraJobKinds ?? [])],
    tasks: queue
      ? () =>
          new BullTaskQueue({
            services,
            connection: redisConnection(queue),
            failFastConnection: redisConnection(queue, { failFast: true }),
            log: opts.log,
          })
      : undefined,
    retryForMs: opts.retryForMs,
    log: opts.log,
    metrics,
  });

  if (metrics && runner.tasks.depth) {
    const depth = () => runner.tasks.depth!().catch(() => ({ waiting: NaN, active: NaN }));
    metrics.gauge('ciphermine_tasks_waiting', 'chunk tasks waiting for a compute worker (BullMQ)', async () => (await depth()).waiting);
    metrics.gauge('ciphermine_tasks_active', 'chunk tasks running on compute workers', async () => (await depth()).active);
  }

  const app = Fastify({ bodyLimit: MAX_UPLOAD_BYTES, ...(opts.tls ? { https: { cert: opts.tls.cert, key: opts.tls.key } } : {}) });
  app.setErrorHandler((err: Error & { code?: string }, _req, reply) => {
    const status = httpStatusOf(err);
    // Errors about the key server are the operator's to fix and say so; other 5xx details stay in the log.
    const operational = err.code === 'ERR_UNREACHABLE' || err.code === 'ERR_CHANNEL_KEY';
    reply.status(status).send({
      error: {
        code: isErrorCode(err.code) ? err.code : status >= 500 ? 'ERR_INTERNAL' : 'ERR_BAD_REQUEST',
        message: status >= 500 && !operational ? 'internal error' : err.message,
      },
    });
    if (status >= 500) opts.log?.(`internal error: ${err.stack ?? err.message}`);
  });

  const auth = async (req: FastifyRequest, role?: Party['role']): Promise<Party> => {
    const h = req.headers.authorization ?? '';
    const m = /^Bearer ([A-Za-z0-9_-]{20,100})$/.exec(h);
    const party = m ? await store.partyByToken(m[1]!) : undefined;
    if (!party) throw unauthorized();
    if (role && party.role !== role) throw forbidden(`only a ${role === 'owner' ? 'data owner' : 'query client'} may do this`);
    return party;
  };

  const ownDataset = async (party: Party, id: string) => {
    const d = await store.dataset(id);
    if (!d) throw notFound(`no dataset ${id}`);
    if (d.ownerId !== party.id) throw forbidden('a data owner may change only its own datasets');
    return d;
  };

  app.get('/v1/info', async () => ({
    params: serializeParams(params).toString('base64'),
    x25519PublicKey: x25519Public,
    keyBits: params.bits,
  }));

  /** Process statistics for operators and benchmarks (no data involved). */
  // Process figures (CPU seconds, memory) tell an observer when jobs run and roughly how large they
  // are, so only the server's own host may read them (operators and benchmarks).
  app.get('/v1/stats', async (req) => {
    if (!['127.0.0.1', '::1', '::ffff:127.0.0.1'].includes(req.ip))
      throw new CiphermineError('ERR_FORBIDDEN', "process statistics are for the server's own host");
    return processStats();
  });

  // Registration is open and cheap to ask for: rate-limited per address so nobody fills the
  // database with identities (it costs the key server nothing either way).
  await app.register(rateLimit, {
    global: false,
    // One IPv6 host owns a whole /64, so the limit counts per /64 there, per address for IPv4. The
    // address is the socket's: behind a reverse proxy every caller shares the proxy's (docs/parties-and-trust.md).
    keyGenerator: (req) => registrationSource(req.ip),
    errorResponseBuilder: (_req, c) => new HttpError('ERR_RATE_LIMITED', `too many registrations from this address: try again in ${c.after}`),
  });
  app.post('/v1/register', { config: { rateLimit: { max: opts.registrationsPerMinute ?? 30, timeWindow: 60_000 } } }, async (req) => {
    const b = parse(registerBody, req.body);
    const pk = deserializePublicKey(Buffer.from(b.bcpPublicKey, 'base64'), params);
    if (b.role === 'owner' && !b.x25519PublicKey) throw badRequest('a data owner must send its X25519 public key');
    // A client's key is optional (it proves the party when its token is rotated; token-routes.ts).
    if (b.x25519PublicKey) importAgreementPublicKey(b.x25519PublicKey);
    // The key server learns the key when a job first needs it (jobs/key-registration.ts).
    return store.addParty(b.role, b.name, serializePublicKey(pk), b.x25519PublicKey ?? null);
  });

  registerTokenRoutes(app, { store, auth: (req) => auth(req), x25519 });

  app.post('/v1/datasets', async (req) => {
    const owner = await auth(req, 'owner');
    const b = parse(datasetBody, req.body);
    const codec = new FixedPointCodec({ fractionBits: b.fractionBits, maxAbs: b.maxAbs }); // refuses an inexact precision
    if (b.packed && b.training) throw badRequest('a training upload packs its shares; it cannot also be owner-packed');
    if (b.packed && ownerSlotBits(codec.maxEncoded) > bitLength(params.N) - 2)
      throw badRequest('the declared range is too wide to pack under these parameters');
    const epsilonBudgetMicro = b.epsilonBudget === undefined ? null : Math.round(b.epsilonBudget * 1e6);
    return {
      id: await store.addDataset({
        ownerId: owner.id,
        name: b.name,
        columns: b.columns,
        fractionBits: b.fractionBits,
        maxAbs: b.maxAbs,
        rows: b.rows,
        epsilonBudgetMicro,
        minClusterSize: b.minClusterSize,
        // Down, past the float error of the scaling: 1.2e-7 * 1e12 is 119999.99999999999.
        maxDeltaPico: b.maxDelta === undefined ? undefined : Math.floor(b.maxDelta * 1e12 + 1e-6),
        deltaBudgetPico: b.deltaBudget === undefined ? undefined : Math.floor(b.deltaBudget * 1e12 + 1e-6),
        training: b.training && checkTraining(b.training, b.columns.length, b.rows, owner, params),
        packSlotBits: b.packed ? ownerSlotBits(codec.maxEncoded) : undefined,
      }),
    };
  });

  app.put('/v1/datasets/:id/chunks/:idx', async (req) => {
    const owner = await auth(req, 'owner');
    const { id, idx } = parse(chunkParam, req.params);
    const d = await ownDataset(owner, id);
    if (d.state !== 'uploading') throw conflict('the dataset is complete; upload a new dataset instead');
    const b = parse(chunkBody, req.body);
    const aesKey = deriveEnvelopeKey(x25519, owner.x25519PublicKey!, { ownerId: owner.id, datasetId: id });
    const envelope = Buffer.from(b.envelope, 'base64');
    const context = uploadContext(id, idx, b.rows);
    const bytes = openEnvelope(aesKey, envelope, context);
    checkCiphertextTag(deriveEnvelopeKey(x25519, owner.x25519PublicKey!, { ownerId: owner.id, datasetId: id }, 'hmac-tag'), context, bytes, b.tag);
    const cts = deserializeCiphertexts(bytes, deserializePublicKey(owner.bcpPublicKey, params));
    // A training upload packs each chunk's values, `slots` to a ciphertext.
    const values = b.rows * d.columns.length;
    const expected = d.training ? Math.ceil(values / d.training.slots) : d.packSlotBits ? packCount(params.N, d.packSlotBits, values) : values;
    if (cts.length !== expected)
      throw badRequest(`chunk holds ${cts.length} ciphertexts, expected ${expected} for ${b.rows} rows x ${d.columns.length} columns`);
    const uploadedRows = await store.putChunk(id, d.rows, { idx, rows: b.rows, envelope, tag: b.tag });
    if (uploadedRows === null) throw badRequest(`more rows than the ${d.rows} declared, or the dataset is complete`);
    return { ok: true, uploadedRows };
  });

  app.post('/v1/datasets/:id/complete', async (req) => {
    const owner = await auth(req, 'owner');
    const { id } = parse(idParam, req.params);
    const d = await ownDataset(owner, id);
    const got = await store.completeUpload(id, d.rows);
    if (got !== d.rows) throw conflict(`uploaded ${got} of ${d.rows} declared rows`);
    return { ok: true };
  });

  app.post('/v1/datasets/:id/grants', async (req) => {
    const owner = await auth(req, 'owner');
    const { id } = parse(idParam, req.params);
    await ownDataset(owner, id);
    const { clientId, scopes } = parse(grantBody, req.body);
    const client = await store.party(clientId);
    if (!client || client.role !== 'client') throw notFound(`no query client ${clientId}`);
    await store.grant(id, clientId, scopes ?? ['kmeans', 'stats']);
    return { ok: true };
  });

  app.delete('/v1/datasets/:id/grants/:clientId', async (req) => {
    const owner = await auth(req, 'owner');
    const { id, clientId } = parse(grantParam, req.params);
    await ownDataset(owner, id);
    if (!(await store.revoke(id, clientId))) throw notFound(`dataset ${id} is not granted to ${clientId}`);
    return { ok: true };
  });

  /** The owner's view of one dataset: its state, the chunks stored so far (to resume), its grants. */
  app.get('/v1/datasets/:id', async (req) => {
    const owner = await auth(req, 'owner');
    const { id } = parse(idParam, req.params);
    const d = await ownDataset(owner, id);
    return { ...d, chunks: await store.chunkSizes(id), grantees: await store.grantees(id) };
  });

  // Finished jobs keep their results; a job still reading the dataset would fail half-way, so wait.
  app.delete('/v1/datasets/:id', async (req) => {
    const owner = await auth(req, 'owner');
    const { id } = parse(idParam, req.params);
    await ownDataset(owner, id);
    for (const jobId of await store.unfinishedJobs()) {
      const spec = (await store.job(jobId))?.spec as { datasets?: unknown } | undefined;
      if (Array.isArray(spec?.datasets) && spec.datasets.includes(id))
        throw conflict(`job ${jobId} is still using dataset ${id}; delete it when the job ends`);
    }
    await store.deleteDataset(id);
    return { ok: true };
  });

  // A query client does not see row counts: DP releases protect the addition or removal of a record
  // only while the recipient does not know the exact count.
  app.get('/v1/datasets', async (req) => {
    const party = await auth(req);
    const list = await store.datasetsVisibleTo(party);
    return { datasets: party.role === 'owner' ? list : list.map(({ rows: _rows, epsilonSpentMicro: _s, deltaSpentPico: _d, ...d }) => d) };
  });

  registerJobRoutes(app, { store, runner, auth, parse });
  registerMailboxRoutes(app, { store, runner, auth: (req) => auth(req), parse });
  registerModelRoutes(app, { store, auth, parse });

  if (metrics) {
    app.addHook('onResponse', async (req, reply) => {
      metrics.httpRequests.inc({ route: `${req.method} ${req.routeOptions.url ?? 'unmatched'}`, status: `${Math.floor(reply.statusCode / 100)}xx` });
    });
  }
  const listener = metrics && (await serveMetrics(metrics, opts.metrics!.host ?? '127.0.0.1', opts.metrics!.port));
  const url = await app.listen({ host: opts.host ?? '127.0.0.1', port: opts.port ?? 0 });
  await runner.resumeAll();
  opts.log?.(`compute server listening on ${url}${opts.tls ? ` (TLS certificate ${opts.tls.fingerprint})` : ''}`);
  let closing: Promise<void> | undefined;
  return {
    url,
    metricsUrl: listener?.url,
    tlsFingerprint: opts.tls?.fingerprint,
    app,
    store,
    runner,
    // Idempotent: a second close waits for the first instead of closing things twice.
    close: () =>
      (closing ??= (async () => {
        await app.close();
        await listener?.close();
        await runner.stop();
        await transport.close?.();
        await pool.close();
        await store.close();
      })()),
  };
}

export { HttpError };
