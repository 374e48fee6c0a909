/**
 * The AES key of seed 000's double encryption: X25519 between a data owner (DO) and the compute
 * server (CCS), stretched by HKDF-SHA256 and bound to the owner and dataset ids, so the same pair of
 * parties gets an independent key per dataset and a key can never be replayed for another one.
 */
import { createHmac, createPrivateKey, createPublicKey, diffieHellman, generateKeyPairSync, hkdfSync, type KeyObject } from 'node:crypto';
import { ParameterError } from './errors.js';

export interface AgreementKeyPair {
  privateKey: KeyObject;
  /** Raw 32-byte X25519 public key, base64url. */
  publicKey: string;
}

export function generateAgreementKeyPair(): AgreementKeyPair {
  const { privateKey, publicKey } = generateKeyPairSync('x25519');
  return { privateKey, publicKey: publicKey.export({ format: 'jwk' }).x! };
}

export function importAgreementPublicKey(x: string): KeyObject {
  if (typeof x !== 'string' || Buffer.from(x, 'base64url').length !== 32) {
    throw new ParameterError('an X25519 public key is 32 bytes, base64url');
  }
  return createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x }, format: 'jwk' });
}

export function exportAgreementPrivateKey(k: KeyObject): Buffer {
  return k.export({ format: 'der', type: 'pkcs8' });
}

export function importAgreementPrivateKey(der: Uint8Array): KeyObject {
  return createPrivateKey({ key: Buffer.from(der), format: 'der', type: 'pkcs8' });
}

export interface EnvelopeContext {
  ownerId: string;
  datasetId: string;
}

/**
 * 32-byte key from X25519 + HKDF-SHA256, bound to (owner, dataset) and to its purpose: the AES-256
 * envelope key, or the HMAC-SHA256 key of the ciphertext integrity tags (seed 001).
 */
export function deriveEnvelopeKey(
  ours: KeyObject,
  theirs: string | KeyObject,
  ctx: EnvelopeContext,
  purpose: 'aes-envelope' | 'hmac-tag' = 'aes-envelope',
): Buffer {
  const peer = typeof theirs === 'string' ? importAgreementPublicKey(theirs) : theirs;
  const shared = diffieHellman({ privateKey: ours, publicKey: peer });
  const info = `ciphermine/v1/${purpose}/owner=${ctx.ownerId}/dataset=${ctx.datasetId}`;
  return Buffer.from(hkdfSync('sha256', shared, 'ciphermine-x25519-hkdf-salt-v1', info, 32));
}

/**
 * A MAC key only a party and the compute server (CCS) can compute, from the party's X25519 key and
 * the server's: it proves the party's key when a token is rotated or revoked, so a leaked bearer
 * token alone cannot lock its owner out. A label of its own keeps it apart from every envelope key.
 */
export function deriveTokenProofKey(ours: KeyObject, theirs: string | KeyObject, partyId: string): Buffer {
  const peer = typeof theirs === 'string' ? importAgreementPublicKey(theirs) : theirs;
  const shared = diffieHellman({ privateKey: ours, publicKey: peer });
  return Buffer.from(hkdfSync('sha256', shared, 'ciphermine-x25519-hkdf-salt-v1', `ciphermine/v1/token-proof/party=${partyId}`, 32));
}

/**
 * A token proof's tag: HMAC-SHA256 under the proof key over the action, a timestamp and the token
 * being replaced (so it is single-use: that token stops working).
 */
export function tokenProofTag(key: Buffer, action: 'rotate' | 'revoke', timestamp: number, token: string): Buffer {
  return createHmac('sha256', key).update(`${action}\n${timestamp}\n${token}`).digest();
}

/** The header value a party sends to prove its X25519 key when it rotates or revokes `token`. */
export function tokenProof(
  ours: KeyObject,
  serverPublic: string,
  partyId: string,
  action: 'rotate' | 'revoke',
  token: string,
  now = Date.now(),
): string {
  return `${now}.${tokenProofTag(deriveTokenProofKey(ours, serverPublic, partyId), action, now, token).toString('hex')}`;
}
