/**
 * Differentially private aggregates through the services (seed 001). With noise switched off (a
 * test-only option of the compute server, unreachable from the CLI or environment), every query
 * equals the plaintext clipped answer exactly; with noise on, the sPMDP total noise is known to no
 * single party; budgets stop exactly and survive a restart; bad input gets clear errors.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { FixedPointCodec, readKeyFile } from '../../src/crypto/index.js';
import { DataOwner } from '../../src/clients/data-owner.js';
import { QueryClient } from '../../src/clients/query-client.js';
import { ApiError } from '../../src/clients/api.js';
import { clippedSum, histogram } from '../../src/analytics/stats-plain.js';
import { startComputeServer } from '../../src/services/compute-server.js';
import { startServices, countRows, type Services } from './services-harness.js';

const codec = new FixedPointCodec({ fractionBits: 8, maxAbs: 1000 });
// Two hospitals' wages (thousands), with outliers on both sides of the clipping bounds.
const partA = [31.5, 42, 55.25, -3, 120, 61, 47.5, 38, 29, 900];
const partB = [52, 44.75, 0, 66, 71.5, 35, 250, 48, 57, 41];
const all = [...partA, ...partB];
const enc = (xs: number[]) => xs.map((x) => codec.encode(x));

async function setup(s: Services, budget = 100) {
  const a = await DataOwner.register(s.cs.url, 'hospital A');
  const b = await DataOwner.register(s.cs.url, 'hospital B');
  const client = await QueryClient.register(s.cs.url, 'statistician');
  const dsA = await a.upload('wages A', { columns: ['wage', 'age'], rows: partA.map((w, i) => [w, 30 + i]) }, codec, { epsilonBudget: budget });
  // A packs its values (the default), B sends one per ciphertext: every query reads both formats.
  const dsB = await b.upload('wages B', { columns: ['wage', 'age'], rows: partB.map((w, i) => [w, 40 + i]) }, codec, {
    epsilonBudget: budget,
    pack: false,
  });
  await a.grant(dsA, client.id);
  await b.grant(dsB, client.id);
  return { a, b, client, datasets: [dsA, dsB] };
}

describe('DP aggregates with noise switched off equal the plaintext clipped answers', () => {
  let s: Services;
  let ctx: Awaited<ReturnType<typeof setup>>;
  before(async () => {
    s = await startServices(512, { unsafeNoiseControlForTests: { disabled: true } });
    ctx = await setup(s);
  });
  after(() => s.close());

  const lo = 10;
  const hi = 100;
  const exactSum = () => Number(clippedSum(enc(all), codec.encode(lo), codec.encode(hi))) / 256;

  it('count, sum and mean (noisy sum / noisy count), both modes', async () => {
    for (const mode of ['pmdp', 'spmdp'] as const) {
      const base = { datasets: ctx.datasets, column: 'wage', epsilon: 0.5, mode };
      assert.equal((await ctx.client.stats({ ...base, kind: 'count' })).value, all.length);
      assert.equal((await ctx.client.stats({ ...base, kind: 'sum', lo, hi })).value, exactSum());
      assert.equal((await ctx.client.stats({ ...base, kind: 'mean', lo, hi })).value, exactSum() / all.length);
    }
  });

  it('sample-and-aggregate with a public block size: blocks covering every record give the clipped mean; more slots than records count as 0', async () => {
    assert.equal(all.length % 4, 0);
    const base = { datasets: ctx.datasets, column: 'wage', epsilon: 1, kind: 'mean' as const, lo, hi, blocks: 4 };
    const r = await ctx.client.stats({ ...base, blockSize: all.length / 4 });
    assert.ok(Math.abs(r.value! - exactSum() / all.length) < 1e-9, `${r.value} vs ${exactSum() / all.length}`);
    // Twice the slots: the divisor is the public b * s, so the value halves and n is not revealed.
    const padded = await ctx.client.stats({ ...base, blockSize: all.length / 2 });
    assert.ok(Math.abs(padded.value! - exactSum() / (2 * all.length)) < 1e-9, `${padded.value}`);
  });

  it('histogram with declared edges, outliers in the end bins, and the mode', async () => {
    const edges = [0, 40, 50, 60, 100];
    const r = await ctx.client.stats({ datasets: ctx.datasets, column: 'wage', epsilon: 1, kind: 'histogram', edges });
    const want = histogram(
      enc(all),
      edges.map((e) => codec.encode(e)),
    ).map(Number);
    assert.deepEqual(r.counts, want);
    const m = await ctx.client.stats({ datasets: ctx.datasets, column: 'wage', epsilon: 1, kind: 'mode', edges });
    assert.equal(m.choice, want.indexOf(Math.max(...want)));
  });
});

describe('DP aggregates with noise on', () => {
  let s: Services;
  let ctx: Awaited<ReturnType<typeof setup>>;
  const computeServerNoise: bigint[] = [];
  before(async () => {
    s = await startServices(512, { unsafeNoiseControlForTests: { onComputeServerNoise: (v) => computeServerNoise.push(...v) } });
    ctx = await setup(s, 1000);
  });
  after(() => s.close());

  it('spmdp: the total noise is the sum of two shares, and no single party holds it', async () => {
    const keyServerShares: bigint[] = [];
    s.ks.core.observer = (protocol, values) => {
      if (protocol === 'noise-share') keyServerShares.push(...values);
    };
    const exact = Number(clippedSum(enc(all), codec.encode(10), codec.encode(100)));
    let aliceKnew = 0;
    let bobKnew = 0;
    const rounds = 12;
    for (let i = 0; i < rounds; i++) {
      computeServerNoise.length = 0;
      keyServerShares.length = 0;
      const r = await ctx.client.stats({ datasets: ctx.datasets, column: 'wage', epsilon: 0.5, kind: 'sum', lo: 10, hi: 100, mode: 'spmdp' });
      const total = BigInt(Math.round(r.value! * 256 - exact));
      assert.equal(computeServerNoise.length, 1);
      assert.equal(keyServerShares.length, 1);
      assert.equal(computeServerNoise[0]! + keyServerShares[0]!, total, 'published = exact + both shares');
      if (computeServerNoise[0] === total) aliceKnew++;
      if (keyServerShares[0] === total) bobKnew++;
    }
    // A party's share equals the total only when the other's share happens to be 0 (probability
    // 1 - exp(-1/t) ~ 0.00004 at this scale).
    assert.ok(aliceKnew <= 1 && bobKnew <= 1, `compute server knew ${aliceKnew}, key server ${bobKnew}`);
    s.ks.core.observer = undefined;
  });

  it("pmdp: the published value differs from the exact one by the designated party's noise", async () => {
    computeServerNoise.length = 0;
    const r = await ctx.client.stats({ datasets: ctx.datasets, column: 'wage', epsilon: 1, kind: 'count', mode: 'pmdp' });
    assert.equal(BigInt(r.value! - all.length), computeServerNoise[0]);
  });

  it("a DP job's status shows phases, never the record count (add/remove adjacency needs it hidden)", async () => {
    const seen: Array<unknown> = [];
    const r = await ctx.client.stats(
      { datasets: ctx.datasets, column: 'wage', epsilon: 0.5, kind: 'sum', lo: 10, hi: 100 },
      { onStatus: (s) => seen.push(s.progress), intervalMs: 5 },
    );
    assert.ok(seen.length > 0);
    assert.ok(
      seen.every((p) => p === null),
      `progress seen: ${JSON.stringify(seen)}`,
    );
    assert.equal((await ctx.client.status(r.jobId)).progress, null);
  });
});

describe('privacy budget and bad input', () => {
  let s: Services;
  let ctx: Awaited<ReturnType<typeof setup>>;
  before(async () => {
    s = await startServices(512);
    ctx = await setup(s, 1);
  });
  after(() => s.close());

  const reject = (p: Promise<unknown>, status: number, re: RegExp) =>
    assert.rejects(p, (e: unknown) => e instanceof ApiError && e.status === status && re.test(e.message));

  it('bad queries get clear errors and spend nothing', async () => {
    const base = { datasets: ctx.datasets, column: 'wage', epsilon: 0.25 };
    await reject(ctx.client.stats({ ...base, kind: 'sum', lo: 100, hi: 10 }), 400, /lo < hi/);
    await reject(ctx.client.stats({ ...base, kind: 'sum', lo: 10, hi: 100, epsilon: 0 }), 400, /epsilon/);
    await reject(ctx.client.stats({ ...base, kind: 'sum', lo: 10, hi: 100, epsilon: -1 }), 400, /epsilon/);
    await reject(ctx.client.stats({ ...base, kind: 'count', epsilon: '1e30' }), 400, /epsilon/);
    await reject(ctx.client.stats({ ...base, kind: 'count', epsilon: 1e30 }), 400, /epsilon/);
    await reject(ctx.client.stats({ ...base, kind: 'sum', column: 'salary', lo: 10, hi: 100 }), 400, /no column 'salary'/);
    await reject(ctx.client.stats({ ...base, kind: 'histogram', edges: [5, 1] }), 400, /increasing/);
    await reject(ctx.client.stats({ ...base, kind: 'count', mechanism: 'gaussian' }), 400, /delta/);
    const stranger = await QueryClient.register(s.cs.url, 'stranger');
    await reject(stranger.stats({ ...base, kind: 'count' }), 403, /not granted/);
    const r = await ctx.client.stats({ ...base, kind: 'count' });
    assert.equal(r.budgetRemaining[ctx.datasets[0]!], 0.75);
  });

  it('a tampered integrity tag is refused at upload', async () => {
    const chunks = () => countRows(s.cs.store, 'chunks');
    const before = await chunks();
    // The owner's own upload path, with the tag corrupted on the wire.
    const realFetch = globalThis.fetch;
    globalThis.fetch = (async (url: string, init: RequestInit) => {
      if (String(url).includes('/chunks/')) {
        const body = JSON.parse(String(init.body));
        body.tag = (body.tag[0] === 'a' ? 'b' : 'a') + body.tag.slice(1);
        init = { ...init, body: JSON.stringify(body) };
      }
      return realFetch(url, init);
    }) as typeof fetch;
    try {
      await reject(ctx.a.upload('tampered', { columns: ['wage'], rows: [[1]] }, codec, { epsilonBudget: 1 }), 400, /integrity tag/);
    } finally {
      globalThis.fetch = realFetch;
    }
    assert.equal(await chunks(), before, 'nothing stored');
  });

  it('spending stops exactly at the budget, and the refusal survives a compute server restart', async () => {
    const q = { datasets: ctx.datasets, column: 'wage', epsilon: 0.25, kind: 'count' as const };
    // 0.25 was spent above; three more fit exactly.
    for (let i = 0; i < 3; i++) await ctx.client.stats(q);
    await reject(ctx.client.stats(q), 403, /budget/);
    await s.cs.close();
    const restarted = await startComputeServer({
      dataDir: join(s.dir, 'cs'),
      database: s.database,
      port: 0,
      keyServerUrl: s.ks.url,
      channelKey: readKeyFile(s.ks.channelKeyPath),
      workers: 1,
    });
    try {
      const client = QueryClient.fromIdentity({ ...ctx.client.identity(), server: restarted.url });
      await reject(client.stats(q), 403, /budget/);
      await reject(client.stats({ ...q, epsilon: 0.000001 }), 403, /budget/);
    } finally {
      await restarted.close();
    }
  });
});
