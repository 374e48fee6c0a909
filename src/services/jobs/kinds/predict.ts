/**
 * The prediction job kind (seed 002; docs/neural-networks.md): a query client that ran a `train`
 * job predicts on secret-shared uploads with that model, which never left its shares. Admission
 * asks for the `predict` scope twice: from the owners of the records, and from the owners of the
 * training data (whose model it is). Only the predictions leave, under the client's key.
 */
import { deserializePublicKey, serializeCiphertexts } from '../../../crypto/index.js';
import { predictOnTwoServers } from '../../../analytics/mlp-predict.js';
import { MLP_FRACTION_BITS } from '../../../analytics/mlp.js';
import { badRequest } from '../../http-errors.js';
import type { DatasetRow } from '../../store/index.js';
import { admittedDatasets, grantedDatasets, requireKeyServer } from '../datasets.js';
import { defineJobKind } from '../job-kind.js';
import { predictResult, predictSpec } from './predict-schema.js';
import { sharedSources } from './train.js';
import { sharedModel, trainedModel } from './trained-model.js';

/** Every upload holds the model's features first, and all the same columns. */
function sameFeatures(ds: readonly DatasetRow[], features: readonly string[]): void {
  for (const d of ds) {
    const own = d.columns.slice(0, d.columns.length - d.training!.targets);
    if (own.join('\0') !== features.join('\0'))
      throw badRequest(`dataset ${d.id} has features ${own.join(',')}, the model takes ${features.join(',')}`);
    if (d.columns.join('\0') !== ds[0]!.columns.join('\0'))
      throw badRequest(`datasets ${ds[0]!.id} and ${d.id} have different columns: predict on uploads of one shape at a time`);
  }
}

export const predictKind = defineJobKind({
  name: 'predict',
  description:
    'predict with a model trained by this client, still in shares, on secret-shared uploads; only the predictions are released, to the client (seed 002)',
  spec: predictSpec,
  result: predictResult,

  async admit({ services, client }, spec) {
    const { result, trainDatasets } = await trainedModel(services.store, client, spec.model);
    // The model's owners decide who may query it, as the records' owners decide who may see predictions on them.
    await grantedDatasets(services.store, client, trainDatasets, 'predict');
    sameFeatures(await grantedDatasets(services.store, client, spec.datasets, 'predict'), result.features);
    await requireKeyServer(services.compute.transport);
    return { spec };
  },

  async run(ctx) {
    const { store, params, compute } = ctx.services;
    const { result } = await trainedModel(store, ctx.client, ctx.spec.model);
    const ds = await admittedDatasets(store, ctx.spec.datasets);
    const first = ds[0]!;
    const client = deserializePublicKey(ctx.client.bcpPublicKey, params);
    const predictions = await ctx.phase('prediction', async () =>
      predictOnTwoServers(compute, {
        model: await sharedModel(store, ctx.spec.model, result),
        sources: await sharedSources(ctx.services, ds),
        columns: first.columns.length,
        extra: first.training!.targets,
        task: result.task,
        client,
      }),
    );
    return {
      predictions: serializeCiphertexts(client, predictions).toString('base64'),
      rows: predictions.length,
      task: result.task,
      classes: result.classes,
      fractionBits: MLP_FRACTION_BITS,
    };
  },
});
