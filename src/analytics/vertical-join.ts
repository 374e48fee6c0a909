/**
 * Vertically partitioned training data (seed 002: data "arbitrarily partitioned"): owners hold
 * different columns of the same records, matched on keyed hashes of an id column (HMAC-SHA256
 * under a key the owners share, so the servers can match rows without learning the ids). The
 * compute server finds each part's row order from the hashes; both servers then join their shares
 * row by row the same way. Only the permutations are public to the servers, never an id.
 */
import { ParameterError } from '../crypto/errors.js';

/** How the parts join, per part in the order given: its columns, its target columns, its row for each joined row. */
export interface VerticalLayout {
  columns: number[];
  targets: number[];
  /** perms[s][i]: the row of part s that is joined row i. */
  perms: number[][];
}

/**
 * Row orders from each part's id hashes: joined row i is the first part's row i. Ids that do not
 * match exactly are an error stating how many are missing where (never which).
 */
export function rowOrders(ids: readonly (readonly string[])[], names: readonly string[]): number[][] {
  const first = ids[0]!;
  const index = ids.map((list, s) => {
    const m = new Map<string, number>();
    list.forEach((h, i) => {
      if (m.has(h)) throw new ParameterError(`${names[s]} repeats an id: ids must be unique within each part`);
      m.set(h, i);
    });
    return m;
  });
  ids.forEach((list, s) => {
    if (s === 0) return;
    const missing = first.filter((h) => !index[s]!.has(h)).length;
    const extra = list.filter((h) => !index[0]!.has(h)).length;
    if (missing || extra)
      throw new ParameterError(
        `the ids do not match across owners: ${names[s]} lacks ${missing} of ${names[0]}'s ids and has ${extra} that ${names[0]} lacks`,
      );
  });
  return index.map((m) => first.map((h) => m.get(h)!));
}

/**
 * Joined rows: each part's features in part order, then the targets of the part that holds them
 * (exactly one does). Both servers call it on their shares with the same layout.
 */
export function joinVertical(parts: readonly BigUint64Array[], layout: VerticalLayout): BigUint64Array {
  const labelled = layout.targets.filter((t) => t > 0).length;
  if (labelled !== 1) throw new ParameterError(`exactly one part of a vertical table holds the labels, here ${labelled} do`);
  const n = layout.perms[0]!.length;
  const features = layout.columns.map((c, s) => c - layout.targets[s]!);
  const targets = layout.targets.reduce((a, t) => a + t, 0);
  const width = features.reduce((a, f) => a + f, 0) + targets;
  const out = new BigUint64Array(n * width);
  for (let i = 0; i < n; i++) {
    let at = i * width;
    parts.forEach((part, s) => {
      const r = layout.perms[s]![i]!;
      const c = layout.columns[s]!;
      out.set(part.subarray(r * c, r * c + features[s]!), at);
      at += features[s]!;
    });
    parts.forEach((part, s) => {
      const t = layout.targets[s]!;
      if (t === 0) return;
      const r = layout.perms[s]![i]!;
      const c = layout.columns[s]!;
      out.set(part.subarray(r * c + c - t, (r + 1) * c), at);
    });
  }
  return out;
}

/** A layout fits its parts (each perm a permutation of the part's rows) and the joined table's width. */
export function checkLayout(layout: VerticalLayout, rows: readonly number[], columns: number, targets: number): void {
  const parts = rows.length;
  if (layout.columns.length !== parts || layout.targets.length !== parts || layout.perms.length !== parts)
    throw new ParameterError('a vertical layout describes every part');
  if (layout.columns.reduce((a, c) => a + c, 0) !== columns || layout.targets.reduce((a, t) => a + t, 0) !== targets)
    throw new ParameterError("a vertical layout's columns do not add up to the joined table");
  const n = layout.perms[0]!.length;
  layout.perms.forEach((perm, s) => {
    if (perm.length !== n || rows[s] !== n) throw new ParameterError('every part of a vertical table holds the same records');
    const seen = new Uint8Array(n);
    for (const r of perm) {
      if (!Number.isInteger(r) || r < 0 || r >= n || seen[r]) throw new ParameterError('a row order is not a permutation of its part');
      seen[r] = 1;
    }
  });
}
