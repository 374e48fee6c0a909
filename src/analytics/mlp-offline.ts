/**
 * The offline phase of training on shares: the correlated randomness of many SGD steps obtained at
 * once, before they run. A step's requests depend only on shapes (batch size, layers, loss), never
 * on data, so they are recorded once per batch size by running the step in-process on zeros with
 * planning providers; each party then loads stages of up to STAGE_BYTES of material and meets the
 * other at a barrier, so the online phase never waits on the dealer. Both parties call `before` at
 * the same points with the same sizes, so their stages line up.
 */
import { channelPair } from '../mpc/channel.js';
import { mpcParty, type MpcParty } from '../mpc/party.js';
import type { DealerRequest } from '../mpc/provider/dealer.js';
import { PlanningProvider } from '../mpc/provider/preprocessed.js';
import { materialBytes, StagedProvider } from '../mpc/provider/staged.js';
import { initialModel, step, stepConstant, type MlpConfig, type Tensor } from './mlp.js';
import { sharedOps } from './mlp-shared.js';

/** The most material one stage holds, per party. */
export const STAGE_BYTES = 64 << 20;

const zeros = (shape: number[]): Tensor => ({ shape, data: new BigUint64Array(shape[0]! * shape[1]!) });

/** The requests of one SGD step on a batch of `b` rows, as both parties make them. */
async function planStep(config: MlpConfig, b: number, name: 'dealer' | 'ot'): Promise<DealerRequest[]> {
  const [c0, c1] = channelPair();
  const providers = [new PlanningProvider(0, name), new PlanningProvider(1, name)] as const;
  const start = initialModel(config);
  const model = { weights: start.weights.map((w) => zeros([...w.shape])), biases: start.biases.map((v) => zeros([...v.shape])) };
  const [d, t] = [config.layers[0]!, config.layers.at(-1)!];
  await Promise.all(
    providers.map((pr, id) =>
      step(sharedOps(mpcParty(id as 0 | 1, id === 0 ? c0 : c1, pr)), model, zeros([b, d]), zeros([b, t]), stepConstant(config), config.loss),
    ),
  );
  return providers[0].plan;
}

/** This party with a staged provider, and the hook that loads stages ahead of the steps. */
export function stagedTraining(
  p: MpcParty,
  config: MlpConfig,
): { party: MpcParty; staged: StagedProvider; before: (upcoming: readonly number[]) => Promise<void> } {
  const staged = new StagedProvider(p.provider);
  const plans = new Map<number, DealerRequest[]>();
  const planOf = async (b: number) => plans.get(b) ?? plans.set(b, await planStep(config, b, staged.name)).get(b)!;
  const before = async (upcoming: readonly number[]) => {
    if (!staged.empty) return;
    const plan: DealerRequest[] = [];
    let bytes = 0;
    for (const b of upcoming) {
      const steps = await planOf(b);
      const size = steps.reduce((a, r) => a + materialBytes(r), 0);
      if (plan.length > 0 && bytes + size > STAGE_BYTES) break;
      plan.push(...steps);
      bytes += size;
    }
    await staged.load(plan);
    const t = performance.now();
    await p.channel.exchange(new Uint8Array(0)); // both stages loaded: the online steps start together
    staged.addOfflineSeconds((performance.now() - t) / 1000);
  };
  return { party: mpcParty(p.id, p.channel, staged, p.fractionBits), staged, before };
}
