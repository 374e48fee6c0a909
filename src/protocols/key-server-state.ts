/**
 * What the key server's halves of the protocols may use: the registered public keys, and
 * master decryption / encryption of whole batches. `open` is the only place where the key server
 * (KMS, Bob) sees plaintexts, which is what the leakage tests record.
 */
import type { BcpPublicKey } from '../crypto/bcp-keys.js';
import type { Pair } from '../crypto/kernels.js';
import type { ShareStore } from './share-store.js';
import type { z } from 'zod';
import type { Uniform } from '../crypto/noise/samplers.js';
import { decodeMessage, type Message } from './messages.js';

export interface KeyServerState {
  key(fingerprint: string): BcpPublicKey;
  /** mDec of a batch, as residues in [0, N). */
  open(protocol: string, pk: BcpPublicKey, pairs: Pair[]): Promise<bigint[]>;
  /** Reports values derived from decryptions (unpacked slots) to the test observer. */
  observe(protocol: string, values: readonly bigint[]): void;
  /** Fresh encryptions of a batch of residues. */
  seal(pk: BcpPublicKey, values: bigint[]): Promise<Pair[]>;
  /** Fresh KMS-form encryptions (kms-paillier.ts), for job keys only: (1, c) pairs. */
  sealKms(pk: BcpPublicKey, values: bigint[]): Promise<Pair[]>;
  /** Throws ERR_NOT_JOB_KEY unless pk is a job key made here (KMS form and shares are for those only). */
  requireJobKey(pk: BcpPublicKey): void;
  /**
   * A uniform source reproducible per job key and label (keyed by the job key's secret, which only
   * the key server holds): a job run again after a failure draws the same noise. Job keys only.
   */
  jobUniform(pk: BcpPublicKey, label: string): Uniform;
  /**
   * AES-256-GCM under a key only this key server derives (from its master key): state it hands
   * the compute server to keep for it (a model's key-server share) without becoming stateful.
   * `context` is bound as associated data; `unsealForSelf` throws ERR_ENVELOPE on any mismatch.
   */
  sealForSelf(context: string, data: Uint8Array): Buffer;
  unsealForSelf(context: string, sealed: Uint8Array): Buffer;
  /** Shared records of running jobs (share-store.ts). */
  readonly shares: ShareStore;
}

export function pairsOf(elements: readonly bigint[]): Pair[] {
  const out: Pair[] = [];
  for (let i = 0; i + 1 < elements.length; i += 2) out.push([elements[i]!, elements[i + 1]!]);
  return out;
}

/** Bob's first step of most requests: the header names a registered key, whose group sizes the elements. */
export function decodeForKey<H extends { key: string }>(
  state: KeyServerState,
  body: Uint8Array,
  schema: z.ZodType<H>,
): Message<H> & { pk: BcpPublicKey } {
  let pk: BcpPublicKey | undefined;
  const message = decodeMessage(body, schema, (h) => {
    pk = state.key(h.key);
    return { elementBytes: pk.params.elementBytes, modulus: pk.params.N2 };
  });
  return { ...message, pk: pk! };
}
