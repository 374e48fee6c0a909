/**
 * The DP statistics job kind (seed 001; docs/differential-privacy.md). Admission validates the query
 * and charges every dataset's privacy budget with the job's creation, all or nothing, before any
 * computation, epsilon and (Gaussian) delta, after checking the owners' cap on delta and that the
 * key server answers. A job that fails released nothing and is refunded by the runner. Steps:
 * the job key; the column of every dataset moved to it (stored once); the clipped, binned or counted
 * aggregate with noise added under encryption, released to the query client's key. A restart during
 * the computation runs it again from the stored column; nothing was released before, so the client
 * still sees one noisy answer per charge.
 */
import {
  FixedPointCodec,
  bitLength,
  deserializeCiphertexts,
  deserializePublicKey,
  serializeCiphertexts,
  type Ciphertext,
} from '../../../crypto/index.js';
import { parseRational, type Rational } from '../../../crypto/noise/rational.js';
import { sctBounded, sdcBlindBits } from '../../../protocols/index.js';
import { secureStats, validateQuery, type StatsQuery } from '../../../analytics/stats-secure.js';
import { withDatasetsContext } from '../../dataset-reader.js';
import { conversionInputs, conversionOutput, convertTask } from '../conversion-tasks.js';
import { aggregateTask, taskAggregate } from './stats-tasks.js';
import { badRequest, HttpError } from '../../http-errors.js';
import type { DatasetRow } from '../../store/index.js';
import { admittedDatasets, grantedDatasets, requireKeyServer } from '../datasets.js';
import { defineJobKind } from '../job-kind.js';
import { statsResult, statsSpec } from './stats-schema.js';

type Spec = ReturnType<typeof statsSpec.parse>;

/** The query in encoded units, for the datasets it runs on. */
function encodedQuery(spec: Spec, ds: DatasetRow[], epsilon: Rational): StatsQuery {
  const f = ds[0]!.fractionBits;
  const bounds = [spec.lo ?? 0, spec.hi ?? 0, ...(spec.edges ?? [])].map(Math.abs);
  const codec = new FixedPointCodec({ fractionBits: f, maxAbs: Math.max(...ds.map((d) => d.maxAbs), ...bounds, 1) });
  return {
    kind: spec.kind,
    lo: codec.encode(spec.lo ?? 0),
    hi: codec.encode(spec.hi ?? 1),
    edges: spec.edges?.map((e) => codec.encode(e)),
    epsilon,
    mechanism: spec.mechanism,
    delta: spec.delta,
    mode: spec.mode,
    blocks: spec.blocks,
    blockSize: spec.blockSize,
    valueBits: Math.max(...ds.map((d) => bitLength(new FixedPointCodec({ fractionBits: f, maxAbs: d.maxAbs }).maxEncoded))),
  };
}

/** Epsilon as an exact rational in (0, 10^6], the largest budget an owner can set. */
function epsilonOf(spec: Spec): Rational {
  let e: Rational;
  try {
    e = parseRational(spec.epsilon);
  } catch {
    throw badRequest('epsilon must be a decimal number');
  }
  if (e.num > 1_000_000n * e.den) throw badRequest('epsilon must be at most 1000000');
  return e;
}

/** Millionths of epsilon, rounded up, so the budget is never charged less than the query spends. */
const micro = (e: Rational) => Number((e.num * 1_000_000n + e.den - 1n) / e.den);

