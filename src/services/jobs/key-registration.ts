/**
 * The key server (KMS) learns a party's BCP public key only when a job first needs it (the query
 * client's key as a target, the owners' keys of the job's datasets as sources), not at
 * registration: registering, which anyone may do, then costs the key server nothing, and it never
 * holds keys of parties that never took part in a job. Registration at the key server is
 * idempotent; this process remembers what it registered so each key travels once per run.
 */
import { deserializePublicKey, serializePublicKey } from '../../crypto/index.js';
import type { Party } from '../store/index.js';
import type { JobServices } from './job-kind.js';

export class KeyRegistrar {
  private readonly done = new Set<string>();

  constructor(private readonly services: JobServices) {}

  /** Registers the client's key and the keys of the owners of `datasetIds` at the key server. */
  async forJob(client: Party, datasetIds: readonly string[]): Promise<void> {
    const { store } = this.services;
    const parties: Party[] = [client];
    for (const id of datasetIds) {
      const d = await store.dataset(id);
      const owner = d && (await store.party(d.ownerId));
      if (owner) parties.push(owner);
    }
    for (const p of parties) {
      const pk = deserializePublicKey(p.bcpPublicKey, this.services.params);
      if (this.done.has(pk.fingerprint)) continue;
      await this.services.compute.transport.call('register-key', serializePublicKey(pk));
      this.done.add(pk.fingerprint);
    }
  }
}

/** The datasets a job's spec names, by the convention every dataset job kind follows (`datasets`). */
export function datasetsOf(spec: unknown): string[] {
  const ids = (spec as { datasets?: unknown } | null)?.datasets;
  return Array.isArray(ids) ? ids.filter((x): x is string => typeof x === 'string') : [];
}
