/**
 * POST /v1/queries: differentially private aggregates (seed 001) for a query client over one column
 * of datasets it was granted. The privacy budget of every dataset involved is charged before any
 * computation (all or nothing, in the database, so refusals survive restarts); a charge is not
 * refunded if the computation later fails, since a retry could otherwise spend more than allowed.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { KeyObject } from 'node:crypto';
import { z } from 'zod';
import { FixedPointCodec, bitLength, deserializePublicKey, serializeCiphertexts, type BcpParams, type Ciphertext } from '../crypto/index.js';
import { parseRational } from '../crypto/noise/rational.js';
import { sctBounded, sdcBlindBits, type AliceContext } from '../protocols/index.js';
import { secureStats, validateQuery, type NoiseControl, type StatsQuery } from '../analytics/stats-secure.js';
import { readDataset } from './dataset-reader.js';
import type { Party, Store } from './store.js';
import { HttpError, badRequest, conflict, forbidden, notFound } from './http-errors.js';

const queryBody = z.object({
  datasets: z.array(z.string().min(1)).min(1).max(64),
  column: z.string().min(1).max(200),
  kind: z.enum(['count', 'sum', 'mean', 'histogram', 'mode']),
  lo: z.number().finite().optional(),
  hi: z.number().finite().optional(),
  edges: z.array(z.number().finite()).min(2).max(1000).optional(),
  epsilon: z.union([z.string(), z.number()]),
  mechanism: z.enum(['laplace', 'gaussian']).default('laplace'),
  delta: z.number().optional(),
  mode: z.enum(['pmdp', 'spmdp']).default('pmdp'),
  blocks: z.number().int().optional(),
});

export type QueryBody = z.input<typeof queryBody>;

export interface StatsEndpointDeps {
  store: Store;
  params: BcpParams;
  x25519: KeyObject;
  alice: AliceContext;
  auth: (req: FastifyRequest, role: Party['role']) => Party;
  noise: NoiseControl;
}

export function registerStatsEndpoint(app: FastifyInstance, deps: StatsEndpointDeps): void {
  const { store, params, x25519, alice } = deps;
  app.post('/v1/queries', async (req) => {
    const client = deps.auth(req, 'client');
    const parsed = queryBody.safeParse(req.body);
    if (!parsed.success) throw badRequest(`invalid query: ${parsed.error.issues[0]?.path.join('.')}: ${parsed.error.issues[0]?.message}`);
    const b = parsed.data;
    if (new Set(b.datasets).size !== b.datasets.length) throw badRequest('a dataset is listed twice');
    const ds = b.datasets.map((id) => {
      const d = store.dataset(id);
      if (!d) throw notFound(`no dataset ${id}`);
      if (!store.isGranted(id, client.id)) throw forbidden(`the owner of ${id} has not granted this client access`);
      if (d.state !== 'ready') throw conflict(`dataset ${id} is still uploading`);
      if (!d.columns.includes(b.column)) throw badRequest(`dataset ${id} has no column '${b.column}' (it has ${d.columns.join(', ')})`);
      return d;
    });
    const f = ds[0]!.fractionBits;
    if (ds.some((d) => d.fractionBits !== f)) throw badRequest('datasets use different fixed-point precisions');
    const codec = new FixedPointCodec({ fractionBits: f, maxAbs: Math.max(...ds.map((d) => d.maxAbs), ...[b.lo ?? 0, b.hi ?? 0, ...(b.edges ?? [])].map(Math.abs), 1) });
    const needsBounds = b.kind === 'sum' || b.kind === 'mean';
    if (needsBounds && (b.lo === undefined || b.hi === undefined)) throw badRequest(`a ${b.kind} query needs clipping bounds lo and hi`);
    if ((b.kind === 'histogram' || b.kind === 'mode') && !b.edges) throw badRequest(`a ${b.kind} query needs bin edges`);
    let epsilon;
    try {
      epsilon = parseRational(b.epsilon);
    } catch {
      throw badRequest('epsilon must be a decimal number');
    }
    const q: StatsQuery = {
      kind: b.kind,
      lo: codec.encode(b.lo ?? 0),
      hi: codec.encode(b.hi ?? 1),
      edges: b.edges?.map((e) => codec.encode(e)),
      epsilon,
      mechanism: b.mechanism,
      delta: b.delta,
      mode: b.mode,
      blocks: b.blocks,
      valueBits: Math.max(...ds.map((d) => bitLength(new FixedPointCodec({ fractionBits: f, maxAbs: d.maxAbs }).maxEncoded))),
    };
    try {
      validateQuery(q);
      // the secure comparisons must fit before any budget is spent
      sdcBlindBits(params.N, q.valueBits + 6);
    } catch (e) {
      throw badRequest((e as Error).message);
    }
    const micro = Number((epsilon.num * 1_000_000n + epsilon.den - 1n) / epsilon.den);
    const charge = store.chargeBudget(b.datasets, micro);
    if (!charge.ok) {
      const d = charge.dataset;
      const left = d.epsilonBudgetMicro === null ? 0 : (d.epsilonBudgetMicro - d.epsilonSpentMicro) / 1e6;
      throw new HttpError(403, 'ERR_BUDGET_EXCEEDED', `dataset ${d.id} has privacy budget ${left} left, the query needs ${micro / 1e6}`);
    }
    const jobKey = deserializePublicKey(await alice.transport.call('job-key', new Uint8Array(0)), params);
    const column: Ciphertext[] = [];
    for (const d of ds) {
      const a = d.columns.indexOf(b.column);
      const all = readDataset(store, d, params, x25519);
      const mine = all.filter((_, i) => i % d.columns.length === a);
      column.push(...(await sctBounded(alice, mine, jobKey, q.valueBits)));
    }
    const clientKey = deserializePublicKey(client.bcpPublicKey, params);
    const r = await secureStats(alice, column, q, clientKey, deps.noise);
    return {
      kind: b.kind,
      released: serializeCiphertexts(clientKey, r.released).toString('base64'),
      fractionBits: f,
      divisor: r.divisor?.toString(),
      choice: r.choice,
      epsilon: micro / 1e6,
      mode: b.mode,
      budgetRemaining: Object.fromEntries(
        b.datasets.map((id) => {
          const d = store.dataset(id)!;
          return [id, ((d.epsilonBudgetMicro ?? 0) - d.epsilonSpentMicro) / 1e6];
        }),
      ),
    };
  });
}
