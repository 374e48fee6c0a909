/** A one-line progress bar on stderr: iteration, elapsed time and an estimate. */
import type { JobStatus } from '../clients/query-client.js';

export function progressLine(s: JobStatus, now = Date.now()): string {
  const width = 24;
  const started = s.startedAt ?? s.createdAt;
  const elapsed = (now - started) / 1000;
  const iterSeconds = s.timings.iterations && s.iteration > 0 ? s.timings.iterations / s.iteration : undefined;
  const filled = Math.min(width, Math.round((s.iteration / Math.max(1, s.maxIter)) * width));
  const bar = '#'.repeat(filled) + '-'.repeat(width - filled);
  const estimate = iterSeconds ? `, ~${iterSeconds.toFixed(1)} s/iteration, at most ${(iterSeconds * (s.maxIter - s.iteration)).toFixed(0)} s left` : '';
  return `[${bar}] iteration ${s.iteration}/${s.maxIter} (${s.phase}) ${elapsed.toFixed(1)} s elapsed${estimate}`;
}

export function progressReporter(enabled: boolean): (s: JobStatus) => void {
  return (s) => {
    if (!enabled) return;
    process.stderr.write(`\r${progressLine(s)}\x1b[K`);
    if (s.state === 'done' || s.state === 'failed') process.stderr.write('\n');
  };
}
