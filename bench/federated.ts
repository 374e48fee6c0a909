/**
 * `npm run build && node dist/bench/federated.js --records N --hosts H --dims M --k K --iterations I --key-bits B [--json]`:
 * federated k-means (seed 003) on a seeded synthetic data set split among H host processes, both
 * servers as processes, as in production. It reports per iteration the server side (adding and
 * releasing the totals, `aggregate and release`), the whole iteration as the job saw it, each
 * host's local work (encode, normalise, assign) and its cryptography, and plaintext Lloyd's per
 * iteration on the union in this process, so the overhead of federation can be read off: iteration
 * time minus the slowest host's local work. The last stdout line is one JSON object.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FixedPointCodec } from '../src/crypto/index.js';
import { QueryClient } from '../src/clients/query-client.js';
import { saveIdentity } from '../src/clients/identity.js';
import { federatedReference } from '../src/analytics/federated-kmeans-plain.js';
import { startServerPair } from '../src/cli/child-server.js';
import { hostProcess } from '../src/cli/demo-federated.js';
import { parseFlags, rng, round } from './measure.js';

const flags = parseFlags(process.argv.slice(2));
const num = (name: string, dflt: number) => Number(flags.get(name) ?? dflt);
const records = num('records', 100_000);
const hosts = num('hosts', 4);
const dims = num('dims', 2);
const k = num('k', 5);
const iterations = num('iterations', 3);
const keyBits = num('key-bits', 2048);
const json = flags.has('json');
const log = (s: string) => json || console.error(s);

const rand = rng(20261122);
const centres = Array.from({ length: k }, () => Array.from({ length: dims }, () => (rand() - 0.5) * 160));
const columns = centres[0]!.map((_, a) => `x${a}`);
const per = Math.ceil(records / hosts);
const dir = mkdtempSync(join(tmpdir(), 'ciphermine-bench-federated-'));
const csvs = Array.from({ length: hosts }, (_, h) => {
  const lines = [columns.join(',')];
  for (let i = h * per; i < Math.min(records, (h + 1) * per); i++)
    lines.push(centres[i % k]!.map((c) => (c + (rand() - 0.5) * 40).toFixed(3)).join(','));
  const f = join(dir, `host-${h}.csv`);
  writeFileSync(f, lines.join('\n') + '\n');
  return f;
});
log(`${records} records x ${dims} across ${hosts} hosts written`);

const { ks, cs } = await startServerPair({ dir, keyBits });
try {
  const parties = await Promise.all(Array.from({ length: hosts }, (_, h) => QueryClient.register(cs.url, `host ${h}`)));
  const ids = parties.map((p, h) => {
    const f = join(dir, `host-${h}.id`);
    saveIdentity(f, p.identity());
    return f;
  });
  const init = Array.from({ length: k }, (_, j) => ({ host: 0, row: j }));
  const t0 = performance.now();
  const jobId = await parties[0]!.submit('federated-kmeans', {
    hosts: parties.map((p) => p.id),
    columns,
    k,
    init,
    maxIter: iterations,
    tolerance: 1e-9,
    normalize: 'mean',
    fractionBits: 16,
    maxAbs: 128,
    hostTimeoutSeconds: 3600,
  });
  const outputs = Promise.all(ids.map((f, h) => hostProcess(f, csvs[h]!, jobId, false)));
  const status = await parties[0]!.waitFor(jobId, (s) => log(`  ${s.phase} ${s.progress?.done ?? ''}`), 1000);
  const results = await outputs;
  const jobSeconds = (performance.now() - t0) / 1000;
  if (status.state !== 'done') throw new Error(`job failed: ${status.error}`);
  const its = results[0]!.iterations;
  const perIteration = Object.entries(status.timings)
    .filter(([n]) => n.startsWith('iteration '))
    .map(([, s]) => s);
  // Rounds: moments, init, one per iteration and the final stop (which releases nothing).
  const releasePerRound = (status.timings['aggregate and release'] ?? 0) / (its + 2);
  const slowestLocalPerIteration = Math.max(...results.map((r) => r.seconds.assign)) / (its + 1);

  // Plaintext Lloyd on the union in this process: the same integer arithmetic the hosts run.
  const { parseNumericCsv } = await import('../src/clients/csv.js');
  const { readFileSync } = await import('node:fs');
  const codec = new FixedPointCodec({ fractionBits: 16, maxAbs: 128 });
  const union = csvs.flatMap((f) => parseNumericCsv(readFileSync(f, 'utf8')).rows.map((r) => codec.encodeRow(r)));
  const tp = performance.now();
  const ref = federatedReference(
    union,
    init.map((c) => c.row),
    { k, maxIter: iterations, tolerance: 1e-9, normalize: 'mean', fractionBits: 16 },
  );
  const plaintextPerIteration = (performance.now() - tp) / 1000 / (ref.iterations + 1);
  const agrees = results.every((r) => r.iterations === ref.iterations && r.sizes.every((c, j) => BigInt(c) === ref.sizes[j]));

  const iterationMedian = [...perIteration].sort((a, b) => a - b)[Math.floor(perIteration.length / 2)] ?? 0;
  console.log(
    JSON.stringify({
      records,
      hosts,
      dims,
      k,
      keyBits,
      iterations: its,
      agreesWithPlaintext: agrees,
      seconds: {
        job: round(jobSeconds),
        perIterationMedian: round(iterationMedian),
        serverAggregateAndReleasePerRound: round(releasePerRound),
        slowestHostLocalPerIteration: round(slowestLocalPerIteration),
        overheadPerIteration: round(iterationMedian - slowestLocalPerIteration),
        hostCryptoPerIteration: round(Math.max(...results.map((r) => r.seconds.crypto)) / (its + 2)),
        plaintextLloydPerIteration: round(plaintextPerIteration),
      },
      date: new Date().toISOString(),
    }),
  );
} finally {
  await cs.stop();
  await ks.stop();
  rmSync(dir, { recursive: true, force: true });
}
