/**
 * CSV files of any size, read as a stream: a first pass checks every line and finds the row count
 * and the largest |value| (what an upload declares before it sends anything), a second pass yields
 * the rows in bounded batches. Neither holds the file in memory.
 */
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { CsvError, CsvLayout } from './csv.js';

export interface CsvSummary {
  columns: string[];
  rows: number;
  /** The largest |value| of any kept cell. */
  largestAbs: number;
}

/** Each data line with its number, after the header; the layout is set once the header is read. */
async function* dataLines(path: string, ignoreColumns: readonly string[], onLayout: (l: CsvLayout) => void): AsyncGenerator<[string, number]> {
  const lines = createInterface({ input: createReadStream(path, 'utf8'), crlfDelay: Infinity });
  let layout: CsvLayout | undefined;
  let lineNo = 0;
  for await (const line of lines) {
    lineNo++;
    if (line.replace(/^\uFEFF/, '').trim() === '') continue;
    if (!layout) onLayout((layout = CsvLayout.fromHeaderLine(line, lineNo, ignoreColumns)));
    else yield [line, lineNo];
  }
  if (!layout) throw new CsvError(`${path} is empty`);
}

/** Validates the whole file and summarises it; nothing is kept but counts. */
export async function scanCsvFile(path: string, ignoreColumns: readonly string[] = []): Promise<CsvSummary> {
  let layout: CsvLayout | undefined;
  let rows = 0;
  let largestAbs = 0;
  for await (const [line, no] of dataLines(path, ignoreColumns, (l) => (layout = l))) {
    for (const x of layout!.parse(line, no)) largestAbs = Math.max(largestAbs, Math.abs(x));
    rows++;
  }
  if (rows === 0) throw new CsvError(`${path} has a header but no rows`);
  return { columns: layout!.columns, rows, largestAbs };
}

/** The rows of the file in batches of `batchRows` (the last may be shorter). */
export async function* csvRowBatches(path: string, ignoreColumns: readonly string[], batchRows: number): AsyncGenerator<number[][]> {
  let layout: CsvLayout | undefined;
  let batch: number[][] = [];
  for await (const [line, no] of dataLines(path, ignoreColumns, (l) => (layout = l))) {
    batch.push(layout!.parse(line, no));
    if (batch.length === batchRows) {
      yield batch;
      batch = [];
    }
  }
  if (batch.length) yield batch;
}
