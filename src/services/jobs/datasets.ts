/**
 * The checks every job over owners' datasets makes at admission: each dataset exists, its owner
 * granted this query client this kind of job, its upload is complete, none is listed twice, and all share one
 * fixed-point precision (values from different precisions cannot be added).
 */
import { badRequest, conflict, forbidden, notFound } from '../http-errors.js';
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
    out.push(d);
  }
  if (out.some((d) => d.fractionBits !== out[0]!.fractionBits)) throw badRequest('datasets use different fixed-point precisions');
  return out;
}

/** Loads datasets a job already admitted (they cannot change once ready). */
export async function admittedDatasets(store: Store, ids: readonly string[]): Promise<DatasetRow[]> {
  return Promise.all(ids.map(async (id) => (await store.dataset(id))!));
}
