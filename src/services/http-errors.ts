/**
 * Errors of the compute server's public API. Their HTTP status comes from the one registry of error
 * codes (crypto/errors.ts), like every other error's.
 */
import { CiphermineError, type ErrorCode } from '../crypto/errors.js';

/** An error of the public API's own (who may do what, what exists); its status is its code's. */
export class HttpError extends CiphermineError {}

export const unauthorized = (m = 'missing or invalid token') => new HttpError('ERR_UNAUTHORIZED', m);
export const forbidden = (m: string) => new HttpError('ERR_FORBIDDEN', m);
export const notFound = (m: string) => new HttpError('ERR_NOT_FOUND', m);
export const conflict = (m: string) => new HttpError('ERR_CONFLICT', m);
export const badRequest = (m: string) => new HttpError('ERR_BAD_REQUEST', m);
export type { ErrorCode };
