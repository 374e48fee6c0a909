/**
 * The k-means job's chunk tasks (issue 17): the conversion, one task per stored chunk of an upload
 * (conversion-tasks.ts), and each iteration's assignment, one task per block of records. The
 * compute server makes the iteration's plan (kmeans-secure.ts planAssignment: the work with the
 * key server that every block shares) and stores it with the record share's blinds; a task reads
 * the converted records, the plan and the share from the database and assigns its block.
 */
import { deserializeCiphertexts, serializeCiphertexts, type BcpPublicKey, type Ciphertext } from '../../../crypto/index.js';
import { randomBytes } from 'node:crypto';
import { assignBlock, blockSums, planClusters, type AssignmentBlocks, type AssignmentPlan } from '../../../analytics/kmeans-secure.js';
import type { RecordShare } from '../../../protocols/index.js';
import { CiphermineError } from '../../../crypto/errors.js';
import type { Store } from '../../store/index.js';
import type { JobContext } from '../job-kind.js';
import type { TaskHandler } from '../tasks.js';
import { decodeFrames, encodeFrames, fromWireBuffer, wireBuffer } from '../task-wire.js';

/** One block of one iteration: the records [first, first + count) under the plan and share named. */
export interface AssignInput {
  iteration: number;
  plan: string;
  share?: string;
  first: number;
  count: number;
  /** Ciphertexts per record in the stored records (1 when one to a pack). */
  width: number;
}

/**
 * What a process read last, per job: the records (read once per job, not per task) and the last
 * plans and shares. Small, since a worker runs a few jobs at a time.
 */
class Recent<T> {
  private readonly entries = new Map<string, Promise<T>>();
  constructor(private readonly size: number) {}
  get(key: string, load: () => Promise<T>): Promise<T> {
    let p = this.entries.get(key);
    if (!p) {
      p = load();
      p.catch(() => this.entries.delete(key));
      this.entries.set(key, p);
      for (const k of this.entries.keys()) if (this.entries.size > this.size) this.entries.delete(k);
    }
    return p;
  }
}

const recentIndex = new Recent<number[]>(4);
/** Parts of stored records: a worker meets the same blocks again in the next iteration. */
const recentParts = new Recent<Ciphertext[]>(64);
const recentPlans = new Recent<AssignmentPlan>(4);
const recentShares = new Recent<RecordShare>(4);

async function blob(store: Store, job: string, name: string): Promise<Buffer[]> {
  const parts = await store.jobBlob(job, name);
  if (!parts) throw new CiphermineError('ERR_CONFLICT', `job ${job} has no ${name} (the step was planned again)`);
  return parts;
}

/**
 * The block's records, read from only the parts of the stored records that hold them (the
 * 'records-index' blob gives each part's ciphertext count), so a worker reads its share of a job,
 * not the whole of it.
 */
async function blockRows(store: Store, job: string, jobKey: BcpPublicKey, width: number, first: number, count: number): Promise<Ciphertext[][]> {
  const sizes = await recentIndex.get(job, async () => JSON.parse((await blob(store, job, 'records-index'))[0]!.toString()) as number[]);
  const [from, to] = [first * width, (first + count) * width];
  let at = 0;
  let firstPart = -1;
  let lastPart = -1;
  let start = 0;
  sizes.forEach((n, i) => {
    if (at + n > from && at < to) {
      if (firstPart < 0) [firstPart, start] = [i, at];
      lastPart = i;
    }
    at += n;
  });
  if (firstPart < 0 || at < to) throw new CiphermineError('ERR_PARAMETER', `records [${first}, ${first + count}) are outside the job's`);
  const parts = await Promise.all(
    Array.from({ length: lastPart - firstPart + 1 }, (_, i) =>
      recentParts.get(`${job}/${firstPart + i}`, async () => {
        const [p] = await store.jobBlobParts(job, 'records', firstPart + i, firstPart + i + 1);
        return deserializeCiphertexts(p!, jobKey, 1 << 24);
      }),
    ),
  );
  const flat = parts.flat();
  const mine = flat.slice(from - start, to - start);
  const rows: Ciphertext[][] = [];
  for (let i = 0; i < mine.length; i += width) rows.push(mine.slice(i, i + width));
  return rows;
}

/**
 * The task: frame 0 the block's assignments (two bytes each), frame 1 one byte per cluster (1: the
 * block has members of it), frame 2 those clusters' member sums, `width` ciphertexts each.
 */
export const assignTask: TaskHandler = async (ctx, input: AssignInput) => {
  const { store, compute } = ctx.services;
  const plan = await recentPlans.get(`${ctx.jobId}/${input.plan}`, async () =>
    fromWireBuffer<AssignmentPlan>((await blob(store, ctx.jobId, input.plan))[0]!, ctx.jobKey),
  );
  const share =
    input.share === undefined
      ? undefined
      : await recentShares.get(`${ctx.jobId}/${input.share}`, async () =>
          fromWireBuffer<RecordShare>((await blob(store, ctx.jobId, input.share!))[0]!, ctx.jobKey),
        );
  // The block's records: for the distances (not on shares) and for its member sums.
  const rows = await blockRows(store, ctx.jobId, ctx.jobKey, input.width, input.first, input.count);
  const assignments = await assignBlock(compute, rows, plan, input, share);
  const sums = blockSums(rows, assignments, planClusters(plan));
  return encodeFrames([
    Buffer.from(Uint16Array.from(assignments).buffer),
    Buffer.from(sums.map((s) => (s ? 1 : 0))),
    serializeCiphertexts(
      ctx.jobKey,
      sums.flatMap((s) => s ?? []),
    ),
  ]);
};

/**
 * The blocks of each iteration as chunk tasks of step `assign-<iteration>`: the plan and (once per
 * share) the share's blinds go to the database first; the tasks' results are the assignments.
 */
export function taskBlocks(ctx: JobContext<unknown>, jobKey: BcpPublicKey, width: number, iteration: () => number): AssignmentBlocks {
  const storedShares = new Set<string>();
  return async (plan, blocks, share) => {
    const it = iteration();
    const planName = `plan-${it}-${randomBytes(6).toString('hex')}`;
    await ctx.services.store.putJobBlob(ctx.id, planName, [wireBuffer(plan, jobKey)]);
    let shareName: string | undefined;
    if (share) {
      shareName = `share-${share.id}`;
      if (!storedShares.has(share.id)) {
        await ctx.services.store.putJobBlob(ctx.id, shareName, [wireBuffer(share, jobKey)]);
        storedShares.add(share.id);
      }
    }
    const inputs: AssignInput[] = blocks.map((b) => ({ iteration: it, plan: planName, share: shareName, first: b.first, count: b.count, width }));
    const results = await ctx.fanOut(`assign-${it}`, 'assign', inputs);
    return results.map((r, i) => {
      const [a, present, sums] = decodeFrames(r);
      const assignments = Array.from(new Uint16Array(a!.buffer.slice(a!.byteOffset, a!.byteOffset + a!.byteLength)));
      if (assignments.length !== blocks[i]!.count)
        throw new CiphermineError('ERR_INTERNAL', `block ${i} of iteration ${it} has ${assignments.length} assignments`);
      const flat = deserializeCiphertexts(Buffer.from(sums!), jobKey, 1 << 24);
      if (flat.length !== present!.reduce((n, p) => n + p, 0) * width)
        throw new CiphermineError('ERR_INTERNAL', `block ${i} of iteration ${it} has malformed sums`);
      let at = 0;
      return { assignments, sums: Array.from(present!, (p) => (p ? flat.slice(at, (at += width)) : undefined)) };
    });
  };
}
