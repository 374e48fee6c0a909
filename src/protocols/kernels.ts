/**
 * Batch kernels of the protocols: the compute server's unblinding of shared-record distances, the
 * affine recombination of SM, the secure square, SDM and SDC, and packing. Pure functions over
 * structured-cloneable inputs, run on the calling thread or on a worker of a pool that loaded this
 * module (createProtocolPool).
 */
import { backend } from '../crypto/backends.js';
import { mod } from '../crypto/bigint.js';
import { cached, cryptoKernels, publicKey, rerandomizer, runKernel, type KernelModule, type KeyWire, type Pair } from '../crypto/kernels.js';
import { WorkerPool } from '../crypto/pool.js';

export interface CombineItem {
  base: Pair;
  /** [A, B, signed exponent] */
  terms: Array<[bigint, bigint, bigint]>;
  t: bigint;
}

export const kernels = {
  /**
   * The compute server's unblinding of the shared-record distances (inner-distances.ts), per record
   * i and cluster j, all in KMS form (B components only):
   *   z_ij * prod_d x_id^(-t_jd) * prod_d wInv_jd^(c_id) * sigma_j * (1 + (-<c_i, t_j>) N).
   */
  innerUnblind(
    shared: { N: bigint; wInv: bigint[][]; t: bigint[][]; sigma: bigint[] },
    items: Array<{ z: bigint[]; x: bigint[]; c: bigint[] }>,
  ): bigint[][] {
    const { N, wInv, t, sigma } = shared;
    const N2 = N * N;
    const be = backend();
    return items.map(({ z, x, c }) => {
      const xInv = x.map((b) => be.modInverse(b, N2));
      return z.map((zj, j) => {
        let ct = 0n;
        for (let d = 0; d < c.length; d++) ct += c[d]! * t[j]![d]!;
        const prod = be.multiPow([...xInv, ...wInv[j]!], [...t[j]!, ...c], N2);
        const fixed = be.modMul(be.modMul(zj, sigma[j]!, N2), 1n + mod(-ct, N) * N, N2);
        return be.modMul(prod, fixed, N2);
      });
    });
  },
  /**
   * Affine recombination (A0, B0) * prod (A_i, B_i)^(e_i) * (1, 1 + tN): the compute server's
   * unblinding step of SM, the secure square and SDM, and SDC's multiplicative blind. A negative
   * e_i inverts the base first, so short signed exponents stay short.
   */
  combine(shared: { N: bigint }, items: CombineItem[]): Pair[] {
    const N2 = shared.N * shared.N;
    const be = backend();
    return items.map(({ base, terms, t }) => {
      // Negative exponents invert their base, so every exponent stays as short as |e|.
      const as: bigint[] = [base[0]];
      const bs: bigint[] = [be.modMul(base[1], 1n + mod(t, shared.N) * shared.N, N2)];
      const es: bigint[] = [1n];
      for (const [a, b, e] of terms) {
        as.push(e < 0n ? be.modInverse(a, N2) : a);
        bs.push(e < 0n ? be.modInverse(b, N2) : b);
        es.push(e < 0n ? -e : e);
      }
      // KMS-form operands (A = 1 throughout) stay one element.
      const A = as.every((a) => a === 1n) ? 1n : be.multiPow(as, es, N2);
      return [A, be.multiPow(bs, es, N2)];
    });
  },
  /**
   * Packs ciphertexts of small values into one: Horner over the slots, slot 0 least significant,
   * each step raising to 2^slotBits, then adds a fresh encryption of the constant (the blinding of
   * all slots) and a fresh h_N^rho', which rerandomise the pack (kms-paillier.ts).
   */
  pack(shared: KeyWire & { slotBits: number }, items: Array<{ slots: Pair[]; constant: bigint }>): Pair[] {
    const pk = publicKey(shared);
    const N2 = pk.params.N2;
    const be = backend();
    const shift = 1n << BigInt(shared.slotBits);
    const re = rerandomizer(pk.params.N);
    return items.map(({ slots, constant }) => {
      let [A, B] = slots[slots.length - 1]!;
      const kmsOnly = slots.every(([a]) => a === 1n);
      for (let i = slots.length - 2; i >= 0; i--) {
        if (!kmsOnly) A = be.modMul(be.modPow(A, shift, N2), slots[i]![0], N2);
        B = be.modMul(be.modPow(B, shift, N2), slots[i]![1], N2);
      }
      const m = mod(constant, pk.params.N);
      // KMS-form slots stay one element: the constant goes in as (1 + mN), the fresh randomness as h_N^rho'.
      if (kmsOnly) return [1n, be.modMul(be.modMul(B, 1n + m * pk.params.N, N2), re.factor(), N2)];
      const c = pk.encrypt(m);
      return [be.modMul(A, c.A, N2), be.modMul(be.modMul(B, c.B, N2), re.factor(), N2)];
    });
  },
};

export const protocolKernels: KernelModule = { url: import.meta.url, kernels };

const everything = [cryptoKernels, protocolKernels];

/** Runs a crypto or protocol kernel on this thread. */
export const runProtocolKernel = (name: string, shared: unknown, items: unknown[]) => runKernel(everything, name, shared, items);

/** A worker pool that runs both the cryptosystem's and the protocols' kernels. */
export function createProtocolPool(size?: number): WorkerPool {
  return new WorkerPool(size, [protocolKernels]);
}
