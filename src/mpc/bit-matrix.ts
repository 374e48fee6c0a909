/**
 * Bit-matrix transpose, the inner loop of IKNP OT extension: the extension's 128 columns of m bits
 * become m rows of 128 bits. Bits are LSB first within each byte, rows contiguous. The native kernel
 * (native/gmp_addon.c, SSE2 movemask) does it in a few instructions per 16 x 8 block; the TypeScript
 * fallback gives the same bits.
 */
import { loadNativeGmp } from '../crypto/backend-gmp.js';
import { ParameterError } from '../crypto/errors.js';

const native = process.env.CIPHERMINE_BACKEND === 'js' ? undefined : loadNativeGmp();
export const nativeBitTranspose = typeof native?.bitTranspose === 'function';

function check(input: Uint8Array, rows: number, cols: number): void {
  if (rows % 16 !== 0 || cols % 8 !== 0 || input.length !== (rows * cols) / 8) {
    throw new ParameterError(
      `a bit transpose needs rows divisible by 16 and columns by 8, and ${(rows * cols) / 8} bytes; got ${rows} x ${cols} and ${input.length} bytes`,
    );
  }
}

/** rows x cols bits to cols x rows bits. */
export function transposeBits(input: Uint8Array, rows: number, cols: number): Uint8Array {
  check(input, rows, cols);
  const out = new Uint8Array(input.length);
  if (nativeBitTranspose) native!.bitTranspose!(input, out, rows, cols);
  else transposeBitsJs(input, out, rows, cols);
  return out;
}

/** The TypeScript transpose, bit for bit what the native kernel computes. */
export function transposeBitsJs(input: Uint8Array, out: Uint8Array, rows: number, cols: number): void {
  check(input, rows, cols);
  const inStride = cols / 8;
  const outStride = rows / 8;
  for (let r = 0; r < rows; r += 8) {
    for (let cb = 0; cb < inStride; cb++) {
      for (let i = 0; i < 8; i++) {
        let byte = 0;
        for (let k = 0; k < 8; k++) byte |= ((input[(r + k) * inStride + cb]! >>> i) & 1) << k;
        out[(cb * 8 + i) * outStride + r / 8] = byte;
      }
    }
  }
}
