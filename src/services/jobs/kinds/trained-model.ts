/**
 * A model a `train` job left in shares at the two servers, as the jobs that use it (`predict`,
 * `release-model`) load it: only the client that trained it may name it, and only once it is done.
 */
import type { SharedModel } from '../../../analytics/mlp-two-server.js';
import { conflict, notFound } from '../../http-errors.js';
import type { Store } from '../../store/index.js';
import type { Party } from '../../store/store.js';
import { SHARED_MODEL } from './train.js';
import type { TrainRawResult } from './train-schema.js';

export interface TrainedModel {
  result: TrainRawResult;
  /** The datasets it was trained on: their owners decide who may use the model. */
  trainDatasets: string[];
}

/** The finished training job `id` of this client, its model kept in shares. */
export async function trainedModel(store: Store, client: Party, id: string): Promise<TrainedModel> {
  const job = await store.job(id);
  if (!job || job.kind !== 'train' || job.clientId !== client.id) throw notFound(`no model of this client from job ${id}`);
  if (job.state !== 'done') throw conflict(`job ${id} is ${job.state}: no model yet`);
  if (!(await store.jobBlob(id, SHARED_MODEL))) throw conflict(`job ${id} was trained before models were kept in shares: train again`);
  return { result: job.result as TrainRawResult, trainDatasets: (job.spec as { datasets: string[] }).datasets };
}

/** The compute server's share and the key server's sealed share of job `id`'s model. */
export async function sharedModel(
  store: Store,
  id: string,
  result: TrainRawResult,
): Promise<SharedModel & { layers: number[]; standardised: boolean }> {
  const [session, share, keyServerShare] = (await store.jobBlob(id, SHARED_MODEL))!;
  return {
    session: session!.toString(),
    share: new BigUint64Array(Uint8Array.from(share!).buffer),
    keyServerShare: keyServerShare!,
    layers: result.layers,
    standardised: result.standardised,
  };
}
