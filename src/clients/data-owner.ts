/**
 * A data owner (DO): makes its own BCP key pair over the system's public parameters and an X25519
 * key for the AES layer, uploads tables encrypted under its own key and wrapped in AES-256-GCM
 * (seed 000's double encryption), and grants query clients access.
 */
import type { KeyObject } from 'node:crypto';
import {
  deserializeParams,
  keyGen,
  serializePublicKey,
  serializeSecretKey,
  deserializeSecretKey,
  generateAgreementKeyPair,
  deriveEnvelopeKey,
  seal,
  serializeCiphertexts,
  exportAgreementPrivateKey,
  importAgreementPrivateKey,
  keyWire,
  Ciphertext,
  FixedPointCodec,
  uploadContext,
  ciphertextTag,
  type BcpSecretKey,
  type Pair,
  type WorkerPool,
} from '../crypto/index.js';
import { ParameterError } from '../crypto/errors.js';
import { ComputeServerApi } from './api.js';
import type { NumericTable } from './csv.js';
import type { IdentityFile } from './identity.js';

interface Info {
  params: string;
  x25519PublicKey: string;
  keyBits: number;
}

export interface UploadOptions {
  /** Rows per uploaded chunk (default: as many as fit CHUNK_BYTES of ciphertexts). */
  chunkRows?: number;
  /** Worker threads for encryption. */
  pool?: WorkerPool;
  /** Total epsilon DP queries may spend on this dataset (default: none allowed). */
  epsilonBudget?: number;
}

/**
 * Serialised ciphertexts per uploaded chunk: far below the compute server's 64 MiB body limit once
 * base64 adds a third, and small enough that a wide table's chunk is not one huge request.
 */
export const CHUNK_BYTES = 8 * 1024 * 1024;

/** Rows per chunk for a table of `columns` values per row, each ciphertext two group elements. */
export function defaultChunkRows(columns: number, elementBytes: number): number {
  return Math.max(1, Math.min(2048, Math.floor(CHUNK_BYTES / (columns * 2 * elementBytes))));
}

export class DataOwner {
  private constructor(
    readonly id: string,
    private readonly api: ComputeServerApi,
    readonly sk: BcpSecretKey,
    private readonly x25519: KeyObject,
    private readonly serverX25519: string,
    private readonly token: string,
  ) {}

  static async register(serverUrl: string, name: string): Promise<DataOwner> {
    const api = new ComputeServerApi(serverUrl);
    const info = await api.request<Info>('GET', '/v1/info');
    const sk = keyGen(deserializeParams(Buffer.from(info.params, 'base64')));
    const x = generateAgreementKeyPair();
    const { id, token } = await api.request<{ id: string; token: string }>('POST', '/v1/register', {
      role: 'owner',
      name,
      bcpPublicKey: serializePublicKey(sk.publicKey).toString('base64'),
      x25519PublicKey: x.publicKey,
    });
    return new DataOwner(id, api.withToken(token), sk, x.privateKey, info.x25519PublicKey, token);
  }

  static async fromIdentity(f: IdentityFile): Promise<DataOwner> {
    if (f.role !== 'owner' || !f.x25519PrivateKey) {
      throw new ParameterError(
        `identity ${f.id} is a ${f.role === 'client' ? 'query client' : f.role}'s; data owner commands need a data owner's identity`,
      );
    }
    const api = new ComputeServerApi(f.server, f.token);
    const info = await api.request<Info>('GET', '/v1/info');
    const sk = deserializeSecretKey(Buffer.from(f.bcpSecretKey, 'base64'));
    return new DataOwner(f.id, api, sk, importAgreementPrivateKey(Buffer.from(f.x25519PrivateKey!, 'base64')), info.x25519PublicKey, f.token);
  }

  identity(): IdentityFile {
    return {
      role: 'owner',
      id: this.id,
      token: this.token,
      server: this.api.baseUrl,
      bcpSecretKey: serializeSecretKey(this.sk).toString('base64'),
      x25519PrivateKey: exportAgreementPrivateKey(this.x25519).toString('base64'),
    };
  }

  private async encrypt(values: bigint[], pool?: WorkerPool): Promise<Ciphertext[]> {
    const pk = this.sk.publicKey;
    if (!pool) return pk.encryptBatch(values);
    const pairs = await pool.map<Pair>('encrypt', keyWire(pk), values);
    return pairs.map(([A, B]) => new Ciphertext(pk, A, B));
  }

  /**
   * Uploads a table with a fixed-point encoding chosen from the data: `fractionBits` (default 16)
   * and a declared range `maxAbs` (default: the largest |value|, rounded up). Returns the dataset id.
   */
  uploadTable(name: string, table: NumericTable, opts: UploadOptions & { fractionBits?: number; maxAbs?: number } = {}): Promise<string> {
    let largest = 1;
    for (const row of table.rows) for (const x of row) largest = Math.max(largest, Math.abs(x));
    const codec = new FixedPointCodec({ fractionBits: opts.fractionBits ?? 16, maxAbs: opts.maxAbs ?? Math.ceil(largest) });
    return this.upload(name, table, codec, opts);
  }

  /** Encodes (range-checked first, so a bad value uploads nothing), encrypts, wraps, uploads. */
  async upload(name: string, table: NumericTable, codec: FixedPointCodec, opts: UploadOptions = {}): Promise<string> {
    const encoded = table.rows.map((r) => codec.encodeRow(r));
    const { id } = await this.api.request<{ id: string }>('POST', '/v1/datasets', {
      name,
      columns: table.columns,
      fractionBits: codec.fractionBits,
      maxAbs: codec.maxAbs,
      rows: encoded.length,
      epsilonBudget: opts.epsilonBudget,
    });
    const aesKey = deriveEnvelopeKey(this.x25519, this.serverX25519, { ownerId: this.id, datasetId: id });
    const tagKey = deriveEnvelopeKey(this.x25519, this.serverX25519, { ownerId: this.id, datasetId: id }, 'hmac-tag');
    const chunkRows = opts.chunkRows ?? defaultChunkRows(table.columns.length, this.sk.publicKey.params.elementBytes);
    for (let start = 0, idx = 0; start < encoded.length; start += chunkRows, idx++) {
      const rows = encoded.slice(start, start + chunkRows);
      const cts = await this.encrypt(rows.flat(), opts.pool);
      const context = uploadContext(id, idx, rows.length);
      const bytes = serializeCiphertexts(this.sk.publicKey, cts);
      const envelope = seal(aesKey, bytes, context);
      await this.api.request('PUT', `/v1/datasets/${id}/chunks/${idx}`, {
        rows: rows.length,
        envelope: envelope.toString('base64'),
        tag: ciphertextTag(tagKey, context, bytes),
      });
    }
    await this.api.request('POST', `/v1/datasets/${id}/complete`);
    return id;
  }

  async grant(datasetId: string, clientId: string): Promise<void> {
    await this.api.request('POST', `/v1/datasets/${datasetId}/grants`, { clientId });
  }
}
