/** The scale-out tests' data and reference: iris, and plaintext Lloyd's on the same fixed-point values. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { FixedPointCodec } from '../../src/crypto/index.js';
import { parseNumericCsv } from '../../src/clients/csv.js';
import { lloyd } from '../../src/analytics/kmeans-plain.js';
import type { QueryClient } from '../../src/clients/query-client.js';

export const iris = () => parseNumericCsv(readFileSync(new URL('../../../data/iris.csv', import.meta.url), 'utf8'), ['label']);
export const irisCodec = new FixedPointCodec({ fractionBits: 16, maxAbs: 8 });

/** The job's decrypted result is exactly plaintext Lloyd's from the same start (assignments, sums, iterations). */
export async function assertEqualsLloyd(client: QueryClient, job: string, init: number[]): Promise<void> {
  const r = await client.kmeansResult(job);
  const plain = lloyd(
    iris().rows.map((row) => irisCodec.encodeRow(row)),
    init,
    100,
  );
  assert.deepEqual(r.assignments, plain.assignments);
  assert.deepEqual(r.sums, plain.sums);
  assert.equal(r.iterations, plain.iterations);
}
