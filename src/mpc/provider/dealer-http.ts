/**
 * A server's end of a dealer that runs as its own process (`ciphermine dealer start`): the seed of
 * a session is fetched once, and party 1's corrections arrive over the same HMAC-authenticated
 * channel the two servers use with each other, under a key the dealer made for this server alone,
 * so neither server can obtain the other's seed.
 */
import { ParameterError } from '../../crypto/errors.js';
import { HttpTransport } from '../../protocols/http-transport.js';
import { DealerProvider, type DealerLink, type DealerRequest } from './dealer.js';

export const SESSION_ID = /^[A-Za-z0-9_-]{8,64}$/;

class HttpDealerLink implements DealerLink {
  constructor(
    private readonly transport: HttpTransport,
    private readonly session: string,
  ) {}
  correction(request: DealerRequest): Promise<Uint8Array> {
    return this.transport.call('correction', Buffer.from(JSON.stringify({ session: this.session, request })));
  }
  corrections(requests: readonly DealerRequest[]): Promise<Uint8Array> {
    return this.transport.call('corrections', Buffer.from(JSON.stringify({ session: this.session, requests })));
  }
}

/**
 * This server's provider for one session of computation. `url` and `key` are the dealer endpoint
 * and key file made for this server (party 0: the compute server; party 1: the key server);
 * `fingerprint` pins the dealer's TLS certificate (required for an https URL).
 */
export async function remoteDealerProvider(
  party: 0 | 1,
  url: string,
  key: Uint8Array,
  session: string,
  fingerprint?: string,
): Promise<DealerProvider> {
  if (!SESSION_ID.test(session)) throw new ParameterError('a dealer session id is 8 to 64 letters, digits, - or _');
  const transport = new HttpTransport(url, key, { fingerprint, peer: 'the dealer' });
  const seed = await transport.call('seed', Buffer.from(session));
  return new DealerProvider(party, seed, party === 1 ? new HttpDealerLink(transport, session) : undefined);
}
