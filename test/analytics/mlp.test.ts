/**
 * Seed 002's training: the MLP on the engine equals the same fixed-point training in plaintext (same
 * seed, same batches) within the truncation bound, with both providers; bad configurations are
 * refused before anything runs; the joint decryption opens only with every owner's verified part.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { train, epochLoss, plainOps, predictScores, argmax, validateConfig, type MlpConfig, type MlpModel } from '../../src/analytics/mlp.js';
import { sharedOps } from '../../src/analytics/mlp-shared.js';
import { channelPair } from '../../src/mpc/channel.js';
import { mpcParty } from '../../src/mpc/party.js';
import { DealerProvider, TrustedDealer, dealerProviders, type DealerRequest } from '../../src/mpc/provider/dealer.js';
import { stagedTraining } from '../../src/analytics/mlp-offline.js';
import type { MpcParty } from '../../src/mpc/party.js';
import { OtProvider } from '../../src/mpc/provider/ot.js';
import { splitSecret } from '../../src/mpc/primitives/arithmetic.js';
import * as ring from '../../src/mpc/ring.js';
import { keyGen } from '../../src/crypto/bcp-keys.js';
import { combinePartials, jointPublicKey, partialDecrypt, verifyPartial } from '../../src/crypto/joint-decryption.js';
import { testSystem } from '../helpers.js';

function iris() {
  const rows = readFileSync(new URL('../../../data/iris.csv', import.meta.url), 'utf8')
    .trim()
    .split('\n')
    .slice(1)
    .map((l) => l.trim().split(',').map(Number));
  const x = rows.map((r) => r.slice(0, 4));
  const mean = [0, 1, 2, 3].map((j) => x.reduce((s, r) => s + r[j]!, 0) / x.length);
  const sd = [0, 1, 2, 3].map((j) => Math.sqrt(x.reduce((s, r) => s + (r[j]! - mean[j]!) ** 2, 0) / x.length));
  const xs = x.map((r) => r.map((v, j) => (v - mean[j]!) / sd[j]!));
  const labels = rows.map((r) => r[4]!);
  return {
    xs,
    labels,
    x: { shape: [xs.length, 4], data: ring.encodeFixed(xs.flat(), 16) },
    y: {
      shape: [xs.length, 3],
      data: ring.encodeFixed(
        labels.flatMap((c) => [0, 1, 2].map((k) => (k === c ? 1 : 0))),
        16,
      ),
    },
  };
}

const decode = (m: MlpModel) => ({
  weights: m.weights.map((w) => {
    const v = ring.decodeFixed(w.data, 16);
    return Array.from({ length: w.shape[0]! }, (_, i) => v.slice(i * w.shape[1]!, (i + 1) * w.shape[1]!));
  }),
  biases: m.biases.map((b) => ring.decodeFixed(b.data, 16)),
});

const joined = (a: MlpModel, b: MlpModel): MlpModel => ({
  weights: a.weights.map((w, l) => ({ shape: w.shape, data: ring.add(w.data, b.weights[l]!.data) })),
  biases: a.biases.map((w, l) => ({ shape: w.shape, data: ring.add(w.data, b.biases[l]!.data) })),
});

/** Largest |difference| in units of the last place over every parameter. */
function maxUlp(a: MlpModel, b: MlpModel): bigint {
  let worst = 0n;
  [...a.weights, ...a.biases].forEach((t, k) => {
    const o = [...b.weights, ...b.biases][k]!;
    t.data.forEach((v, i) => {
      const d = BigInt.asIntN(64, v - o.data[i]!);
      if ((d < 0n ? -d : d) > worst) worst = d < 0n ? -d : d;
    });
  });
  return worst;
}