export const statsKind = defineJobKind({
  name: 'stats',
  description: 'a differentially private count, sum, mean, histogram or mode of one column (seed 001)',
  spec: statsSpec,
  result: statsResult,
  tasks: { convert: convertTask, aggregate: aggregateTask },

  async admit({ services, client }, spec) {
    const ds = await grantedDatasets(services.store, client, spec.datasets, 'stats');
    const missing = ds.find((d) => !d.columns.includes(spec.column));
    if (missing) throw badRequest(`dataset ${missing.id} has no column '${spec.column}' (it has ${missing.columns.join(', ')})`);
    if ((spec.kind === 'sum' || spec.kind === 'mean') && (spec.lo === undefined || spec.hi === undefined))
      throw badRequest(`a ${spec.kind} query needs clipping bounds lo and hi`);
    if ((spec.kind === 'histogram' || spec.kind === 'mode') && !spec.edges) throw badRequest(`a ${spec.kind} query needs bin edges`);
    const epsilon = epsilonOf(spec);
    const q = encodedQuery(spec, ds, epsilon);
    try {
      validateQuery(q);
      // The secure comparisons must fit before any budget is spent.
      sdcBlindBits(services.params.N, q.valueBits + 6);
    } catch (e) {
      throw badRequest((e as Error).message);
    }
    // Rounded up (never charged less than spent), past the float error of the scaling: 7e-8 * 1e12 is 70000.00000000001.
    // At least 1: a tiny delta must not be charged nothing (nor pass an owner's cap of 0).
    const deltaPico = spec.mechanism === 'gaussian' ? Math.max(1, Math.ceil(spec.delta! * 1e12 - 1e-6)) : 0;
    const capped = ds.find((d) => deltaPico > d.maxDeltaPico);
    if (capped) {
      throw new HttpError(
        'ERR_PRIVACY_BUDGET_EXCEEDED',
        `dataset ${capped.id} allows delta at most ${capped.maxDeltaPico / 1e12} per query; this query asks for ${spec.delta}`,
      );
    }
    await requireKeyServer(services.compute.transport);
    return { spec, charge: { datasets: spec.datasets, epsilonMicro: micro(epsilon), deltaPico } };
  },

  async run(ctx) {
    const { store, params, compute, noise } = ctx.services;
    const ds = await admittedDatasets(store, ctx.spec.datasets);
    const q = encodedQuery(ctx.spec, ds, epsilonOf(ctx.spec));
    const jobKey = await ctx.jobKey();
    // No numeric progress: `done / total` values would tell the query client the exact record
    // count, which add/remove-one DP needs it not to know (docs/differential-privacy.md). Phases only.
    const parts = await ctx.once('column', () =>
      ctx.phase('conversion', async () => {
        // One chunk task per stored chunk (conversion-tasks.ts), here or on the compute workers.
        const inputs = await conversionInputs(store, ds, jobKey, { column: (d) => d.columns.indexOf(ctx.spec.column), valueBits: q.valueBits });
        return conversionOutput(await ctx.fanOut('convert', 'convert', inputs)).parts;
      }),
    );
    await ctx.dropSteps('convert');
    const clientKey = deserializePublicKey(ctx.client.bcpPublicKey, params);
    // The mode's choice is opened to the compute server during the computation: from then on the
    // query has been answered to one party, outage or not.
    if (ctx.spec.kind === 'mode') await ctx.keepCharge();
    // Stored once: the noise is drawn once per job (and per charge), so a restart after the
    // computation cannot produce a second noisy answer, nor a second exponential-mechanism choice.
    const [released, extra] = await ctx.once('released', () =>
      ctx.phase('computation', async () => {
        const column: Ciphertext[] = parts.flatMap((p) => deserializeCiphertexts(p, jobKey, 1 << 24));
        const r = await secureStats(compute, column, q, clientKey, noise, taskAggregate(ctx, jobKey, column.length)).catch((e) => {
          throw withDatasetsContext(e, ds, ctx.spec.column);
        });
        const meta = { divisor: r.divisor?.toString(), choice: r.choice };
        return [serializeCiphertexts(clientKey, r.released), Buffer.from(JSON.stringify(meta))];
      }),
    );
    await ctx.dropSteps('aggregate-');
    const { divisor, choice } = JSON.parse(extra!.toString()) as { divisor?: string; choice?: number };
    const after = await admittedDatasets(store, ctx.spec.datasets);
    return {
      kind: ctx.spec.kind,
      released: released!.toString('base64'),
      fractionBits: ds[0]!.fractionBits,
      divisor,
      choice,
      epsilon: micro(q.epsilon) / 1e6,
      mode: ctx.spec.mode,
      budgetRemaining: Object.fromEntries(after.map((d) => [d.id, ((d.epsilonBudgetMicro ?? 0) - d.epsilonSpentMicro) / 1e6])),
    };
  },
});
