/**
 * A party's bearer token, replaced or revoked by the party itself: after a leak (a copied identity
 * file, a token in a log) `rotateToken` makes the old token useless and returns the identity with
 * the new one; `revokeToken` ends the identity's access with no replacement. Either way the
 * compute server answers the old token with 401 from then on. Both prove the party's key: the
 * compute server's challenge is decrypted with the identity's BCP secret key, so a leaked token
 * alone cannot change the credential.
 */
import { deserializeCiphertext, deserializeSecretKey } from '../crypto/index.js';
import { ComputeServerApi } from './api.js';
import type { IdentityFile } from './identity.js';

const apiOf = (f: IdentityFile) => new ComputeServerApi(f.server, f.token, { tls: f.pins?.tls, params: f.pins?.params });

/** The answer to a fresh token challenge, decrypted with the party's secret key. */
async function answer(api: ComputeServerApi, f: IdentityFile): Promise<{ expires: number; answer: string }> {
  const ch = await api.request<{ expires: number; ciphertext: string }>('POST', '/v1/token/challenge');
  const sk = deserializeSecretKey(Buffer.from(f.bcpSecretKey, 'base64'));
  const r = sk.decryptResidue(deserializeCiphertext(Buffer.from(ch.ciphertext, 'base64'), sk.publicKey));
  return { expires: ch.expires, answer: r.toString(16) };
}

export async function rotateToken(f: IdentityFile): Promise<IdentityFile> {
  const api = apiOf(f);
  const { token } = await api.request<{ token: string }>('POST', '/v1/token', await answer(api, f));
  return { ...f, token };
}

export async function revokeToken(f: IdentityFile): Promise<void> {
  const api = apiOf(f);
  await api.request('POST', '/v1/token/revoke', await answer(api, f));
}
