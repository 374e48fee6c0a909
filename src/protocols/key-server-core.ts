/**
 * The key server's (KMS, Bob) request handler: holds the master key, the registry of public keys
 * it will answer for, and dispatches protocol steps. It keeps no state per call, refuses unknown
 * keys and methods, and a bad request never takes it down: every failure is a typed error that the
 * transport turns into a 4xx answer.
 */
import { processStats } from './process-stats.js';
import type { BcpMasterKey } from '../crypto/bcp-master.js';
import { keyGen, type BcpPublicKey, type BcpSecretKey } from '../crypto/bcp-keys.js';
import { keyWire, type KernelName, type Pair } from '../crypto/kernels.js';
import { runProtocolKernel } from './kernels.js';
import type { WorkerPool } from '../crypto/pool.js';
import { deserializePublicKey, serializeParams, serializePublicKey } from '../crypto/serialize.js';
import { CiphermineError } from '../crypto/errors.js';
import type { KeyServerState } from './key-server-state.js';
import type { RequestHandler } from './transport.js';
import { sctKeyServer, sctPackedKeyServer } from './sct.js';
import { sctFanoutKeyServer } from './sct-fanout.js';
import { mulKeyServer, squareKeyServer } from './sm.js';
import { signKeyServer } from './sdc.js';
import { squareSumKeyServer } from './sdm.js';
import { lessThanKeyServer } from './secure-less-than.js';
import { noiseShareKeyServer } from './noise-share.js';
import { dropShareKeyServer, innerKeyServer, shareKeyServer } from './inner-distances.js';
import { ShareStore, type ShareBacking } from './share-store.js';
import { keyedUniform } from '../crypto/noise/keyed-uniform.js';
import { openEnvelope, seal } from '../crypto/envelope.js';
import { hkdfSync } from 'node:crypto';
import type { Uniform } from '../crypto/noise/samplers.js';

export class UnknownKeyError extends CiphermineError {
  constructor(fp: string) {
    super('ERR_UNKNOWN_KEY', `no public key ${fp} is registered with the key server`);
  }
}

/**
 * Where the key server keeps what must survive a restart (key files), or what its replicas must
 * share (their database): a request that made a key is answered after the key is saved.
 */
export interface KeyServerPersistence {
  savePublicKey(pk: BcpPublicKey): void | Promise<void>;
  saveJobKey(sk: BcpSecretKey): void | Promise<void>;
}

/** Test instrumentation: sees every plaintext the key server decrypts. */
export type DecryptionObserver = (protocol: string, values: readonly bigint[]) => void;

/** Peak memory and CPU time of this process, worker threads included (for the benchmarks). */
export class KeyServerCore implements KeyServerState {
  private readonly keys = new Map<string, BcpPublicKey>();
  /** Job keys (pk_c, sk_c): made here so sk_c never leaves the key server (docs/corrections.md (3.1)). */
  private readonly jobKeys = new Map<string, BcpSecretKey>();
  observer: DecryptionObserver | undefined;
  readonly shares: ShareStore;

  constructor(
    readonly msk: BcpMasterKey,
    private readonly pool?: WorkerPool,
    private readonly persistence?: KeyServerPersistence,
    /** Shares kept for other replicas too (absent: in this process only). */
    shareBacking?: ShareBacking,
  ) {
    this.shares = new ShareStore(shareBacking);
  }

  register(pk: BcpPublicKey): void {
    if (!pk.params.equals(this.msk.params)) throw new CiphermineError('ERR_KEY_MISMATCH', 'public key uses other parameters');
    if (this.keys.has(pk.fingerprint)) return;
    this.track(pk.fingerprint, this.persistence?.savePublicKey(pk));
    this.keys.set(pk.fingerprint, pk);
  }

  /** Saves still under way (a database), by key: a request that made a key is answered after. */
  private readonly saving = new Map<string, Promise<void>>();

  private track(fp: string, p: void | Promise<void>): void {
    if (!p) return;
    const both = Promise.all([this.saving.get(fp), p]).then(() => undefined);
    this.saving.set(fp, both);
    // Kept while it fails, so saved() reports the failure; forgotten once it succeeded.
    both.then(() => this.saving.get(fp) === both && this.saving.delete(fp)).catch(() => undefined);
  }

  /**
   * Waits for the key's save; a save that failed (the database away) forgets the key again, so the
   * caller's retry saves it rather than being told it is saved.
   */
  private async saved(pk: BcpPublicKey): Promise<BcpPublicKey> {
    try {
      await this.saving.get(pk.fingerprint);
    } catch (e) {
      this.keys.delete(pk.fingerprint);
      this.jobKeys.delete(pk.fingerprint);
      throw e;
    }
    return pk;
  }

  /** Whether the key is registered here (or made here). */
  knows(fingerprint: string): boolean {
    return this.keys.has(fingerprint);
  }

  /** Whether this key server made the key as a job key. */
  isJobKey(fingerprint: string): boolean {
    return this.jobKeys.has(fingerprint);
  }

