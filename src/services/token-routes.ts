/**
 * A party's bearer token, rotated or revoked by the party (CCS side). A party registered with an
 * X25519 key (every data owner; query clients since this version) must also prove that key: a MAC
 * under a key only it and the compute server can derive (deriveTokenProofKey), over the action, a
 * timestamp and the token being replaced. So a leaked token alone can use the party's access until
 * it is rotated, but cannot rotate it away from its owner. The proof is single-use (the token it
 * names stops working) and fresh (five minutes). A challenge decrypted with the party's BCP key was
 * tried and withdrawn: it made every client a decryption oracle for a deviating compute server.
 */
import { timingSafeEqual, type KeyObject } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { CiphermineError } from '../crypto/errors.js';
import { deriveTokenProofKey, tokenProofTag } from '../crypto/key-agreement.js';
import type { Party, Store } from './store/index.js';

export const TOKEN_PROOF_HEADER = 'x-cm-token-proof';
const PROOF_WINDOW_MS = 5 * 60_000;

export interface TokenRouteDeps {
  store: Store;
  auth: (req: FastifyRequest) => Promise<Party>;
  /** The compute server's X25519 private key (the other half of the proof key). */
  x25519: KeyObject;
}

export function registerTokenRoutes(app: FastifyInstance, deps: TokenRouteDeps): void {
  /** A new token for the caller; the one it authenticated with stops working at once. */
  app.post('/v1/token', async (req) => {
    const { party, token } = await proven(req, deps, 'rotate');
    return { token: await deps.store.replaceToken(party.id, token) };
  });

  /** Revokes the caller's token with no replacement (a leaked token): every later request is 401. */
  app.delete('/v1/token', async (req) => {
    const { party, token } = await proven(req, deps, 'revoke');
    await deps.store.replaceToken(party.id, token, true);
    return { revoked: true };
  });
}

async function proven(req: FastifyRequest, deps: TokenRouteDeps, action: 'rotate' | 'revoke'): Promise<{ party: Party; token: string }> {
  const party = await deps.auth(req);
  const token = (req.headers.authorization ?? '').slice('Bearer '.length);
  // Parties registered before query clients had X25519 keys have nothing to prove with.
  if (!party.x25519PublicKey) return { party, token };
  const m = /^(\d{1,16})\.([0-9a-f]{64})$/.exec(String(req.headers[TOKEN_PROOF_HEADER] ?? ''));
  if (!m)
    throw new CiphermineError('ERR_FORBIDDEN', `to ${action} a token, prove the party's X25519 key (header ${TOKEN_PROOF_HEADER}; the CLI sends it)`);
  const ts = Number(m[1]);
  if (Math.abs(Date.now() - ts) > PROOF_WINDOW_MS)
    throw new CiphermineError('ERR_FORBIDDEN', 'the token proof is stale (clocks more than five minutes apart?)');
  const key = deriveTokenProofKey(deps.x25519, party.x25519PublicKey, party.id);
  const want = tokenProofTag(key, action, ts, token);
  if (!timingSafeEqual(want, Buffer.from(m[2]!, 'hex')))
    throw new CiphermineError('ERR_FORBIDDEN', "the token proof does not verify against the party's X25519 key");
  return { party, token };
}
