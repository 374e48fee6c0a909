/**
 * The DP `mode` (exponential mechanism by Gumbel-max) against the compute server: the server that
 * learns the chosen bin must not know the noise, or the choice would tell it which counts are
 * close. The Gumbel noise is the key server's (it knows the noise, never the counts or the choice).
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { rational } from '../../src/crypto/noise/rational.js';
import { secureStats, type StatsQuery } from '../../src/analytics/stats-secure.js';
import { recordingHarness, type Harness } from '../protocols/harness.js';

describe("the mode's noise", () => {
  let h: Harness;
  let seen: Map<string, bigint[]>;
  before(async () => {
    ({ h, seen } = await recordingHarness());
  });
  after(() => h.close());

  const query = (epsilon: bigint): StatsQuery => ({
    kind: 'mode',
    lo: 0n,
    hi: 0n,
    edges: [0n, 10n, 20n, 30n, 40n],
    epsilon: rational(epsilon),
    mechanism: 'laplace',
    mode: 'pmdp',
    valueBits: 8,
  });

  it('comes from the key server, one Gumbel variate per bin, and the compute server sees none of it', async () => {
    const pk = h.core.createJobKey();
    // Bin 2 holds most records; at epsilon 1000 the noise (scale 0.002) cannot change the winner.
    const xs = [1n, 12n, 21n, 22n, 23n, 25n, 33n].map((x) => pk.encrypt(x));
    seen.clear();
    const own: bigint[] = [];
    const r = await secureStats(h.alice, xs, query(1000n), h.target.publicKey, { onComputeServerNoise: (v) => own.push(...v) });
    assert.equal(r.choice, 2);
    assert.equal(own.length, 0, 'the compute server drew no noise of its own');
    const noise = seen.get('noise-share') ?? [];
    assert.equal(noise.length, 4, 'one variate per bin, drawn by the key server');
    assert.ok(noise.some((g) => g !== 0n));
  });

  it('at a small epsilon the choice varies between jobs on the same data (the noise is really added)', async () => {
    const choices = new Set<number>();
    for (let i = 0; i < 12 && choices.size < 2; i++) {
      const pk = h.core.createJobKey();
      const xs = [1n, 12n, 21n, 22n, 33n].map((x) => pk.encrypt(x));
      choices.add((await secureStats(h.alice, xs, query(1n), h.target.publicKey)).choice!);
    }
    assert.ok(choices.size >= 2, `one choice in 12 jobs at epsilon 1: ${[...choices]}`);
  });

  it('is the same noise when a job runs again (a rerun after a failure gives the compute server no second draw)', async () => {
    const pk = h.core.createJobKey();
    const xs = [1n, 12n, 21n, 22n, 33n].map((x) => pk.encrypt(x));
    const draws: bigint[][] = [];
    for (let i = 0; i < 3; i++) {
      seen.clear();
      await secureStats(h.alice, xs, query(1n), h.target.publicKey);
      draws.push(seen.get('noise-share')!);
    }
    assert.deepEqual(draws[1], draws[0]);
    assert.deepEqual(draws[2], draws[0]);
    const other = h.core.createJobKey();
    seen.clear();
    await secureStats(
      h.alice,
      [1n, 12n].map((x) => other.encrypt(x)),
      query(1n),
      h.target.publicKey,
    );
    assert.notDeepEqual(seen.get('noise-share'), draws[0], 'another job draws other noise');
  });

  it('is refused for a key that is not a job key', async () => {
    const pk = h.owner.publicKey;
    await assert.rejects(secureStats(h.alice, [pk.encrypt(1n)], query(1n), h.target.publicKey), /job key/);
  });
});
