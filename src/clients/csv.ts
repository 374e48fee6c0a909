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

/**
 * The header of a CSV file and a parser for its data lines: which columns are kept, and each line
 * turned into numbers or refused with its line number and column name.
 */
export class CsvLayout {
  readonly columns: string[];
  private readonly keep: Array<readonly [string, number]>;

  constructor(
    readonly header: string[],
    ignoreColumns: readonly string[],
  ) {
    if (header.some((h) => h === '')) throw new CsvError('the header row has an empty column name');
    if (new Set(header).size !== header.length) throw new CsvError('the header row repeats a column name');
    const unknown = ignoreColumns.filter((c) => !header.includes(c));
    if (unknown.length) throw new CsvError(`no column named ${unknown.join(', ')} to ignore`);
    this.keep = header.map((h, i) => [h, i] as const).filter(([h]) => !ignoreColumns.includes(h));
    if (this.keep.length === 0) throw new CsvError('no numeric columns left');
    this.columns = this.keep.map(([h]) => h);
  }

  static fromHeaderLine(line: string, lineNo: number, ignoreColumns: readonly string[]): CsvLayout {
    return new CsvLayout(splitLine(line.replace(/^\uFEFF/, ''), lineNo), ignoreColumns);
  }

  /** The kept cells of one data line as numbers. */
  parse(line: string, lineNo: number): number[] {
    const cells = splitLine(line, lineNo);
    if (cells.length !== this.header.length) {
      throw new CsvError(`line ${lineNo}: ${cells.length} cells where the header has ${this.header.length}`);
    }
    return this.keep.map(([name, i]) => {
      const cell = cells[i]!;
      // Decimal notation only: Number() would also read '0x10' as 16, '0b1' as 1 and ' ' as 0.
      const v = DECIMAL.test(cell) ? Number(cell) : NaN;
      if (!Number.isFinite(v)) throw new CsvError(`line ${lineNo}, column ${name}: '${cell}' is not a finite number`);
      return v;
    });
  }
}

export function parseNumericCsv(text: string, ignoreColumns: readonly string[] = []): NumericTable {
  const lines = text.split(/\r?\n/);
  const headerIdx = lines.findIndex((l) => l.replace(/^\uFEFF/, '').trim() !== '');
  if (headerIdx < 0) throw new CsvError('the file is empty');
  const layout = CsvLayout.fromHeaderLine(lines[headerIdx]!, headerIdx + 1, ignoreColumns);
  const rows: number[][] = [];
  for (let li = headerIdx + 1; li < lines.length; li++) {
    if (lines[li]!.trim() !== '') rows.push(layout.parse(lines[li]!, li + 1));
  }
  if (rows.length === 0) throw new CsvError('the file has a header but no rows');
  return { columns: layout.columns, rows };
}

/** One column's cells as text (an id column, which need not be numeric), in row order; blank lines skipped. */
export function textColumn(text: string, name: string): string[] {
  const lines = text.split(/\r?\n/);
  const headerIdx = lines.findIndex((l) => l.replace(/^\uFEFF/, '').trim() !== '');
  if (headerIdx < 0) throw new CsvError('the file is empty');
  const header = splitLine(lines[headerIdx]!.replace(/^\uFEFF/, ''), headerIdx + 1);
  const at = header.indexOf(name);
  if (at < 0) throw new CsvError(`no column named ${name}`);
  const out: string[] = [];
  for (let li = headerIdx + 1; li < lines.length; li++) {
    if (lines[li]!.trim() === '') continue;
    const cells = splitLine(lines[li]!, li + 1);
    if (cells.length !== header.length) throw new CsvError(`line ${li + 1}: ${cells.length} cells where the header has ${header.length}`);
    out.push(cells[at]!);
  }
  return out;
}
