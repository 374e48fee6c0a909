/** Shared by the federated k-means tests: hosts over the real services, and the reference they must equal. */
import assert from 'node:assert/strict';
import { FixedPointCodec } from '../../src/crypto/index.js';
import type { NumericTable } from '../../src/clients/csv.js';
import { QueryClient } from '../../src/clients/query-client.js';
import { Host, type HostOutcome } from '../../src/clients/host.js';
import { federatedReference } from '../../src/analytics/federated-kmeans-plain.js';
import type { FederatedKMeansSpec } from '../../src/services/jobs/kinds/federated-kmeans-schema.js';

export interface FederatedRun {
  k: number;
  /** Rows of the union used as initial centres. */
  init: number[];
  normalize?: 'none' | 'mean' | 'zscore';
  tolerance?: number;
  maxIter?: number;
  fractionBits?: number;
  maxAbs?: number;
}

/** Contiguous shares of the table, one per host, and the initial rows as (host, local row). */
export function split(table: NumericTable, hosts: number, init: number[]) {
  const per = Math.ceil(table.rows.length / hosts);
  const parts = Array.from({ length: hosts }, (_, h) => ({ columns: table.columns, rows: table.rows.slice(h * per, (h + 1) * per) }));
  return { parts, init: init.map((i) => ({ host: Math.floor(i / per), row: i % per })) };
}

export async function registerHosts(url: string, n: number): Promise<Array<{ client: QueryClient; host: Host }>> {
  return Promise.all(
    Array.from({ length: n }, async (_, h) => {
      const client = await QueryClient.register(url, `host ${h}`);
      return { client, host: Host.fromIdentity(client.identity()) };
    }),
  );
}

export function specFor(hostIds: string[], table: NumericTable, init: Array<{ host: number; row: number }>, o: FederatedRun): FederatedKMeansSpec {
  return {
    hosts: hostIds,
    columns: table.columns,
    k: o.k,
    init,
    normalize: o.normalize ?? 'mean',
    tolerance: o.tolerance ?? 1e-4,
    maxIter: o.maxIter ?? 50,
    fractionBits: o.fractionBits ?? 16,
    maxAbs: o.maxAbs ?? 2 ** 12,
    hostTimeoutSeconds: 20,
  };
}

/** Runs a federated job with `hosts` hosts holding contiguous shares of `table`; host 0 creates it. */
export async function federate(url: string, table: NumericTable, hosts: number, o: FederatedRun) {
  const parties = await registerHosts(url, hosts);
  const { parts, init } = split(table, hosts, o.init);
  const jobId = await parties[0]!.client.submit(
    'federated-kmeans',
    specFor(
      parties.map((p) => p.client.id),
      table,
      init,
      o,
    ),
  );
  const outcomes = await Promise.all(parties.map((p, h) => p.host.join(jobId, parts[h]!, { pollMs: 20 })));
  const status = await parties[0]!.client.waitFor(jobId);
  return { jobId, outcomes, status, parties };
}

/** Every host's outcome equals plaintext Lloyd's on the union, exactly at the fixed-point level. */
export function assertEqualsReference(outcomes: HostOutcome[], table: NumericTable, o: FederatedRun): void {
  const f = o.fractionBits ?? 16;
  const codec = new FixedPointCodec({ fractionBits: f, maxAbs: o.maxAbs ?? 2 ** 12 });
  const ref = federatedReference(
    table.rows.map((r) => codec.encodeRow(r)),
    o.init,
    { k: o.k, maxIter: o.maxIter ?? 50, tolerance: o.tolerance ?? 1e-4, normalize: o.normalize ?? 'mean', fractionBits: f },
  );
  for (const out of outcomes) {
    assert.deepEqual(out.sums, ref.sums);
    assert.deepEqual(out.sizes, ref.sizes);
    assert.equal(out.iterations, ref.iterations);
    assert.equal(out.converged, ref.converged);
    // Sums of squares travel only for z-scores.
    const { squares, ...rest } = ref.normalizer.moments;
    assert.deepEqual(out.normalizer.moments, { ...rest, squares: o.normalize === 'zscore' ? squares : squares.map(() => 0n) });
  }
  assert.deepEqual(
    outcomes.flatMap((o) => o.assignments),
    ref.assignments,
  );
}
