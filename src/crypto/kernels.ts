/**
 * Batch kernels: pure functions over structured-cloneable inputs, run either in this thread or on
 * a worker of the pool. Key objects are rebuilt once per worker and cached, so each worker keeps
 * its own fixed-base tables warm.
 */
import { BcpParams, PowerCache } from './bcp-params.js';
import { BcpPublicKey, BcpSecretKey } from './bcp-keys.js';
import { BcpMasterKey } from './bcp-master.js';
import { Ciphertext } from './ciphertext.js';
import { backend } from './backends.js';
import { bitLength, mod, randomBelow } from './bigint.js';
import { CrtPair } from './crt.js';
import { KmsEncryptor, KmsRerandomizer } from './kms-paillier.js';

export interface KeyWire {
  N: bigint;
  g: bigint;
  h: bigint;
}

export type Pair = [bigint, bigint];

export interface CombineItem {
  base: Pair;
  /** [A, B, signed exponent] */
  terms: Array<[bigint, bigint, bigint]>;
  t: bigint;
}

const cache = new Map<string, unknown>();
function cached<T>(key: string, make: () => T): T {
  let v = cache.get(key) as T | undefined;
  if (v === undefined) {
    v = make();
    cache.set(key, v);
  }
  return v;
}

function rerandomizer(N: bigint): KmsRerandomizer {
  return cached(`kms-re:${N}`, () => new KmsRerandomizer(N));
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
  /**
   * The compute server's blinding encryptions inside protocols: a BCP encryption whose B also gets a
   * fresh h_N^rho', so nothing the key server made (KMS-form randomness) comes back recognisable.
   */
  blindEncrypt(shared: KeyWire, items: bigint[]): Pair[] {
    const pk = publicKey(shared);
    const re = rerandomizer(pk.params.N);
    const N2 = pk.params.N2;
    return items.map((m) => {
      const c = pk.encrypt(m);
      return [c.A, backend().modMul(c.B, re.factor(), N2)];
    });
  },
  /** KMS-form encryptions by the key server (kms-paillier.ts): one group element each. */
  encryptKms(shared: { N: bigint; p: bigint; q: bigint }, items: bigint[]): bigint[] {
    const enc = cached(`kms-enc:${shared.N}`, () => new KmsEncryptor(shared.N, shared.p, shared.q));
    return items.map((m) => enc.encrypt(m));
  },
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
  decrypt(shared: KeyWire & { a: bigint }, items: Pair[]): bigint[] {
    const pk = publicKey(shared);
    const sk = cached(`sk:${pk.fingerprint}:${shared.a}`, () => new BcpSecretKey(pk, shared.a));
    return items.map(([A, B]) => sk.decryptResidue(new Ciphertext(pk, A, B)));
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
  /**
   * Encryption by the key server, which knows p and q: every exponentiation runs modulo p^2 and q^2
   * (half-length numbers, fixed-base tables per prime) and the halves are recombined by CRT. The
   * ciphertext is distributed exactly as pk.encrypt's (same r uniform in Z_N).
   */
  encryptCrt(shared: KeyWire & { p: bigint; q: bigint }, items: bigint[]): Pair[] {
    const pk = publicKey(shared);
    const c = cached(`crt-enc:${pk.fingerprint}`, () => new CrtEncryptor(pk.params.N, pk.params.g, pk.h, shared.p, shared.q));
    return items.map((m) => c.encrypt(m));
  },
  masterDecrypt(shared: KeyWire & { p: bigint; q: bigint }, items: Pair[]): bigint[] {
    const pk = publicKey(shared);
    const msk = cached(`msk:${pk.params.fingerprint}`, () => new BcpMasterKey(pk.params, shared.p, shared.q));
    return items.map(([A, B]) => msk.decryptResidue(new Ciphertext(pk, A, B)));
  },
} satisfies Record<string, (shared: never, items: never[]) => unknown[]>;

/** Enc under a public key of the system, by CRT over p^2 and q^2 (key server only). */
class CrtEncryptor {
  private readonly crt: CrtPair;
  private readonly halves: Array<{ m: bigint; g: PowerCache; h: PowerCache }>;
  constructor(
    private readonly N: bigint,
    g: bigint,
    h: bigint,
    p: bigint,
    q: bigint,
  ) {
    const bits = bitLength(N);
    this.crt = new CrtPair(p * p, q * q);
    this.halves = [p * p, q * q].map((m) => ({ m, g: new PowerCache(g % m, m, bits), h: new PowerCache(h % m, m, bits) }));
  }
  encrypt(msg: bigint): Pair {
    const r = randomBelow(this.N);
    const oneMN = 1n + mod(msg, this.N) * this.N;
    const be = backend();
    const [hp, hq] = this.halves.map(({ m, g, h }) => [g.pow(r), be.modMul(h.pow(r), oneMN % m, m)] as const);
    return [this.crt.combine(hp![0], hq![0]), this.crt.combine(hp![1], hq![1])];
  }
}

export type KernelName = keyof typeof kernels;

export function runKernel(name: KernelName, shared: unknown, items: unknown[]): unknown[] {
  const f = kernels[name] as (s: unknown, i: unknown[]) => unknown[];
  return f(shared, items);
}

export function keyWire(pk: BcpPublicKey): KeyWire {
  return { N: pk.params.N, g: pk.params.g, h: pk.h };
}
