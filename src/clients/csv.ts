/**
 * CSV input for data owners: a header row, then numeric cells. Quoted fields are understood;
 * anything else that is not a finite number (empty cells, NaN, text) is an error naming the line
 * and column, and ragged rows are refused. Nothing is uploaded unless the whole file parses.
 */
import { CiphermineError } from '../crypto/errors.js';

/** A decimal number: optional sign, digits with an optional fraction, optional exponent. */
const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

export class CsvError extends CiphermineError {
  constructor(message: string) {
    super('ERR_CSV', message);
  }
}

export interface NumericTable {
  columns: string[];
  rows: number[][];
}

function splitLine(line: string, lineNo: number): string[] {
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i]!;
    if (quoted) {
      if (ch === '"' && line[i + 1] === '"') {
        cur += '"';
        i++;
      } else if (ch === '"') quoted = false;
      else cur += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ',') {
      out.push(cur);
      cur = '';
    } else cur += ch;
  }
  if (quoted) throw new CsvError(`line ${lineNo}: unterminated quote`);
  out.push(cur);
  return out.map((c) => c.trim());
}

export function parseNumericCsv(text: string, ignoreColumns: readonly string[] = []): NumericTable {
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  const headerIdx = lines.findIndex((l) => l.trim() !== '');
  if (headerIdx < 0) throw new CsvError('the file is empty');
  const header = splitLine(lines[headerIdx]!, headerIdx + 1);
  if (header.some((h) => h === '')) throw new CsvError('the header row has an empty column name');
  if (new Set(header).size !== header.length) throw new CsvError('the header row repeats a column name');
  const unknown = ignoreColumns.filter((c) => !header.includes(c));
  if (unknown.length) throw new CsvError(`no column named ${unknown.join(', ')} to ignore`);
  const keep = header.map((h, i) => [h, i] as const).filter(([h]) => !ignoreColumns.includes(h));
  if (keep.length === 0) throw new CsvError('no numeric columns left');
  const rows: number[][] = [];
  for (let li = headerIdx + 1; li < lines.length; li++) {
    if (lines[li]!.trim() === '') continue;
    const cells = splitLine(lines[li]!, li + 1);
    if (cells.length !== header.length) {
      throw new CsvError(`line ${li + 1}: ${cells.length} cells where the header has ${header.length}`);
    }
    rows.push(
      keep.map(([name, i]) => {
        const cell = cells[i]!;
        // Decimal notation only: Number() would also read '0x10' as 16, '0b1' as 1 and ' ' as 0.
        const v = DECIMAL.test(cell) ? Number(cell) : NaN;
        if (!Number.isFinite(v)) throw new CsvError(`line ${li + 1}, column ${name}: '${cell}' is not a finite number`);
        return v;
      }),
    );
  }
  if (rows.length === 0) throw new CsvError('the file has a header but no rows');
  return { columns: keep.map(([h]) => h), rows };
}
