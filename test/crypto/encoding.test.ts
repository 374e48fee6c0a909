import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { FixedPointCodec, EncodingError, ParameterError } from '../../src/crypto/index.js';

describe('fixed-point encoding', () => {
  const codec = new FixedPointCodec({ fractionBits: 16, maxAbs: 1000 });

  it('round-trips within 2^-f / 2, keeps signs and zero', () => {
    for (const v of [0, -0, 1, -1, 3.14159, -2.71828, 999.99, -1000, 1000, 1e-9]) {
      const x = codec.encode(v);
      assert.ok(Math.abs(codec.decode(x) - v) <= 2 ** -17, `${v}`);
    }
    assert.equal(codec.encode(-1.5), -98304n);
    assert.equal(codec.maxEncoded, 1000n * 65536n);
  });

  it('refuses NaN, infinities, values out of range and non-numbers', () => {
    for (const v of [NaN, Infinity, -Infinity, 1000.001, -1e6, '5' as unknown as number, undefined as unknown as number]) {
      assert.throws(() => codec.encode(v), EncodingError, String(v));
    }
  });

  it('refuses a precision that cannot be exact in a double', () => {
    assert.throws(() => new FixedPointCodec({ fractionBits: 40, maxAbs: 2 ** 20 }), ParameterError);
    assert.throws(() => new FixedPointCodec({ fractionBits: -1 }), ParameterError);
    assert.throws(() => new FixedPointCodec({ maxAbs: NaN }), ParameterError);
    assert.deepEqual(codec.toJSON(), { fractionBits: 16, maxAbs: 1000 });
  });
});
