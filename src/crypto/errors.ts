/**
 * Typed errors. Every failure caused by outside input is one of these, with a stable `code`, so
 * servers can map them to 4xx answers and callers can branch without parsing messages.
 */
export class CiphermineError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
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
