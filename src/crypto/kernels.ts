/**
 * Batch kernels of the cryptosystem (encryption, decryption, KMS form): pure functions over
 * structured-cloneable inputs, run either in this thread or on a worker of the pool. Key objects are rebuilt once per worker and cached, so each worker keeps
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

const cache = new Map<string, unknown>();
/** A per-thread cache of objects rebuilt from wire form (keys, fixed-base tables). */
export function cached<T>(key: string, make: () => T): T {
  let v = cache.get(key) as T | undefined;
  if (v === undefined) {
    v = make();
    cache.set(key, v);
  }
  return v;
}

export function rerandomizer(N: bigint): KmsRerandomizer {
  return cached(`kms-re:${N}`, () => new KmsRerandomizer(N));
}

export function publicKey(w: KeyWire): BcpPublicKey {
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
  decrypt(shared: KeyWire & { a: bigint }, items: Pair[]): bigint[] {
    const pk = publicKey(shared);
    const sk = cached(`sk:${pk.fingerprint}:${shared.a}`, () => new BcpSecretKey(pk, shared.a));
    return items.map(([A, B]) => sk.decryptResidue(new Ciphertext(pk, A, B)));
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

/** A batch kernel: shared data and items in (structured-cloneable), one result per item out. */
export type Kernel = (shared: never, items: never[]) => unknown[];

/**
 * A module of kernels a worker pool can load: `url` is the module's own import.meta.url, and the
 * module exports the same table as `kernels`. Layers above crypto (protocols/kernels.ts) add their
 * kernels this way, so crypto never imports them.
 */
export interface KernelModule {
  url: string;
  kernels: Record<string, Kernel>;
}

export const cryptoKernels: KernelModule = { url: import.meta.url, kernels };

/** Runs a kernel of one of the modules on this thread. */
export function runKernel(modules: readonly KernelModule[], name: string, shared: unknown, items: unknown[]): unknown[] {
  for (const m of modules) {
    const f = m.kernels[name] as ((s: unknown, i: unknown[]) => unknown[]) | undefined;
    if (f) return f(shared, items);
  }
  throw new Error(`no kernel ${name} in ${modules.map((m) => m.url).join(', ')}`);
}

export function keyWire(pk: BcpPublicKey): KeyWire {
  return { N: pk.params.N, g: pk.params.g, h: pk.h };
}
