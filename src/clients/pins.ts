/**
 * Trust on first use, checked ever after: at registration a party pins the public parameters'
 * fingerprint (which the key server prints at setup, so it can be compared out of band) and, for an
 * owner, the compute server's X25519 key its uploads are sealed to. A change is refused: it means
 * another server, a re-keyed one, or someone in between.
 */
import { CiphermineError, ParameterError } from '../crypto/errors.js';
import type { BcpParams } from '../crypto/bcp-params.js';
import { checkParamsPolicy } from '../crypto/params-policy.js';
import { requireCertFingerprint, requireSecureUrl } from '../crypto/tls.js';
import { presentedFingerprint } from '../protocols/pinned-tls.js';

export class PinMismatchError extends CiphermineError {
  constructor(message: string) {
    super('ERR_PIN_MISMATCH', message);
  }
}

/** At registration: the policy, and the fingerprint the user was told to expect (if any). */
export function checkNewParams(pp: BcpParams, server: string, expected?: string): BcpParams {
  checkParamsPolicy(pp, `the compute server at ${server}`);
  if (expected !== undefined && expected !== pp.fingerprint) {
    throw new PinMismatchError(
      `the compute server at ${server} serves public parameters ${pp.fingerprint}, not the ${expected} you expected: refusing to register`,
    );
  }
  return pp;
}

export function checkPinned(
  what: 'public parameters' | 'X25519 key' | 'TLS certificate',
  server: string,
  seen: string,
  pinned: string | undefined,
): void {
  if (pinned === undefined) return;
  if (seen !== pinned) {
    throw new PinMismatchError(
      `the compute server at ${server} now presents ${what} ${seen.slice(0, 32)}, not the ${pinned.slice(0, 32)} pinned at registration: refusing (if the server was re-keyed on purpose, register again)`,
    );
  }
}

/**
 * At registration with an https server: the certificate it presents, checked against the one the
 * user was told to expect (if any), to be pinned for every later connection.
 */
export async function pinCertificate(server: string, expected?: string): Promise<string | undefined> {
  requireSecureUrl(server, 'the compute server');
  if (!server.startsWith('https:')) {
    if (expected !== undefined)
      throw new PinMismatchError(`${server} does not speak TLS, but a certificate ${expected} was expected: refusing to register`);
    return undefined;
  }
  const seen = await presentedFingerprint(server);
  if (expected !== undefined && requireCertFingerprint(expected) !== seen) {
    throw new PinMismatchError(
      `the compute server at ${server} presents TLS certificate ${seen}, not the ${expected} you expected: refusing to register`,
    );
  }
  return seen;
}

export const requireFingerprint = (s: string): string => {
  if (!/^[0-9a-f]{32}$/.test(s)) throw new ParameterError(`a parameters fingerprint is 32 hex digits (as the key server prints it), got '${s}'`);
  return s;
};
