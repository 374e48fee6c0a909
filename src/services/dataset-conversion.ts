/**
 * The conversion of an owner's stored values to a job key, whatever their upload format: owner
 * packs (protocols/owner-packs.ts) by the packed SCT that takes them as they are, per-value
 * ciphertexts by the bounded SCT that packs them first. Either way the key server decrypts the same
 * statistically blinded values, one decryption per pack.
 */
import { bitLength, FixedPointCodec, type BcpPublicKey, type Ciphertext } from '../crypto/index.js';
import { sctBounded, sctOwnerPacks, slotsPerPack, type ComputeSideContext, type RecordLayout } from '../protocols/index.js';
import { withDatasetContext, type ValueChunk } from './dataset-reader.js';
import type { DatasetRow } from './store/index.js';

/** Values per call to the key server: bounds one message and the memory of one step. */
export const CONVERSION_BATCH = 4096;

/** The bits of the largest |encoded value| a dataset declares. */
export const datasetValueBits = (d: DatasetRow) => bitLength(new FixedPointCodec({ fractionBits: d.fractionBits, maxAbs: d.maxAbs }).maxEncoded);

export interface ChunkConversion {
  /** Answers in KMS form (a k-means job key). */
  kms?: boolean;
  /** Keep the values Bob decrypts as a record share, at global value positions from `offset`. */
  share?: { id: string; offset: number; blinds: bigint[] };
  /** One KMS-form ciphertext per row (a k-means job that assigns on shares). */
  records?: RecordLayout;
  /** Only this column of the chunk's rows (a DP query). */
  column?: number;
  /**
   * |value| < 2^valueBits for the blinding of per-value ciphertexts (default: the dataset's
   * range); owner packs always use the dataset's own range, which their slots were cut for.
   */
  valueBits?: number;
  /** Called with the number of values converted after every call to the key server. */
  onBatch?: (values: number) => void | Promise<void>;
}

/**
 * One stored chunk of dataset d under `to`: every value, or one column's, as the batches of the calls
 * to the key server (in order); errors name the column.
 */
export async function convertChunk(
  ctx: ComputeSideContext,
  d: DatasetRow,
  chunk: ValueChunk,
  to: BcpPublicKey,
  opts: ChunkConversion = {},
): Promise<Ciphertext[][]> {
  const m = d.columns.length;
  const out: Ciphertext[][] = [];
  // Chunks start at a row, so a position in the chunk names the column. A per-value batch of one
  // column holds that column only; an owner pack holds whole rows whatever is selected.
  const fail = (first: number, filtered: boolean) => (e: unknown) => {
    throw withDatasetContext(e, d, filtered ? { column: d.columns[opts.column!]! } : { firstValue: first });
  };
  if (d.packSlotBits === null) {
    const cts = opts.column === undefined ? chunk.cts : chunk.cts.filter((_, i) => i % m === opts.column);
    // Calls end at row boundaries, so a record is never split.
    const size = Math.max(m, CONVERSION_BATCH - (CONVERSION_BATCH % m));
    for (let i = 0; i < cts.length; i += size) {
      const share = opts.share && { ...opts.share, offset: opts.share.offset + i };
      const batch = cts.slice(i, i + size);
      out.push(
        await sctBounded(ctx, batch, to, opts.valueBits ?? datasetValueBits(d), { kms: opts.kms, share, records: opts.records }).catch(
          fail(i, opts.column !== undefined),
        ),
      );
      await opts.onBatch?.(batch.length);
    }
    return out;
  }
  const per = slotsPerPack(to.params.N, d.packSlotBits);
  // Whole rows per call when a row becomes one ciphertext: a multiple of m / gcd(per, m) packs.
  const unit = opts.records ? m / gcd(per, m) : 1;
  const packsPerCall = unit * Math.max(1, Math.floor(CONVERSION_BATCH / per / unit));
  for (let p = 0; p < chunk.cts.length; p += packsPerCall) {
    const first = p * per;
    const count = Math.min(chunk.values - first, packsPerCall * per);
    const share = opts.share && { ...opts.share, offset: opts.share.offset + first };
    const select = opts.column === undefined ? undefined : { stride: m, at: (((opts.column - first) % m) + m) % m };
    const packs = chunk.cts.slice(p, p + packsPerCall);
    out.push(
      await sctOwnerPacks(ctx, packs, count, to, datasetValueBits(d), { kms: opts.kms, share, select, records: opts.records }).catch(
        fail(first, false),
      ),
    );
    await opts.onBatch?.(count);
  }
  return out;
}

function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return a;
}
