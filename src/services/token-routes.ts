/**
 * A party's bearer token, rotated or revoked by the party (CCS side). Both need only the token:
 * a proof of the party's BCP key by decrypting a challenge was tried and withdrawn, because it
 * turns every client into a decryption oracle for a deviating compute server (it could send an
 * upload's ciphertext as the "challenge"). A proof by a separate signing key is the planned fix.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Party, Store } from './store/index.js';

export interface TokenRouteDeps {
  store: Store;
  auth: (req: FastifyRequest) => Promise<Party>;
}

export function registerTokenRoutes(app: FastifyInstance, deps: TokenRouteDeps): void {
  /** A new token for the caller; the one it authenticated with stops working at once. */
  app.post('/v1/token', async (req) => {
    const party = await deps.auth(req);
    return { token: await deps.store.replaceToken(party.id) };
  });

  /** Revokes the caller's token with no replacement (a leaked token): every later request is 401. */
  app.delete('/v1/token', async (req) => {
    const party = await deps.auth(req);
    await deps.store.replaceToken(party.id, true);
    return { revoked: true };
  });
}
