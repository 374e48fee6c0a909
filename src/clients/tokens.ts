/**
 * A party's bearer token, replaced or revoked by the party itself: after a leak (a copied identity
 * file, a token in a log) `rotateToken` makes the old token useless and returns the identity with
 * the new one; `revokeToken` ends the identity's access with no replacement. Either way the
 * compute server answers the old token with 401 from then on.
 */
import { ComputeServerApi } from './api.js';
import type { IdentityFile } from './identity.js';
import { importAgreementPrivateKey, tokenProof } from '../crypto/key-agreement.js';

/** The header the compute server checks (token-routes.ts): proof of the identity's X25519 key. */
const TOKEN_PROOF_HEADER = 'x-cm-token-proof';

const apiOf = (f: IdentityFile) => new ComputeServerApi(f.server, f.token, { tls: f.pins?.tls, params: f.pins?.params });

/** Identities made before query clients had X25519 keys send no proof (the server asks none of them). */
function proofHeaders(f: IdentityFile, action: 'rotate' | 'revoke'): Record<string, string> {
  if (!f.x25519PrivateKey || !f.pins?.x25519) return {};
  const key = importAgreementPrivateKey(Buffer.from(f.x25519PrivateKey, 'base64'));
  return { [TOKEN_PROOF_HEADER]: tokenProof(key, f.pins.x25519, f.id, action, f.token) };
}

export async function rotateToken(f: IdentityFile): Promise<IdentityFile> {
  const { token } = await apiOf(f).request<{ token: string }>('POST', '/v1/token', undefined, proofHeaders(f, 'rotate'));
  return { ...f, token };
}

export async function revokeToken(f: IdentityFile): Promise<void> {
  await apiOf(f).request('DELETE', '/v1/token', undefined, proofHeaders(f, 'revoke'));
}
