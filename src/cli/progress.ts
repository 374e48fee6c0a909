/**
 * Progress on stderr, so `--json` output stays clean on stdout: a one-line display redrawn in place
 * on a terminal, and otherwise (logs, CI) one line per phase, per 10 % or per iteration, so a long
 * command never looks stuck.
 */
import type { JobStatus } from '../clients/query-client.js';
import type { UploadProgress } from '../clients/data-owner.js';

const WIDTH = 24;

function bar(fraction: number): string {
  const filled = Math.round(Math.min(1, Math.max(0, fraction)) * WIDTH);
  return `[${'#'.repeat(filled)}${'-'.repeat(WIDTH - filled)}]`;
}

/**
 * One line for a job's status. Iterations have no known total (k-means stops when it converges),
 * so they show a count, the limit and the last iteration's time rather than a bar scaled to the limit.
 */
export function progressLine(s: JobStatus, now = Date.now()): string {
  const elapsed = `${((now - (s.startedAt ?? s.createdAt)) / 1000).toFixed(1)} s elapsed`;
  const p = s.progress;
  if (s.state === 'done' || s.state === 'failed') return `${s.state} (${s.phase}) ${elapsed}`;
  if (p?.unit === 'iteration') {
    const last = s.timings[`iteration ${p.done}`];
    return `(${s.phase}) iteration ${p.done}, at most ${p.total}${last !== undefined ? `, last took ${last.toFixed(1)} s` : ''}, ${elapsed}`;
  }
  if (p && p.total > 0) {
    const where = p.note ? `, ${p.note}` : '';
    // A value for this client alone (a training's loss), opened by the client library.
    const secret = s.opened ? `, ${s.opened.label} ${s.opened.values.map((v) => v.toFixed(4)).join(' ')}` : '';
    return `${bar(p.done / p.total)} (${s.phase}) ${p.unit} ${p.done}/${p.total}${where}${secret}, ${elapsed}`;
  }
  return `(${s.phase}) ${elapsed}`;
}

/** What a non-terminal line is printed for: a new phase, a new tenth of the work, a new iteration. */
function milestone(s: JobStatus): string {
  const p = s.progress;
  const step = !p ? '' : p.unit === 'iteration' ? String(p.done) : p.total > 0 ? String(Math.floor((10 * p.done) / p.total)) : '';
  // A new value for the client (each epoch's loss) is a milestone too.
  return `${s.state}/${s.phase}/${p?.unit ?? ''}/${step}/${s.opened?.label ?? ''}`;
}

export function progressReporter(stream: NodeJS.WriteStream = process.stderr, enabled = true): (s: JobStatus) => void {
  let last = '';
  return (s) => {
    if (!enabled) return;
    const ended = s.state === 'done' || s.state === 'failed';
    if (stream.isTTY) {
      stream.write(`\r${progressLine(s)}\x1b[K${ended ? '\n' : ''}`);
    } else if (milestone(s) !== last) {
      stream.write(`${progressLine(s)}\n`);
    }
    last = milestone(s);
  };
}

/** Rows encrypted and stored, with the rate, for `owner upload`. */
export function uploadReporter(stream: NodeJS.WriteStream = process.stderr): (p: UploadProgress) => void {
  const start = Date.now();
  let lastTenth = -1;
  return (p) => {
    const seconds = (Date.now() - start) / 1000;
    const line = `${bar(p.rowsSent / p.rows)} rows encrypted and sent ${p.rowsSent}/${p.rows}, ${seconds.toFixed(1)} s elapsed`;
    const done = p.rowsSent === p.rows;
    if (stream.isTTY) stream.write(`\r${line}\x1b[K${done ? '\n' : ''}`);
    else if (Math.floor((10 * p.rowsSent) / p.rows) !== lastTenth) stream.write(`${line}\n`);
    lastTenth = Math.floor((10 * p.rowsSent) / p.rows);
  };
}
