/**
 * Progress of a job on stderr, for any job kind: a one-line bar redrawn in place on a terminal, and
 * one line per change of phase otherwise (logs, CI), so a long job never looks stuck.
 */
import type { JobStatus } from '../clients/query-client.js';

export function progressLine(s: JobStatus, now = Date.now()): string {
  const width = 24;
  const elapsed = (now - (s.startedAt ?? s.createdAt)) / 1000;
  const p = s.progress;
  const fraction = p && p.total > 0 ? Math.min(1, p.done / p.total) : 0;
  const filled = Math.round(fraction * width);
  const bar = '#'.repeat(filled) + '-'.repeat(width - filled);
  const count = p ? ` ${p.unit} ${p.done}/${p.total}` : '';
  const perIteration =
    s.timings.iterations && p?.unit === 'iteration' && p.done > 0 ? `, ~${(s.timings.iterations / p.done).toFixed(1)} s/iteration` : '';
  return `[${bar}]${count} (${s.phase}) ${elapsed.toFixed(1)} s elapsed${perIteration}`;
}

export function progressReporter(stream: NodeJS.WriteStream = process.stderr, enabled = true): (s: JobStatus) => void {
  let lastPhase = '';
  return (s) => {
    if (!enabled) return;
    const ended = s.state === 'done' || s.state === 'failed';
    if (stream.isTTY) {
      stream.write(`\r${progressLine(s)}\x1b[K${ended ? '\n' : ''}`);
    } else if (s.phase !== lastPhase || ended) {
      stream.write(`${progressLine(s)}\n`);
    }
    lastPhase = s.phase;
  };
}
