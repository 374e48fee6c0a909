/**
 * A party's bearer token, rotated or revoked by the party (CCS side). The token alone is not enough
 * to change it: whoever copied a token could otherwise rotate first and lock the party out. The
 * caller also proves it holds the party's BCP secret key by decrypting a challenge Enc_pk(r) for a
 * 128-bit r. The challenge is stateless (r is a MAC, under a key derived from the server's X25519
 * key, of the party, the expiry and the current token), so it works on any replica, expires after
 * two minutes and dies with the token it was issued for.
 */
import { createHash, createHmac, timingSafeEqual, type KeyObject } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { deserializePublicKey, serializeCiphertext, type BcpParams } from '../crypto/index.js';
import { badRequest, HttpError } from './http-errors.js';
import type { Party, Store } from './store/index.js';

const CHALLENGE_MS = 120_000;

const answerBody = z.object({
  expires: z.number().int().positive(),
  answer: z.string().regex(/^[0-9a-f]{1,64}$/),
});

export interface TokenRouteDeps {
  store: Store;
  params: BcpParams;
  x25519: KeyObject;
  auth: (req: FastifyRequest) => Promise<Party>;
}

/** The bearer token a request authenticated with (auth() has already accepted it). */
const tokenOf = (req: FastifyRequest) => (req.headers.authorization ?? '').replace(/^Bearer /, '');

export function registerTokenRoutes(app: FastifyInstance, deps: TokenRouteDeps): void {
  const secret = createHash('sha256')
    .update('ciphermine token challenge\n')
    .update(deps.x25519.export({ format: 'der', type: 'pkcs8' }))
    .digest();
  const challengeValue = (party: Party, token: string, expires: number): bigint => {
    const tag = createHmac('sha256', secret).update(`${party.id}\n${expires}\n`).update(createHash('sha256').update(token).digest()).digest();
    return BigInt(`0x${tag.subarray(0, 16).toString('hex')}`);
  };

  /** Proof of the party's key: the decrypted challenge, still valid, for the token in use. */
  const prove = async (req: FastifyRequest): Promise<Party> => {
    const party = await deps.auth(req);
    const b = answerBody.safeParse(req.body ?? {});
    if (!b.success) throw badRequest('changing a token needs the answer to a challenge (POST /v1/token/challenge first)');
    const now = Date.now();
    if (b.data.expires < now || b.data.expires > now + CHALLENGE_MS)
      throw new HttpError('ERR_UNAUTHORIZED', 'the token challenge expired: ask for a new one');
    const want = Buffer.from(challengeValue(party, tokenOf(req), b.data.expires).toString(16).padStart(32, '0'), 'hex');
    const got = Buffer.from(b.data.answer.padStart(32, '0').slice(-32), 'hex');
    if (got.length !== want.length || !timingSafeEqual(got, want)) {
      throw new HttpError('ERR_UNAUTHORIZED', "wrong answer to the token challenge: changing a token needs the party's secret key");
    }
    return party;
  };

  app.post('/v1/token/challenge', async (req) => {
    const party = await deps.auth(req);
    const expires = Date.now() + CHALLENGE_MS;
    const pk = deserializePublicKey(party.bcpPublicKey, deps.params);
    const c = pk.encrypt(challengeValue(party, tokenOf(req), expires));
    return { expires, ciphertext: serializeCiphertext(c).toString('base64') };
  });

  /** A new token for the caller; the one it authenticated with stops working at once. */
  app.post('/v1/token', async (req) => {
    const party = await prove(req);
    return { token: await deps.store.replaceToken(party.id) };
  });

  /** Revokes the caller's token with no replacement (a leaked identity): every later request is 401. */
  app.post('/v1/token/revoke', async (req) => {
    const party = await prove(req);
    await deps.store.replaceToken(party.id, true);
    return { revoked: true };
  });
}
