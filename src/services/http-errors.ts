/** Errors with an HTTP status, for the compute server's public API. */
import { CiphermineError } from '../crypto/errors.js';

export class HttpError extends CiphermineError {
  constructor(
    readonly status: number,
    code: string,
    message: string,
  ) {
    super(code, message);
  }
}

export const unauthorized = (m = 'missing or invalid token') => new HttpError(401, 'ERR_UNAUTHORIZED', m);
export const forbidden = (m: string) => new HttpError(403, 'ERR_FORBIDDEN', m);
export const notFound = (m: string) => new HttpError(404, 'ERR_NOT_FOUND', m);
export const conflict = (m: string) => new HttpError(409, 'ERR_CONFLICT', m);
export const badRequest = (m: string) => new HttpError(400, 'ERR_BAD_REQUEST', m);

export function statusFor(e: unknown): number {
  if (e instanceof HttpError) return e.status;
  if (e instanceof CiphermineError) return 400;
  const s = (e as { statusCode?: number }).statusCode;
  return typeof s === 'number' && s >= 400 && s < 600 ? s : 500;
}
