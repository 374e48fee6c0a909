/**
 * The model-release job kind (seed 002; docs/neural-networks.md): the query client that trained a
 * model receives it under its own key, when every owner of the training data granted it scope
 * `model`. The model never leaves its shares otherwise; the servers see neither it nor its values.
 */
import { deserializePublicKey, serializeCiphertexts } from '../../../crypto/index.js';
import { releaseModelToClient } from '../../../analytics/mlp-release.js';
import { grantedDatasets, requireKeyServer } from '../datasets.js';
import { defineJobKind } from '../job-kind.js';
import { releaseModelResult, releaseModelSpec } from './release-model-schema.js';
import { sharedModel, trainedModel } from './trained-model.js';

export const releaseModelKind = defineJobKind({
  name: 'release-model',
  description:
    'release a model this client trained to the client, under its own key, when every owner of the training data granted scope model (seed 002)',
  spec: releaseModelSpec,
  result: releaseModelResult,

  async admit({ services, client }, spec) {
    const { trainDatasets } = await trainedModel(services.store, client, spec.model);
    // The model is the training data's: each of its owners must have let this client have it.
    await grantedDatasets(services.store, client, trainDatasets, 'model');
    await requireKeyServer(services.compute.transport);
    return { spec };
  },

  async run(ctx) {
    const { store, params, compute } = ctx.services;
    const { result } = await trainedModel(store, ctx.client, ctx.spec.model);
    const client = deserializePublicKey(ctx.client.bcpPublicKey, params);
    const packs = await ctx.phase('release', async () =>
      releaseModelToClient(compute, { model: await sharedModel(store, ctx.spec.model, result), client }),
    );
    return {
      model: serializeCiphertexts(client, packs).toString('base64'),
      parameters: result.parameters,
      layers: result.layers,
      features: result.features,
      task: result.task,
      classes: result.classes,
      fractionBits: result.fractionBits,
      standardised: result.standardised,
    };
  },
});
