/**
 * The checks every job over owners' datasets makes at admission: each dataset exists, its owner
 * granted this query client this kind of job, its upload is complete, none is listed twice, and all share one
 * fixed-point precision (values from different precisions cannot be added).
 */
import { badRequest, conflict, forbidden, notFound, HttpError } from '../http-errors.js';
import { CiphermineError } from '../../crypto/errors.js';
import type { Transport } from '../../protocols/transport.js';
import type { DatasetRow, Party, Store } from '../store/index.js';
import type { GrantScope } from '../store/store.js';

export async function grantedDatasets(store: Store, client: Party, ids: readonly string[], scope: GrantScope): Promise<DatasetRow[]> {
  if (new Set(ids).size !== ids.length) throw badRequest('a dataset is listed twice');
  const out: DatasetRow[] = [];
  for (const id of ids) {
    const d = await store.dataset(id);
    if (!d) throw notFound(`no dataset ${id}`);
    if (!(await store.isGranted(id, client.id))) throw forbidden(`the owner of ${id} has not granted this client access`);
    if (!(await store.isGranted(id, client.id, scope)))
      throw forbidden(`the owner of ${id} has not granted this client ${scope} jobs (grant scope '${scope}')`);
    if (d.state !== 'ready') throw conflict(`dataset ${id} is still uploading`);
    const shared = scope === 'train' || scope === 'predict' || scope === 'model';
    if (shared && !d.training) throw badRequest(`dataset ${id} was not uploaded secret-shared (owner upload --for training or --for prediction)`);
    if (!shared && d.training) throw badRequest(`dataset ${id} is a secret-shared upload: it serves train and predict jobs only`);
    if (scope === 'train' && d.training?.targets === 0 && !d.training.ids)
      throw badRequest(`dataset ${id} was uploaded for prediction (no label): it cannot train`);
    out.push(d);
  }
  if (out.some((d) => d.fractionBits !== out[0]!.fractionBits)) throw badRequest('datasets use different fixed-point precisions');
  return out;
}

/**
 * Before anything is charged: the key server answers. A query that could not run must not cost
 * budget (a job that fails later is refunded too, but an outage should not even start one).
 */
export async function requireKeyServer(transport: Transport): Promise<void> {
  try {
    await transport.call('params', new Uint8Array(0));
  } catch (e) {
    if (e instanceof CiphermineError && e.code === 'ERR_PIN_MISMATCH') throw e;
    throw new HttpError('ERR_UNREACHABLE', 'the key server is unreachable: the query was not started and nothing was charged; try again later');
  }
}

/** Loads datasets a job already admitted (they cannot change once ready). */
export async function admittedDatasets(store: Store, ids: readonly string[]): Promise<DatasetRow[]> {
  return Promise.all(ids.map(async (id) => (await store.dataset(id))!));
}