describe('MLP training on shares equals the fixed-point plaintext training', () => {
  const data = iris();
  const accuracy = (m: MlpModel) => predictScores(decode(m), data.xs).filter((s, i) => argmax(s) === data.labels[i]).length / data.xs.length;

  for (const [loss, provider] of [
    ['mse', 'dealer'],
    ['softmax', 'dealer'],
    ['softmax', 'ot'],
  ] as const) {
    it(`${loss} loss, ${provider} provider: weights within the truncation bound, same accuracy`, async () => {
      const config: MlpConfig = {
        layers: [4, 8, 3],
        learningRate: loss === 'mse' ? 0.1 : 0.5,
        batchSize: 16,
        epochs: provider === 'ot' ? 1 : 4,
        seed: 't',
        loss,
      };
      const reference = await train(plainOps, data.x, data.y, config);
      const [c0, c1] = channelPair();
      const providers =
        provider === 'dealer'
          ? dealerProviders()
          : (() => {
              const [o0, o1] = channelPair();
              return [new OtProvider(0, o0), new OtProvider(1, o1)] as const;
            })();
      const [x0, x1] = splitSecret(data.x.shape, data.x.data);
      const [y0, y1] = splitSecret(data.y.shape, data.y.data);
      const [s0, s1] = await Promise.all([
        train(sharedOps(mpcParty(0, c0, providers[0])), x0, y0, config),
        train(sharedOps(mpcParty(1, c1, providers[1])), x1, y1, config),
      ]);
      const secure = joined(s0, s1);
      const ulp = maxUlp(secure, reference);
      const steps = config.epochs * Math.ceil(150 / config.batchSize);
      // The documented bound (docs/neural-networks.md): 32 units in the last place per SGD step.
      assert.ok(ulp <= BigInt(32 * steps), `${ulp} ulp after ${steps} steps`);
      const [a, b] = [accuracy(secure), accuracy(reference)];
      assert.ok(Math.abs(a - b) <= 0.02, `accuracy ${a} vs ${b}`);
      console.log(`${loss}/${provider}: ${ulp} ulp after ${steps} steps, accuracy ${a.toFixed(3)} vs plaintext ${b.toFixed(3)}`);
    });
  }

  it('with an offline phase (stages of many steps loaded ahead, a dealer exchange per stage): the same bound, every request served from a stage', async () => {
    const config: MlpConfig = { layers: [4, 8, 3], learningRate: 0.5, batchSize: 16, epochs: 3, seed: 't', loss: 'softmax' };
    const reference = await train(plainOps, data.x, data.y, config);
    const [c0, c1] = channelPair();
    const dealer = new TrustedDealer();
    let single = 0;
    let batches = 0;
    const link = {
      correction: (r: DealerRequest) => (single++, dealer.correction(r)),
      corrections: (rs: readonly DealerRequest[]) => (batches++, dealer.corrections(rs)),
    };
    const [p0, p1] = [mpcParty(0, c0, new DealerProvider(0, dealer.seed0)), mpcParty(1, c1, new DealerProvider(1, dealer.seed1, link))];
    const [x0, x1] = splitSecret(data.x.shape, data.x.data);
    const [y0, y1] = splitSecret(data.y.shape, data.y.data);
    const [s0, s1] = await Promise.all(
      [
        [p0, x0, y0],
        [p1, x1, y1],
      ].map(([p, x, y]) => {
        const { party, before } = stagedTraining(p as MpcParty, config);
        return train(sharedOps(party), x as typeof x0, y as typeof y0, config, undefined, before);
      }),
    );
    const steps = config.epochs * Math.ceil(150 / config.batchSize);
    const ulp = maxUlp(joined(s0!, s1!), reference);
    assert.ok(ulp <= BigInt(32 * steps), `${ulp} ulp after ${steps} steps`);
    assert.equal(single, 0, 'no request went to the dealer one by one');
    assert.ok(batches >= 1 && batches <= 2, `${batches} dealer exchanges for ${steps} steps`);
  });

  it("each epoch's loss on shares equals the plaintext loss, which is the float mean squared residual", async () => {
    const config: MlpConfig = { layers: [4, 8, 3], learningRate: 0.5, batchSize: 16, epochs: 2, seed: 't', loss: 'softmax' };
    const plain: number[] = [];
    const float: number[] = [];
    await train(plainOps, data.x, data.y, config, undefined, undefined, async (e) => {
      plain.push(ring.decodeFixed((await epochLoss(plainOps, e.residual)).data, 16)[0]!);
      const r = ring.decodeFixed(e.residual.data, 16);
      float.push(r.reduce((a, v) => a + v * v, 0) / e.residual.shape[0]!);
    });
    const [c0, c1] = channelPair();
    const providers = dealerProviders();
    const [x0, x1] = splitSecret(data.x.shape, data.x.data);
    const [y0, y1] = splitSecret(data.y.shape, data.y.data);
    const shares: bigint[][] = [[], []];
    await Promise.all(
      ([0, 1] as const).map((id) => {
        const ops = sharedOps(mpcParty(id, id === 0 ? c0 : c1, providers[id]));
        return train(ops, id === 0 ? x0 : x1, id === 0 ? y0 : y1, config, undefined, undefined, async (e) => {
          shares[id]!.push((await epochLoss(ops, e.residual)).data[0]!);
        });
      }),
    );
    const secure = shares[0]!.map((v, e) => ring.decodeFixed(BigUint64Array.of(BigInt.asUintN(64, v + shares[1]![e]!)), 16)[0]!);
    // Two truncations of the residuals' squares: a few units of 2^-16 from the float value.
    plain.forEach((v, e) => assert.ok(Math.abs(v - float[e]!) <= 2 ** -10, `epoch ${e + 1}: fixed point ${v} vs float ${float[e]}`));
    // On shares the training itself differs by the truncation bound, so the loss follows it closely.
    secure.forEach((v, e) => assert.ok(Math.abs(v - plain[e]!) <= 0.01, `epoch ${e + 1}: shares ${v} vs plaintext ${plain[e]}`));
  });

  it('refuses configurations that do not fit the data or the fixed point', () => {
    const ok: MlpConfig = { layers: [4, 8, 3], learningRate: 0.1, batchSize: 16, epochs: 1, seed: 's' };
    assert.throws(() => validateConfig({ ...ok, layers: [5, 8, 3] }, 4, 3), /5 inputs, the data has 4 features/);
    assert.throws(() => validateConfig({ ...ok, layers: [4, 8, 2] }, 4, 3), /2 outputs, the targets have 3/);
    assert.throws(() => validateConfig({ ...ok, learningRate: 1e-9 }, 4, 3), /below the fixed point's resolution/);
    assert.throws(() => validateConfig({ ...ok, learningRate: 1e6 }, 4, 3), /learning rate/);
    assert.throws(() => validateConfig({ ...ok, learningRate: Number.NaN }, 4, 3), /learning rate/);
  });
});

describe('joint decryption', () => {
  it('opens with every owner, names a wrong or missing part, never returns a wrong value', () => {
    const { params } = testSystem(512);
    const sks = [keyGen(params), keyGen(params), keyGen(params)];
    const pk = jointPublicKey(sks.map((s) => s.publicKey));
    const cts = [5n, -7n, 123456789n].map((m) => pk.encrypt(m));
    const parts = sks.map((s, i) => partialDecrypt(s, cts, `job/owner${i}`));
    parts.forEach((p, i) => verifyPartial(sks[i]!.publicKey, cts, p, `job/owner${i}`, `owner${i}`));
    assert.deepEqual(combinePartials(cts, parts), [5n, -7n, 123456789n]);
    assert.throws(() => verifyPartial(sks[1]!.publicKey, cts, parts[0]!, 'job/owner1', 'owner1'), /owner1's partial decryption does not verify/);
    const tampered = { ...parts[2]!, d: parts[2]!.d.map((d, k) => (k === 1 ? (d * 2n) % params.N2 : d)) };
    assert.throws(() => verifyPartial(sks[2]!.publicKey, cts, tampered, 'job/owner2', 'owner2'), /owner2/);
    assert.throws(() => combinePartials(cts, parts.slice(0, 2)), /missing or wrong/);
  });
});
