/**
 * TLS material for the listeners that are not loopback-only (compute server, key server, dealer):
 * loading a certificate and its key (the key file 0600, as every key file), the SHA-256 fingerprint
 * that clients pin, and a self-signed pair for a private deployment (`ciphermine tls make`).
 * A self-signed certificate authenticates nothing by itself; it does once its fingerprint is pinned
 * by the parties that connect (clients at registration, servers by the operator's flag).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { isIP } from 'node:net';
import { generate } from 'selfsigned';
import { readKeyFile, writeKeyFile, KeyFileError } from './keyfile.js';
import { ParameterError } from './errors.js';

export interface TlsMaterial {
  cert: string;
  key: string;
  /** SHA-256 of the certificate (DER), lower-case hex without colons. */
  fingerprint: string;
}

/** SHA-256 fingerprints as pinned: lower-case hex, no colons (Node prints them with colons). */
export const normaliseFingerprint = (fp: string): string => fp.replace(/:/g, '').toLowerCase();

export function requireCertFingerprint(fp: string): string {
  const n = normaliseFingerprint(fp);
  if (!/^[0-9a-f]{64}$/.test(n)) throw new ParameterError(`a certificate fingerprint is 64 hex digits (SHA-256, colons allowed), got '${fp}'`);
  return n;
}

export function certificateFingerprint(certPem: string): string {
  return normaliseFingerprint(new X509Certificate(certPem).fingerprint256);
}

/** Reads a certificate and its private key; the key file must not be readable by others. */
export function loadTls(certFile: string, keyFile: string): TlsMaterial {
  let cert: string;
  try {
    cert = readFileSync(certFile, 'utf8');
  } catch {
    throw new KeyFileError(`certificate file ${certFile} cannot be read`);
  }
  const key = readKeyFile(keyFile).toString('utf8');
  let fingerprint: string;
  try {
    fingerprint = certificateFingerprint(cert);
    createPrivateKey(key);
  } catch (e) {
    throw new KeyFileError(`${certFile} / ${keyFile} are not a PEM certificate and private key: ${(e as Error).message}`);
  }
  return { cert, key, fingerprint };
}

/** Whether a listener on `host` is reachable only from this machine. */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[(.*)\]$/, '$1');
  return h === 'localhost' || h === '::1' || /^127\.\d+\.\d+\.\d+$/.test(h);
}

/**
 * A client's URL for a server: https, or plain http to this machine only. Without TLS nothing
 * authenticates the server, so a bearer token or a pin check over http off loopback is refused
 * rather than sent in the clear (`what` names the server in the error).
 */
export function requireSecureUrl(url: string, what: string): URL {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new ParameterError(`${what}: '${url}' is not a URL`);
  }
  if (u.protocol === 'https:') return u;
  if (u.protocol !== 'http:') throw new ParameterError(`${what}: '${url}' is neither https nor http`);
  if (!isLoopbackHost(u.hostname)) {
    throw new ParameterError(
      `${what} at ${url} is not on this machine and the URL is plain http: use https (the server needs --tls-cert/--tls-key; 'ciphermine tls make' makes a pair)`,
    );
  }
  return u;
}

/** A listener off loopback must have TLS: refuse to start otherwise. */
export function requireTlsOffLoopback(role: string, host: string, tls: TlsMaterial | undefined): void {
  if (!tls && !isLoopbackHost(host)) {
    throw new ParameterError(
      `the ${role} listens on ${host}, which is not loopback-only: give --tls-cert and --tls-key (make a self-signed pair with 'ciphermine tls make')`,
    );
  }
}

/**
 * A self-signed certificate (ECDSA P-256, SHA-256, valid `days`) for the given host names and
 * addresses, written as `certFile` and a 0600 `keyFile`. Returns the material with its fingerprint.
 */
export async function makeSelfSigned(hosts: readonly string[], certFile: string, keyFile: string, days = 825): Promise<TlsMaterial> {
  if (hosts.length === 0) throw new ParameterError('a certificate names at least one host');
  const notBeforeDate = new Date();
  const notAfterDate = new Date(notBeforeDate.getTime() + days * 86_400_000);
  const altNames = hosts.map((h) => (isIP(h) ? { type: 7 as const, ip: h } : { type: 2 as const, value: h }));
  const pems = await generate([{ name: 'commonName', value: hosts[0]! }], {
    keyType: 'ec',
    curve: 'P-256',
    algorithm: 'sha256',
    notBeforeDate,
    notAfterDate,
    extensions: [
      { name: 'basicConstraints', cA: false },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true },
      { name: 'extKeyUsage', serverAuth: true },
      { name: 'subjectAltName', altNames },
    ],
  });
  writeKeyFile(keyFile, Buffer.from(pems.private));
  writeFileSync(certFile, pems.cert);
  return { cert: pems.cert, key: pems.private, fingerprint: certificateFingerprint(pems.cert) };
}
