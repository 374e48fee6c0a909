/**
 * The DP query's chunk tasks (issue 17): the conversion of the column (conversion-tasks.ts) and its
 * per-value part (stats-secure.ts ColumnOp: the clipped values summed, or the count per bin), one
 * task per range of the converted column. Ranges' results add up to the column's; the noise and the
 * release stay with the compute server, once per job.
 */
import { createHash } from 'node:crypto';
import { deserializeCiphertexts, serializeCiphertexts, type BcpPublicKey, type Ciphertext } from '../../../crypto/index.js';
import { addPartials, aggregateRange, type ColumnAggregate, type ColumnOp } from '../../../analytics/stats-secure.js';
import { CiphermineError } from '../../../crypto/errors.js';
import type { JobContext } from '../job-kind.js';
import type { TaskHandler } from '../tasks.js';
import { fromWire, toWire } from '../task-wire.js';

/** Values per aggregation task unless the server sets --block-records. */
export const STATS_BLOCK = 4096;

export interface AggregateInput {
  /** The ColumnOp in task wire form; a sample holds only this range's positions. */
  op: unknown;
  first: number;
  count: number;
}

/** The converted column, read once per job by a process. */
let cached: { job: string; column: Promise<Ciphertext[]> } | undefined;

function column(ctx: { jobId: string; jobKey: BcpPublicKey; services: { store: { jobBlob(j: string, n: string): Promise<Buffer[] | undefined> } } }) {
  if (cached?.job !== ctx.jobId) {
    const column = ctx.services.store.jobBlob(ctx.jobId, 'column').then((parts) => {
      if (!parts) throw new CiphermineError('ERR_CONFLICT', `job ${ctx.jobId} has no converted column yet`);
      return parts.flatMap((p) => deserializeCiphertexts(p, ctx.jobKey, 1 << 24));
    });
    column.catch(() => (cached = undefined));
    cached = { job: ctx.jobId, column };
  }
  return cached.column;
}

export const aggregateTask: TaskHandler = async (ctx, input: AggregateInput) => {
  const xs = await column(ctx);
  if (!Number.isInteger(input.first) || input.first < 0 || input.count < 1 || input.first + input.count > xs.length)
    throw new CiphermineError('ERR_PARAMETER', 'an aggregation range outside the column');
  const op = fromWire<ColumnOp>(input.op as never, ctx.jobKey);
  const out = await aggregateRange(ctx.services.compute, xs.slice(input.first, input.first + input.count), input.first, op);
  return serializeCiphertexts(ctx.jobKey, out);
};

/**
 * The column's ColumnOps as chunk tasks of a step named by the op (a job run again after a restart
 * with a new sample starts a new step rather than mixing two samples' ranges).
 */
export function taskAggregate(ctx: JobContext<unknown>, jobKey: BcpPublicKey, n: number): ColumnAggregate {
  const block = ctx.services.blockRecords ?? STATS_BLOCK;
  return async (op) => {
    const inputs: AggregateInput[] = [];
    for (let first = 0; first < n; first += block) {
      const count = Math.min(block, n - first);
      const mine = op.op === 'clipped-sum' && op.sample ? { ...op, sample: op.sample.filter((i) => i >= first && i < first + count) } : op;
      inputs.push({ op: toWire(mine, jobKey), first, count });
    }
    const step = `aggregate-${createHash('sha256')
      .update(JSON.stringify(toWire(op, jobKey)))
      .digest('hex')
      .slice(0, 16)}`;
    const results = await ctx.fanOut(step, 'aggregate', inputs);
    return addPartials(results.map((r) => deserializeCiphertexts(r, jobKey)));
  };
}
