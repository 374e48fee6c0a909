/**
 * The conversion of owners' uploads to a job key as chunk tasks: one task per stored chunk of an
 * upload, which reads that chunk from the database, converts it with the key server (SCT in its
 * bounded or owner-packed form, dataset-conversion.ts) and returns the converted batches, and for a
 * k-means job the blinds of the key server's record share at the chunk's value positions.
 */
import { deserializeCiphertexts, serializeCiphertexts, type BcpPublicKey, type Ciphertext } from '../../crypto/index.js';
import type { RecordLayout } from '../../protocols/index.js';
import { convertChunk } from '../dataset-conversion.js';
import { chunkReader } from '../dataset-reader.js';
import { CiphermineError } from '../../crypto/errors.js';
import type { DatasetRow, Store } from '../store/index.js';
import type { TaskHandler } from './tasks.js';
import { decodeFrames, encodeFrames, fromWire, toWire } from './task-wire.js';

/** One stored chunk to convert: where it is and where its values go. */
export interface ConversionInput {
  dataset: string;
  chunk: number;
  /** The chunk's first value among all the job's values (rows x columns, datasets in order). */
  offset: number;
  kms?: boolean;
  /** Only this column (a DP query). */
  column?: number;
  valueBits?: number;
  /** The record share's id, when the key server keeps what it decrypts (k-means). */
  share?: string;
  /** Records one to a pack (RecordLayout, in task wire form). */
  records?: unknown;
}

/** One input per stored chunk of the datasets, in dataset and chunk order. */
export async function conversionInputs(
  store: Store,
  datasets: readonly DatasetRow[],
  jobKey: BcpPublicKey,
  common: Omit<ConversionInput, 'dataset' | 'chunk' | 'offset' | 'column' | 'records'> & {
    column?: (d: DatasetRow) => number;
    records?: RecordLayout;
  },
): Promise<ConversionInput[]> {
  const out: ConversionInput[] = [];
  let offset = 0;
  for (const d of datasets) {
    for (const { idx, rows } of await store.chunkSizes(d.id)) {
      const { column, records, ...rest } = common;
      out.push({
        ...rest,
        dataset: d.id,
        chunk: idx,
        offset,
        ...(column ? { column: column(d) } : {}),
        ...(records ? { records: toWire(records, jobKey) } : {}),
      });
      offset += rows * d.columns.length;
    }
  }
  return out;
}

/** The task: frame 0 the share's blinds (decimal JSON, empty without a share), then the batches. */
export const convertTask: TaskHandler = async (ctx, input: ConversionInput) => {
  const { store, params, x25519, compute } = ctx.services;
  const d = await store.dataset(input.dataset);
  if (!d) throw new CiphermineError('ERR_NOT_FOUND', `no dataset ${input.dataset}`);
  const chunk = await (await chunkReader(store, d, params, x25519))(input.chunk);
  // The blinds land at the global positions of the chunk's values (sct.ts), in a sparse array.
  const share = input.share === undefined ? undefined : { id: input.share, offset: input.offset, blinds: [] as bigint[] };
  const records = input.records === undefined ? undefined : fromWire<RecordLayout>(input.records as never, ctx.jobKey);
  const batches = await convertChunk(compute, d, chunk, ctx.jobKey, {
    kms: input.kms,
    share,
    records,
    column: input.column,
    valueBits: input.valueBits,
  });
  const blinds = share ? share.blinds.slice(input.offset).map(String) : [];
  return encodeFrames([Buffer.from(JSON.stringify(blinds)), ...batches.map((b) => serializeCiphertexts(ctx.jobKey, b))]);
};

/** The converted batches of all chunks in order, and the share's blinds at their global positions. */
export function conversionOutput(results: readonly Buffer[]): { parts: Buffer[]; blinds: bigint[] } {
  const parts: Buffer[] = [];
  const blinds: bigint[] = [];
  for (const r of results) {
    const [b, ...ps] = decodeFrames(r);
    for (const c of JSON.parse(b!.toString()) as string[]) blinds.push(BigInt(c));
    parts.push(...ps.map((p) => Buffer.from(p)));
  }
  return { parts, blinds };
}

export const readParts = (parts: readonly Buffer[], jobKey: BcpPublicKey): Ciphertext[] =>
  parts.flatMap((p) => deserializeCiphertexts(p, jobKey, 1 << 24));
