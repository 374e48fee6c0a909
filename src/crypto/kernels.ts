/**
 * Batch kernels: pure functions over structured-cloneable inputs, run either in this thread or on
 * a worker of the pool. Key objects are rebuilt once per worker and cached, so each worker keeps
 * its own fixed-base tables warm.
 */
import { BcpParams } from './bcp-params.js';
import { BcpPublicKey, BcpSecretKey } from './bcp-keys.js';
import { BcpMasterKey } from './bcp-master.js';
import { Ciphertext } from './ciphertext.js';
import { backend } from './backends.js';

export interface KeyWire {
  N: bigint;
  g: bigint;
  h: bigint;
}

export type Pair = [bigint, bigint];

const cache = new Map<string, unknown>();
function cached<T>(key: string, make: () => T): T {
  let v = cache.get(key) as T | undefined;
  if (v === undefined) {
    v = make();
    cache.set(key, v);
  }
  return v;
}

function publicKey(w: KeyWire): BcpPublicKey {
  const params = cached(`pp:${w.N}:${w.g}`, () => new BcpParams(w.N, w.g));
  return cached(`pk:${w.N}:${w.g}:${w.h}`, () => new BcpPublicKey(params, w.h));
}

export const kernels = {
  modPow(shared: { m: bigint }, items: Pair[]): bigint[] {
    const be = backend();
    return items.map(([b, e]) => be.modPow(b, e, shared.m));
  },
  encrypt(shared: KeyWire, items: bigint[]): Pair[] {
    const pk = publicKey(shared);
    return items.map((m) => {
      const c = pk.encrypt(m);
      return [c.A, c.B];
    });
  },
  decrypt(shared: KeyWire & { a: bigint }, items: Pair[]): bigint[] {
    const pk = publicKey(shared);
    const sk = cached(`sk:${pk.fingerprint}:${shared.a}`, () => new BcpSecretKey(pk, shared.a));
    return items.map(([A, B]) => sk.decryptResidue(new Ciphertext(pk, A, B)));
  },
  /**
   * Affine recombination (A0, B0) * prod (A_i, B_i)^(e_i) * (1, 1 + tN) with e_i >= 0: the compute
   * server's last step of SM and the secure square, where the exponents are full-size blinding values.
   */
  combine(shared: { N: bigint }, items: Array<{ base: Pair; terms: Array<[bigint, bigint, bigint]>; t: bigint }>): Pair[] {
    const be = backend();
    const N2 = shared.N * shared.N;
    return items.map(({ base, terms, t }) => {
      let [A, B] = base;
      for (const [a, b, e] of terms) {
        A = be.modMul(A, be.modPow(a, e, N2), N2);
        B = be.modMul(B, be.modPow(b, e, N2), N2);
      }
      return [A, be.modMul(B, 1n + t * shared.N, N2)];
    });
  },
  masterDecrypt(shared: KeyWire & { p: bigint; q: bigint }, items: Pair[]): bigint[] {
    const pk = publicKey(shared);
    const msk = cached(`msk:${pk.params.fingerprint}`, () => new BcpMasterKey(pk.params, shared.p, shared.q));
    return items.map(([A, B]) => msk.decryptResidue(new Ciphertext(pk, A, B)));
  },
} satisfies Record<string, (shared: never, items: never[]) => unknown[]>;

export type KernelName = keyof typeof kernels;

export function runKernel(name: KernelName, shared: unknown, items: unknown[]): unknown[] {
  const f = kernels[name] as (s: unknown, i: unknown[]) => unknown[];
  return f(shared, items);
}

export function keyWire(pk: BcpPublicKey): KeyWire {
  return { N: pk.params.N, g: pk.params.g, h: pk.h };
}
