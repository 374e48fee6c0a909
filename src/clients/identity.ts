/**
 * A party's identity file: its id and token at the compute server and its secret keys, written
 * 0600 like every key file, so CLI commands can act for a data owner or query client.
 */
import { readKeyFile, writeKeyFile } from '../crypto/keyfile.js';
import { ParameterError } from '../crypto/errors.js';

export interface IdentityFile {
  role: 'owner' | 'client';
  id: string;
  token: string;
  server: string;
  /** serialised BCP secret key, base64 */
  bcpSecretKey: string;
  /** X25519 private key (pkcs8 DER), base64: owners (envelopes, token proofs) and query clients registered since token proofs (token proofs) */
  x25519PrivateKey?: string;
  /**
   * What was trusted at registration: the public parameters' fingerprint and the compute
   * server's X25519 key, and (https servers) the SHA-256 of its TLS certificate. A server that later
   * presents others is refused (ERR_PIN_MISMATCH).
   */
  pins?: { params: string; x25519?: string; tls?: string };
}

export function saveIdentity(path: string, id: IdentityFile): void {
  writeKeyFile(path, Buffer.from(JSON.stringify(id, null, 2)));
}

export function loadIdentity(path: string): IdentityFile {
  const raw = readKeyFile(path).toString('utf8');
  try {
    return JSON.parse(raw) as IdentityFile;
  } catch {
    throw new ParameterError(`${path} is not an identity file`);
  }
}
