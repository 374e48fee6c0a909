/** The row maximum on shares: all pairs at once with a dealer, the tournament otherwise; exact, with ties. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { channelPair } from '../../src/mpc/channel.js';
import { mpcParty } from '../../src/mpc/party.js';
import { dealerProviders } from '../../src/mpc/provider/dealer.js';
import { PlanningProvider } from '../../src/mpc/provider/preprocessed.js';
import { open, splitSecret } from '../../src/mpc/primitives/arithmetic.js';
import { rowMax } from '../../src/mpc/primitives/row-max.js';
import * as ring from '../../src/mpc/ring.js';

async function maxOnShares(values: bigint[], n: number, c: number) {
  const [c0, c1] = channelPair();
  const [d0, d1] = dealerProviders();
  const [p0, p1] = [mpcParty(0, c0, d0), mpcParty(1, c1, d1)];
  const [x0, x1] = splitSecret(
    [n, c],
    BigUint64Array.from(values, (v) => BigInt.asUintN(64, v)),
  );
  const rounds = c0.counters.rounds;
  const [m0, m1] = await Promise.all([rowMax(p0, x0), rowMax(p1, x1)]);
  const [v] = await Promise.all([open(p0, m0), open(p1, m1)]);
  return { max: Array.from(v, (x) => BigInt.asIntN(64, x)), rounds: c0.counters.rounds - rounds - 1 };
}

describe('row maximum on shares', () => {
  it('equals the plaintext maximum, ties and extremes included, in about 13 rounds for 10 candidates', async () => {
    const n = 50;
    const c = 10;
    const rows = Array.from({ length: n }, (_, r) =>
      Array.from({ length: c }, (_, k) => (r % 7 === 0 ? 5n : BigInt(Math.round((Math.random() - 0.5) * 2 ** 40)) + BigInt(k % 3))),
    );
    rows[1] = rows[1]!.map((_, k) => (k === 9 ? 2n ** 62n : -(2n ** 62n)));
    rows[2] = rows[2]!.map((_, k) => (k === 0 ? 7n : 7n - BigInt(k)));
    const { max, rounds } = await maxOnShares(rows.flat(), n, c);
    assert.deepEqual(
      max,
      rows.map((r) => r.reduce((a, b) => (b > a ? b : a))),
    );
    assert.ok(rounds <= 14, `${rounds} rounds`);
  });

  it('a single candidate is itself; with ot it is the tournament (no pairwise gates)', async () => {
    assert.deepEqual((await maxOnShares([3n, -4n], 2, 1)).max, [3n, -4n]);
    const [c0, c1] = channelPair();
    const [q0, q1] = [new PlanningProvider(0, 'ot'), new PlanningProvider(1, 'ot')];
    const [x0, x1] = splitSecret([4, 10], ring.random(40));
    await Promise.all([rowMax(mpcParty(0, c0, q0), x0), rowMax(mpcParty(1, c1, q1), x1)]);
    const gates = q0.plan.reduce((a, r) => a + (r.kind === 'and' ? r.words : 0), 0);
    assert.ok(gates > 0 && q0.plan.filter((r) => r.kind === 'and').length >= 60, 'ot: ripple comparisons of the tournament');
  });
});
