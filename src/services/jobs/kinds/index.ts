/** Every job kind this build of the compute server runs. */
import type { JobKind } from '../job-kind.js';
import { federatedKmeansKind } from './federated-kmeans.js';
import { kmeansKind } from './kmeans.js';
import { statsKind } from './stats.js';
import { trainKind } from './train.js';
import { predictKind } from './predict.js';
import { releaseModelKind } from './release-model.js';

export const builtInJobKinds: readonly JobKind[] = [kmeansKind, statsKind, trainKind, predictKind, releaseModelKind, federatedKmeansKind];
