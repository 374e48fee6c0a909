/**
 * One computing party of the secret-sharing engine: which of the two it is (0: the compute server,
 * CCS; 1: the key server, KMS), its link to the other, and its provider of correlated randomness.
 */
import type { PartyChannel } from './channel.js';
import type { CorrelatedRandomness } from './provider/provider.js';
import { DEFAULT_FRACTION_BITS } from './ring.js';

export interface MpcParty {
  readonly id: 0 | 1;
  readonly channel: PartyChannel;
  readonly provider: CorrelatedRandomness;
  /** Fixed-point fraction bits of arithmetic shares (default 16). */
  readonly fractionBits: number;
}

export function mpcParty(id: 0 | 1, channel: PartyChannel, provider: CorrelatedRandomness, fractionBits = DEFAULT_FRACTION_BITS): MpcParty {
  return { id, channel, provider, fractionBits };
}
