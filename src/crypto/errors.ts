/**
 * Typed errors. Every failure caused by outside input is one of these, with a stable `code`, so
 * servers can map them to 4xx answers and callers can branch without parsing messages.
 *
 * ERROR_CODES is the one registry of codes: what each means and the HTTP status every server
 * answers it with. It lives in the lowest layer because every layer raises these errors; a code
 * missing here is a type error, so a new error cannot forget its status.
 */
export const ERROR_CODES = {
  // input that is malformed or does not fit (400)
  ERR_INVALID_CIPHERTEXT: { status: 400, meaning: 'a ciphertext is malformed, out of range or not in the group' },
  ERR_KEY_MISMATCH: { status: 400, meaning: 'a value used with a key or parameter set it does not belong to' },
  ERR_ENCODING: { status: 400, meaning: 'a real value cannot be encoded exactly in the declared range' },
  ERR_SERIALIZATION: { status: 400, meaning: 'a serialised object is truncated, oversized, or of the wrong kind or version' },
  ERR_ENVELOPE: { status: 400, meaning: 'an AES-GCM envelope or integrity tag fails authentication' },
  ERR_PARAMETER: { status: 400, meaning: 'a bad argument from a caller of the library' },
  ERR_KEY_FILE: { status: 400, meaning: 'a key file is missing, unreadable or too widely readable' },
  ERR_BAD_REQUEST: { status: 400, meaning: 'a request or protocol message is malformed' },
  ERR_BIT_BUDGET: { status: 400, meaning: 'intermediates would not fit below N/2 with the blinding margin' },
  ERR_VALUE_RANGE: { status: 400, meaning: 'an uploaded value lies outside the range its dataset declares' },
  ERR_CSV: { status: 400, meaning: 'a CSV file is not a numeric table' },
  ERR_KMEANS_INPUT: { status: 400, meaning: 'k-means parameters do not fit the data' },
  ERR_STATS_QUERY: { status: 400, meaning: 'a DP query is malformed' },
  ERR_DIVERGED: { status: 400, meaning: 'a training diverged (parameters beyond the fixed-point bound): lower the learning rate' },
  ERR_NOT_JOB_KEY: { status: 400, meaning: 'an operation reserved for job keys was asked for another key' },
  ERR_UNKNOWN_JOB_KIND: { status: 400, meaning: 'no job kind of that name' },
  // who may do what (401, 403)
  ERR_UNAUTHENTICATED: { status: 401, meaning: 'the server-to-server signature is missing, wrong or replayed' },
  ERR_UNAUTHORIZED: { status: 401, meaning: 'missing or invalid bearer token' },
  ERR_FORBIDDEN: { status: 403, meaning: 'the caller may not do this' },
  ERR_PRIVACY_BUDGET_EXCEEDED: { status: 403, meaning: 'a dataset has too little privacy budget left for the query' },
  // what does not exist (404), what is not ready (409), what is too large (413)
  ERR_NOT_FOUND: { status: 404, meaning: 'no such dataset, job or party' },
  ERR_UNKNOWN_KEY: { status: 404, meaning: 'the key server has no such public key' },
  ERR_UNKNOWN_METHOD: { status: 404, meaning: 'the key server has no such method' },
  ERR_UNKNOWN_SHARE: { status: 404, meaning: 'the key server no longer holds those shared records' },
  ERR_UNKNOWN_OT_BASE: { status: 404, meaning: 'the key server no longer holds that batch of base OTs (restarted or expired)' },
  ERR_CONFLICT: { status: 409, meaning: 'the object is not in a state that allows this' },
  ERR_HOST_ABSENT: { status: 409, meaning: "a federated job's host did not take part within the job's timeout" },
  ERR_HOST_INPUT: { status: 400, meaning: "a federated job's host sent something that does not fit the job (columns, sizes, an abort)" },
  ERR_TOO_LARGE: { status: 413, meaning: 'a batch or body exceeds its limit' },
  ERR_RATE_LIMITED: { status: 429, meaning: 'too many requests of this kind from one address; try again later' },
  // the server's side (500, 503)
  ERR_SCHEMA_VERSION: { status: 500, meaning: 'the database was written by another version' },
  ERR_DATABASE_IN_USE: { status: 500, meaning: 'another compute server is using the database' },
  ERR_INTERNAL: { status: 500, meaning: 'an internal error (details in the server log)' },
  ERR_WORKER: { status: 500, meaning: 'a worker thread failed' },
  ERR_UNREACHABLE: { status: 503, meaning: 'a server cannot be reached' },
  ERR_SESSION_LOST: { status: 503, meaning: 'the key server no longer holds that MPC session (it restarted); the job retries' },
  ERR_CHANNEL_KEY: { status: 502, meaning: "the key server refused the compute server's requests: the two servers' channel keys differ" },
  ERR_REMOTE: { status: 502, meaning: 'the other server answered with an error of its own' },
  ERR_BAD_RESPONSE: { status: 502, meaning: 'a server answered with something that is not its protocol' },
  ERR_PIN_MISMATCH: { status: 502, meaning: 'a server presents a key or public parameters other than those pinned at registration' },
} as const satisfies Record<string, { status: number; meaning: string }>;

export type ErrorCode = keyof typeof ERROR_CODES;

export const isErrorCode = (code: unknown): code is ErrorCode => typeof code === 'string' && Object.hasOwn(ERROR_CODES, code);

/**
 * The HTTP status for any error: the registry's for a known code, 500 for anything else (a bug, not
 * the caller's fault), and a framework's own 4xx (fastify's body limit, bad JSON) passed through.
 */
export function httpStatusOf(e: unknown): number {
  const code = (e as { code?: unknown }).code;
  if (isErrorCode(code)) return ERROR_CODES[code].status;
  const s = (e as { statusCode?: unknown }).statusCode;
  return typeof s === 'number' && s >= 400 && s < 500 ? s : 500;
}

export class CiphermineError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string) {
    super(message);
    this.code = code;
    this.name = new.target.name;
  }
}

/** A ciphertext that is malformed, out of range or not an element of the right group. */
export class InvalidCiphertextError extends CiphermineError {
  constructor(message: string) {
    super('ERR_INVALID_CIPHERTEXT', message);
  }
}

/** A value used with a key or parameter set it does not belong to. */
export class KeyMismatchError extends CiphermineError {
  constructor(message: string) {
    super('ERR_KEY_MISMATCH', message);
  }
}

/** A real value that cannot be encoded exactly (NaN, infinite, or outside the declared range). */
export class EncodingError extends CiphermineError {
  constructor(message: string) {
    super('ERR_ENCODING', message);
  }
}

/** A serialised object that is truncated, oversized, of the wrong kind or version. */
export class SerializationError extends CiphermineError {
  constructor(message: string) {
    super('ERR_SERIALIZATION', message);
  }
}

/** An AES-GCM envelope that fails authentication or is malformed. */
export class EnvelopeError extends CiphermineError {
  constructor(message: string) {
    super('ERR_ENVELOPE', message);
  }
}

/** A bad argument from a caller of the library (wrong size, bad option). */
export class ParameterError extends CiphermineError {
  constructor(message: string) {
    super('ERR_PARAMETER', message);
  }
}
