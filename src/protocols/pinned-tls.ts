/**
 * Connections to a TLS listener whose certificate is pinned by its SHA-256 fingerprint: what a
 * client pinned at registration, or what an operator gave a server for its peer (the key server,
 * the dealer). Self-signed certificates are the normal case in a private deployment, so the chain
 * is not what is checked: the exact certificate is, on every new connection. A different one fails
 * the request with ERR_PIN_MISMATCH before anything is sent.
 */
import type { TLSSocket } from 'node:tls';
import { Agent, buildConnector, type Dispatcher } from 'undici';
import { CiphermineError } from '../crypto/errors.js';
import { normaliseFingerprint } from '../crypto/tls.js';

export class CertificatePinError extends CiphermineError {
  constructor(message: string) {
    super('ERR_PIN_MISMATCH', message);
  }
}

const fingerprintOf = (socket: TLSSocket): string => normaliseFingerprint(socket.getPeerCertificate().fingerprint256 ?? '');

/**
 * A dispatcher for fetch that accepts only the certificate `fingerprint` on https connections
 * (`what` names the peer in errors). Plain http URLs pass through unchanged.
 */
export function pinnedDispatcher(fingerprint: string, what: string): Dispatcher {
  const pin = normaliseFingerprint(fingerprint);
  const base = buildConnector({ rejectUnauthorized: false, maxCachedSessions: 0 });
  return new Agent({
    connect: (opts, callback) =>
      base(opts, (err, socket) => {
        if (err || opts.protocol !== 'https:') return callback(err as Error, socket as never);
        const seen = fingerprintOf(socket as TLSSocket);
        if (seen === pin) return callback(null, socket!);
        socket!.destroy();
        callback(
          new CertificatePinError(
            `${what} at ${opts.hostname}:${opts.port} presents TLS certificate ${seen.slice(0, 32)}..., not the ${pin.slice(0, 32)}... pinned: refusing`,
          ),
          null,
        );
      }),
  });
}

/** The fingerprint of the certificate an https server presents now (trust on first use). */
export async function presentedFingerprint(url: string): Promise<string> {
  const { connect } = await import('node:tls');
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect({
      // An IPv6 literal comes bracketed in a URL; tls.connect wants it bare, and no SNI for an address.
      host: u.hostname.replace(/^\[(.*)\]$/, '$1'),
      port: Number(u.port || 443),
      servername: /^[\d.]+$|^\[/.test(u.hostname) ? undefined : u.hostname,
      rejectUnauthorized: false,
    });
    socket.setTimeout(10_000, () => socket.destroy(new Error('TLS handshake timed out')));
    socket.once('secureConnect', () => {
      const fp = fingerprintOf(socket);
      socket.end();
      resolve(fp);
    });
    socket.once('error', reject);
  });
}

/** The error a fetch through a pinned dispatcher failed with, if it was the pin. */
export function pinErrorOf(e: unknown): CertificatePinError | undefined {
  const cause = (e as { cause?: unknown }).cause;
  return cause instanceof CertificatePinError ? cause : e instanceof CertificatePinError ? e : undefined;
}
