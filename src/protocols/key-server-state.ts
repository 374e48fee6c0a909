/**
 * What the key server's halves of the protocols may use: the registered public keys, and
 * master decryption / encryption of whole batches. `open` is the only place where the key server
 * (KMS, Bob) sees plaintexts, which is what the leakage tests record.
 */
import type { BcpPublicKey } from '../crypto/bcp-keys.js';
import type { Pair } from '../crypto/kernels.js';
import type { ShareStore } from './share-store.js';

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
  /** Shared records of running jobs (share-store.ts). */
  readonly shares: ShareStore;
}

export function pairsOf(elements: readonly bigint[]): Pair[] {
  const out: Pair[] = [];
  for (let i = 0; i + 1 < elements.length; i += 2) out.push([elements[i]!, elements[i + 1]!]);
  return out;
}
