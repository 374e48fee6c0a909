/**
 * Fixed-point signed encoding of real values (docs/cryptosystem.md): v -> round(v * 2^f). The
 * precision f and the declared range travel with the data, and every value is range-checked so that
 * nothing wraps silently modulo N.
 */
import { EncodingError, ParameterError } from './errors.js';

export interface FixedPointSpec {
  /** f: fractional bits. */
  fractionBits: number;
  /** Largest magnitude of a real value accepted. */
  maxAbs: number;
}

export class FixedPointCodec implements FixedPointSpec {
  readonly fractionBits: number;
  readonly maxAbs: number;
  private readonly scale: number;

  constructor(spec: Partial<FixedPointSpec> = {}) {
    const { fractionBits = 16, maxAbs = 2 ** 20 } = spec;
    if (!Number.isInteger(fractionBits) || fractionBits < 0 || fractionBits > 52) {
      throw new ParameterError('fractionBits must be an integer in [0, 52]');
    }
    if (!(maxAbs > 0) || !Number.isFinite(maxAbs) || maxAbs * 2 ** fractionBits > Number.MAX_SAFE_INTEGER) {
      throw new ParameterError('maxAbs * 2^fractionBits must be a positive number below 2^53');
    }
    this.fractionBits = fractionBits;
    this.maxAbs = maxAbs;
    this.scale = 2 ** fractionBits;
  }

  /** Largest magnitude of an encoded integer: what bit-length budgets start from. */
  get maxEncoded(): bigint {
    return BigInt(Math.round(this.maxAbs * this.scale));
  }

  encode(v: number): bigint {
    if (typeof v !== 'number' || Number.isNaN(v)) throw new EncodingError(`cannot encode ${String(v)}: not a number`);
    if (!Number.isFinite(v)) throw new EncodingError(`cannot encode ${v}: not finite`);
    if (Math.abs(v) > this.maxAbs) {
      throw new EncodingError(`value ${v} is outside the declared range [-${this.maxAbs}, ${this.maxAbs}]`);
    }
    return BigInt(Math.round(v * this.scale));
  }

  decode(x: bigint): number {
    return Number(x) / this.scale;
  }

  encodeRow(row: readonly number[]): bigint[] {
    return row.map((v) => this.encode(v));
  }

  toJSON(): FixedPointSpec {
    return { fractionBits: this.fractionBits, maxAbs: this.maxAbs };
  }
}
