/**
 * Conversions between ciphertexts and shares: a BCP ciphertext under a user's key becomes shares
 * (one blinded decryption at the key server) that open to the plaintext, including negatives and
 * the bound's edges; shares become a ciphertext under any key that decrypts to the value, whatever
 * the carry between the shares. The key server's view of the blinded decryption is independent of
 * the data (a KS test of zeros against values near the bound, with a negative control).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { channelPair } from '../../src/mpc/channel.js';
import { dealerProviders } from '../../src/mpc/provider/dealer.js';
import { mpcParty, type MpcParty } from '../../src/mpc/party.js';
import { open, splitSecret } from '../../src/mpc/primitives/arithmetic.js';
import * as ring from '../../src/mpc/ring.js';
import {
  ciphertextsToShares,
  ciphertextsToSharesAtKeyServer,
  sharesToCiphertexts,
  sharesToCiphertextsAtKeyServer,
} from '../../src/mpc/conversion.js';
import { testKey, testSystem } from '../helpers.js';
import { ksSameDistribution } from '../protocols/harness.js';
import { deserializeCiphertexts } from '../../src/crypto/serialize.js';
import type { PartyChannel } from '../../src/mpc/channel.js';

function parties(): [MpcParty, MpcParty] {
  const [c0, c1] = channelPair();
  const [d0, d1] = dealerProviders();
  return [mpcParty(0, c0, d0), mpcParty(1, c1, d1)];
}

const BOUND = 40;

describe('ciphertext <-> shares conversions', () => {
  const { msk } = testSystem(512);
  const sk = testKey(512);
  const pk = sk.publicKey;
  /** Masks as plain BCP encryptions: enough for ciphertexts under a user's key. */
  const plain = async (ms: readonly bigint[]) => ms.map((r) => pk.encrypt(r));

  it('a ciphertext becomes shares of its plaintext (negatives and the bound included)', async () => {
    const top = (1n << BigInt(BOUND)) - 1n;
    const values = [0n, 1n, -1n, top, -top, 123456789n, -987654321n];
    const cts = values.map((m) => pk.encrypt(m));
    const [p0, p1] = parties();
    const [s0, s1] = await Promise.all([ciphertextsToShares(p0, cts, pk, BOUND, plain), ciphertextsToSharesAtKeyServer(p1, msk, pk, cts.length)]);
    const [opened] = await Promise.all([open(p0, s0), open(p1, s1)]);
    assert.deepEqual([...opened].map(ring.toSigned), values);
  });

  it('shares become a ciphertext under any key, decrypting to the value whatever the carry', async () => {
    const values = [0n, 1n, -1n, (1n << 62n) - 1n, -(1n << 62n), 42n, -42n, ...Array.from({ length: 20 }, (_, i) => BigInt(i * 7919 - 70000))];
    const [x0, x1] = splitSecret([values.length], ring.fromBigints(values));
    const [p0, p1] = parties();
    const [cts] = await Promise.all([sharesToCiphertexts(p0, x0, pk), sharesToCiphertextsAtKeyServer(p1, x1, pk)]);
    assert.deepEqual(
      cts.map((c) => sk.decrypt(c)),
      values,
    );
  });

  it('refuses a bound that leaves no room for the mask, and a wrong count of ciphertexts', async () => {
    const [p0, p1] = parties();
    await assert.rejects(ciphertextsToShares(p0, [pk.encrypt(1n)], pk, 64, plain), /1\.\.63 bits/);
    const sending = ciphertextsToShares(p0, [pk.encrypt(1n), pk.encrypt(2n)], pk, BOUND, plain);
    await assert.rejects(ciphertextsToSharesAtKeyServer(p1, msk, pk, 1), /exceeds the limit of 1|expected 1/);
    await sending;
  });

  it("the key server's view (the blinded plaintexts it decrypts) does not depend on the data", async () => {
    const n = 400;
    /** Everything the key server decrypts in one conversion of n copies of m. */
    const view = async (m: bigint): Promise<number[]> => {
      const [p0, p1] = parties();
      const received: Uint8Array[] = [];
      const recording: PartyChannel = {
        counters: p1.channel.counters,
        exchange: async (msg) => {
          const theirs = await p1.channel.exchange(msg);
          received.push(theirs);
          return theirs;
        },
      };
      await Promise.all([
        ciphertextsToShares(
          p0,
          Array.from({ length: n }, () => pk.encrypt(m)),
          pk,
          BOUND,
          plain,
        ),
        ciphertextsToSharesAtKeyServer(mpcParty(1, recording, p1.provider), msk, pk, n),
      ]);
      return received.flatMap((b) => deserializeCiphertexts(b, pk, n)).map((c) => Number(msk.decrypt(c)) / 2 ** (BOUND + 40));
    };
    const real = ksSameDistribution(await view(0n), await view((1n << BigInt(BOUND)) - 1n));
    assert.ok(real.same, `KS distance ${real.d} (critical ${real.critical}) between the key server's views of zeros and of values near the bound`);
    // Negative control: the same statistic on m + r with a mask only 2 bits wider than m tells the
    // two data sets apart, so the test above could fail.
    const narrow = (m: bigint) =>
      Array.from({ length: n }, () => Number(m + (BigInt(Math.floor(Math.random() * 4)) << BigInt(BOUND))) / 2 ** (BOUND + 2));
    const control = ksSameDistribution(narrow(0n), narrow((1n << BigInt(BOUND)) - 1n));
    assert.ok(!control.same, `the negative control should be told apart (KS distance ${control.d})`);
  });
});