  /** Reloads keys saved by an earlier run. */
  restore(publicKeys: readonly BcpPublicKey[], jobKeys: readonly BcpSecretKey[]): void {
    for (const pk of publicKeys) this.keys.set(pk.fingerprint, pk);
    for (const sk of jobKeys) {
      this.jobKeys.set(sk.publicKey.fingerprint, sk);
      this.keys.set(sk.publicKey.fingerprint, sk.publicKey);
    }
  }

  createJobKey(): BcpPublicKey {
    const sk = keyGen(this.msk.params);
    this.track(sk.publicKey.fingerprint, this.persistence?.saveJobKey(sk));
    this.jobKeys.set(sk.publicKey.fingerprint, sk);
    this.register(sk.publicKey);
    return sk.publicKey;
  }

  key(fp: string): BcpPublicKey {
    const pk = this.keys.get(fp);
    if (!pk) throw new UnknownKeyError(fp);
    return pk;
  }

  async open(protocol: string, pk: BcpPublicKey, pairs: Pair[]): Promise<bigint[]> {
    const shared = { ...keyWire(pk), p: this.msk.p, q: this.msk.q };
    const values = await this.batch<bigint>('masterDecrypt', shared, pairs);
    this.observer?.(protocol, values);
    return values;
  }

  /** A batch kernel on the worker pool when there is one, else here. */
  private async batch<O>(name: KernelName, shared: unknown, items: unknown[]): Promise<O[]> {
    return this.pool ? this.pool.map<O>(name, shared, items) : (runProtocolKernel(name, shared, items) as O[]);
  }

  observe(protocol: string, values: readonly bigint[]): void {
    this.observer?.(protocol, values);
  }

  /** Fresh encryptions by CRT: the key server knows p and q, so it works modulo p^2 and q^2. */
  async seal(pk: BcpPublicKey, values: bigint[]): Promise<Pair[]> {
    const shared = { ...keyWire(pk), p: this.msk.p, q: this.msk.q };
    return this.batch<Pair>('encryptCrt', shared, values);
  }

  /**
   * KMS form only for job keys: their secret never leaves the key server and everything under
   * them is opened with the master key; a client's key must get real BCP ciphertexts.
   */
  requireJobKey(pk: BcpPublicKey): void {
    if (!this.jobKeys.has(pk.fingerprint)) {
      throw new CiphermineError(
        'ERR_NOT_JOB_KEY',
        'only a job key may be used here (KMS form, shares, the source of a plain SCT, the target of a bounded SCT)',
      );
    }
  }

  jobUniform(pk: BcpPublicKey, label: string): Uniform {
    this.requireJobKey(pk);
    return keyedUniform(this.jobKeys.get(pk.fingerprint)!.a, label);
  }

  sealForSelf(context: string, data: Uint8Array): Buffer {
    return seal(this.selfKey(), data, `ciphermine self-sealed\0${context}`);
  }

  unsealForSelf(context: string, sealed: Uint8Array): Buffer {
    return openEnvelope(this.selfKey(), sealed, `ciphermine self-sealed\0${context}`);
  }

  /** HKDF of the master secret: replicas loading the same key file derive the same key. */
  private selfKey(): Buffer {
    const secret = Buffer.from(`${this.msk.p.toString(16)}:${this.msk.q.toString(16)}`);
    return Buffer.from(hkdfSync('sha256', secret, 'ciphermine key server', 'self-sealed state', 32));
  }

  async sealKms(pk: BcpPublicKey, values: bigint[]): Promise<Pair[]> {
    this.requireJobKey(pk);
    const shared = { N: pk.params.N, p: this.msk.p, q: this.msk.q };
    const cs = await this.batch<bigint>('encryptKms', shared, values);
    return cs.map((c) => [1n, c]);
  }

  readonly handle: RequestHandler = async (method, body) => {
    switch (method) {
      case 'sct':
        return sctKeyServer(this, body);
      case 'sct-packed':
        return sctPackedKeyServer(this, body);
      case 'sct-fanout':
        return sctFanoutKeyServer(this, body);
      case 'mul':
        return mulKeyServer(this, body);
      case 'square':
        return squareKeyServer(this, body);
      case 'sign':
        return signKeyServer(this, body);
      case 'share':
        return shareKeyServer(this, body);
      case 'inner':
        return innerKeyServer(this, body);
      case 'share-drop':
        return dropShareKeyServer(this, body);
      case 'square-sum':
        return squareSumKeyServer(this, body);
      case 'lt':
        return lessThanKeyServer(this, body);
      case 'noise-share':
        return noiseShareKeyServer(this, body);
      case 'register-key': {
        const pk = deserializePublicKey(body, this.msk.params);
        this.register(pk);
        await this.saved(pk);
        return Buffer.alloc(0);
      }
      case 'job-key':
        return serializePublicKey(await this.saved(this.createJobKey()));
      case 'params':
        return serializeParams(this.msk.params);
      case 'stats':
        return Buffer.from(JSON.stringify(processStats()));
      default:
        throw new CiphermineError('ERR_UNKNOWN_METHOD', `unknown method ${method}`);
    }
  };
}
