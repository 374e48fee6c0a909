/**
 * A labelled table as a training upload sees it: the feature columns, then the targets, one-hot
 * for classification (one column per class, in the declared class order) or the label itself for
 * regression. Every owner of a training job must declare the same classes in the same order, so
 * the one-hot columns line up across owners; by default they are the sorted labels of this file.
 */
import { ParameterError } from '../crypto/errors.js';
import type { NumericTable } from './csv.js';

export interface TrainingTableOptions {
  /** The label column. */
  label: string;
  task?: 'classification' | 'regression';
  /** Class values in one-hot order (default: the sorted distinct labels of this table). */
  classes?: number[];
}

export interface TrainingTable {
  columns: string[];
  rows: number[][];
  info: { task: 'classification' | 'regression'; labelColumn: string; classes: number[] | null; targets: number };
}

export function trainingTable(table: NumericTable, o: TrainingTableOptions): TrainingTable {
  const at = table.columns.indexOf(o.label);
  if (at < 0) throw new ParameterError(`no label column '${o.label}' (the columns are ${table.columns.join(', ')})`);
  if (table.columns.length < 2) throw new ParameterError('a training table needs at least one feature column besides the label');
  const task = o.task ?? 'classification';
  const features = table.columns.filter((_, j) => j !== at);
  const featureRows = table.rows.map((r) => r.filter((_, j) => j !== at));
  const labels = table.rows.map((r) => r[at]!);
  if (task === 'regression') {
    return {
      columns: [...features, o.label],
      rows: featureRows.map((r, i) => [...r, labels[i]!]),
      info: { task, labelColumn: o.label, classes: null, targets: 1 },
    };
  }
  const classes = o.classes ?? [...new Set(labels)].sort((a, b) => a - b);
  if (classes.length < 2) throw new ParameterError('classification needs at least two classes');
  if (new Set(classes).size !== classes.length) throw new ParameterError('the classes must be distinct');
  const index = new Map(classes.map((c, i) => [c, i]));
  const rows = featureRows.map((r, i) => {
    const k = index.get(labels[i]!);
    if (k === undefined) throw new ParameterError(`row ${i + 1}: label ${labels[i]} is not one of the classes ${classes.join(',')}`);
    return [...r, ...classes.map((_, j) => (j === k ? 1 : 0))];
  });
  return {
    columns: [...features, ...classes.map((c) => `${o.label}=${c}`)],
    rows,
    info: { task, labelColumn: o.label, classes, targets: classes.length },
  };
}
