/**
 * The engine's SMDM (hidden argmin): the nearest cluster of each record, equal to the plaintext
 * rule (Omega_j / |c_j|^2 smallest, ties to the lower index) and to the seed's SDC running minimum,
 * for several k and cluster sizes; malformed sessions are refused without harming the key server.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import { hiddenArgmin, HIDDEN_ARGMIN } from '../../src/mpc/hidden-argmin.js';
import { secureArgmin } from '../../src/protocols/index.js';
import { startRemote } from '../../src/mpc/server-channel.js';
import { harness, type Harness } from '../protocols/harness.js';

/** The plaintext rule: argmin_j Omega_j / |c_j|^2, compared by cross-multiplying, ties to the lower index. */
function reference(omegas: bigint[][], sizes: bigint[]): number[] {
  return omegas.map((row) => row.reduce((best, o, j) => (o * sizes[best]! ** 2n < row[best]! * sizes[j]! ** 2n ? j : best), 0));
}

describe('hidden argmin (the engine SMDM)', () => {
  let h: Harness;
  before(async () => {
    h = await harness('memory');
  });
  after(() => h.close());

  for (const k of [2, 3, 5]) {
    it(`k = ${k}: equals the plaintext rule and the seed SDC, ties included`, async () => {
      const pk = h.core.createJobKey();
      const sizes = Array.from({ length: k }, (_, j) => BigInt(1 + ((j * 7) % 5)));
      const omegas = Array.from({ length: 80 }, (_, i) =>
        // every fourth record ties all clusters (Omega_j proportional to |c_j|^2)
        sizes.map((s) => (i % 4 === 0 ? 9n * s * s : BigInt(randomInt(0, 3000)))),
      );
      const cts = omegas.map((row) => pk.encryptBatch(row));
      const dBits = 40;
      const got = await hiddenArgmin(h.alice, cts, sizes, dBits);
      assert.deepEqual(got, reference(omegas, sizes));
      assert.deepEqual(got, await secureArgmin(h.alice, cts, sizes, dBits));
      assert.ok(
        got.filter((_, i) => i % 4 === 0).every((j) => j === 0),
        'ties go to cluster 0',
      );
    });
  }

  it('refuses malformed sessions and keeps serving', async () => {
    const pk = h.core.createJobKey();
    await assert.rejects(startRemote(h.alice.transport, HIDDEN_ARGMIN, 'bad-1', { key: pk.fingerprint, records: 1 << 20, k: 4, deltaBits: 40 }));
    await assert.rejects(startRemote(h.alice.transport, HIDDEN_ARGMIN, 'bad-2', { key: 'nope', records: 1, k: 2, deltaBits: 40 }));
    await assert.rejects(hiddenArgmin(h.alice, [[pk.encrypt(1n), h.owner.publicKey.encrypt(2n)]], [1n, 1n], 40), /mixes public keys/);
    await assert.rejects(hiddenArgmin(h.alice, [[pk.encrypt(1n)]], [1n, 1n], 40), /one distance per cluster/);
    await assert.rejects(hiddenArgmin(h.alice, [[pk.encrypt(1n), pk.encrypt(2n)]], [1n, 1n], 600), /no room for the mask/);
    // A distance outside its declared bound overflows its slot: refused, not a wrong answer.
    await assert.rejects(hiddenArgmin(h.alice, [[pk.encrypt(0n), pk.encrypt(1n << 60n)]], [1n, 1n], 20));
    assert.deepEqual(await hiddenArgmin(h.alice, [[pk.encrypt(5n), pk.encrypt(2n)]], [1n, 1n], 20), [1]);
  });
});
