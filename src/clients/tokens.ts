/**
 * A party's bearer token, replaced or revoked by the party itself: after a leak (a copied identity
 * file, a token in a log) `rotateToken` makes the old token useless and returns the identity with
 * the new one; `revokeToken` ends the identity's access with no replacement. Either way the
 * compute server answers the old token with 401 from then on.
 */
import { ComputeServerApi } from './api.js';
import type { IdentityFile } from './identity.js';

const apiOf = (f: IdentityFile) => new ComputeServerApi(f.server, f.token, { tls: f.pins?.tls, params: f.pins?.params });

export async function rotateToken(f: IdentityFile): Promise<IdentityFile> {
  const { token } = await apiOf(f).request<{ token: string }>('POST', '/v1/token');
  return { ...f, token };
}

export async function revokeToken(f: IdentityFile): Promise<void> {
  await apiOf(f).request('DELETE', '/v1/token');
}
