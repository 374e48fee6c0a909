/**
 * A data owner (DO): makes its own BCP key pair over the system's public parameters and an X25519
 * key for the AES layer, uploads tables encrypted under its own key and wrapped in AES-256-GCM
 * (seed 000's double encryption), and grants query clients access.
 */
import { randomBytes, type KeyObject } from 'node:crypto';
import { ringAt, SEED_BYTES } from '../mpc/prg.js';
import { packRing, ringSlots } from '../mpc/packed-conversion.js';
import { MLP_FRACTION_BITS } from '../analytics/mlp.js';
import { trainingTable, type TrainingTable, type TrainingTableOptions } from './training-table.js';
import { idHashes } from '../crypto/id-hash.js';
import { decryptJointModel, type ModelFile } from './model-decryption.js';
import type { TrainingInfo } from '../services/store/store.js';
import type { GrantScope } from '../services/store/store.js';
import { checkNewParams, checkPinned, pinCertificate } from './pins.js';
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
import { ownerSlotBits } from '../protocols/owner-packs.js';
import { packValues } from '../protocols/packing.js';
import { basename } from 'node:path';
import { ComputeServerApi, isTransient } from './api.js';
import { csvRowBatches, scanCsvFile } from './csv-file.js';
import type { NumericTable } from './csv.js';
import type { IdentityFile } from './identity.js';
import type { DatasetRow } from '../services/store/store.js';

interface Info {
  params: string;
  x25519PublicKey: string;
  keyBits: number;
}

export interface UploadProgress {
  /** Rows stored at the compute server so far (including chunks an earlier attempt stored). */
  rowsSent: number;
  rows: number;
}

export interface UploadOptions {
  /** Rows per uploaded chunk (default: as many as fit CHUNK_BYTES of ciphertexts). */
  chunkRows?: number;
  /** Worker threads for encryption. */
  pool?: WorkerPool;
  /**
   * Pack several values into each ciphertext (default true; protocols/owner-packs.ts): about 30 times
   * fewer encryptions and bytes at 2048 bits for a range of 2^20. False sends one value per ciphertext.
   */
  pack?: boolean;
  /** Total epsilon DP queries may spend on this dataset (default: none allowed). */
  epsilonBudget?: number;
  /** k-means releases refuse clusters with fewer members (default 5). */
  minClusterSize?: number;
  /** The largest delta one Gaussian DP query may spend (default 1e-6; 0 allows none). */
  maxDelta?: number;
  /** The total delta all Gaussian DP queries may spend (default 1e-5). */
  deltaBudget?: number;
  /** Called after each chunk is stored. */
  onProgress?: (p: UploadProgress) => void;
  /** Attempts per chunk while the compute server is unreachable or restarting (default 6, about a minute). */
  attempts?: number;
}

export interface CsvUploadOptions extends UploadOptions {
  /** Dataset name (default: the file's base name). */
  name?: string;
  ignoreColumns?: readonly string[];
  fractionBits?: number;
  maxAbs?: number;
}

/** What an owner sees of its dataset: the stored metadata, the chunks uploaded, the grants. */
export type OwnedDataset = DatasetRow & {
  chunks?: Array<{ idx: number; rows: number }>;
  grantees?: string[];
};

export interface UploadOutcome {
  dataset: string;
  rows: number;
  columns: string[];
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

/** Batches of exactly `size` rows (the last may be shorter) from an in-memory table. */
async function* tableBatches(rows: readonly number[][], size: number): AsyncGenerator<number[][]> {
  for (let i = 0; i < rows.length; i += size) yield rows.slice(i, i + size);
}

function largestAbs(rows: readonly number[][]): number {
  let largest = 0;
  for (const row of rows) for (const x of row) largest = Math.max(largest, Math.abs(x));
  return largest;
}

/** The declared range: the caller's, refused if the data exceeds it, or the data's rounded up. */
function chooseCodec(fractionBits: number | undefined, maxAbs: number | undefined, largest: number, where: string): FixedPointCodec {
  if (maxAbs !== undefined && largest > maxAbs) {
    throw new ParameterError(`${where} holds a value of magnitude ${largest}, beyond the declared --max-abs ${maxAbs}`);
  }
  return new FixedPointCodec({ fractionBits: fractionBits ?? 16, maxAbs: maxAbs ?? Math.max(1, Math.ceil(largest)) });
}

/** Per feature, the power of two at or above its largest |value| (at least 1): coarse, so it says little. */
function featureBounds(rows: readonly number[][], features: number): number[] {
  const largest = new Array<number>(features).fill(0);
  for (const r of rows) for (let j = 0; j < features; j++) largest[j] = Math.max(largest[j]!, Math.abs(r[j]!));
  return largest.map((v) => 2 ** Math.max(0, Math.ceil(Math.log2(Math.max(1, v)))));
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The plaintexts of a batch of rows, given the index of its first row in the table. */
type RowEncoder = (rows: number[][], firstRow: number) => bigint[];

const byCodec =
  (codec: FixedPointCodec): RowEncoder =>
  (rows) =>
    rows.flatMap((r) => codec.encodeRow(r));

/** The owner's packs of a chunk's encoded values (row-major), or the values themselves when slotBits is null. */
const packedByCodec =
  (codec: FixedPointCodec, N: bigint, slotBits: number | null): RowEncoder =>
  (rows, first) =>
    slotBits === null ? byCodec(codec)(rows, first) : packValues(byCodec(codec)(rows, first), N, slotBits);

export type TrainingUploadOptions = UploadOptions &
  Omit<TrainingTableOptions, 'label'> & {
    /** The label column; a part of a vertical table without the labels has none. */
    label?: string;
    /**
     * A part of a vertically partitioned table: each row's id (in row order) and the 32-byte key
     * the owners of the parts share; the servers see only keyed hashes of the ids.
     */
    ids?: { values: readonly string[]; key: Uint8Array };
  };

export class DataOwner {
  private constructor(
    readonly id: string,
    private readonly api: ComputeServerApi,
    readonly sk: BcpSecretKey,
    private readonly x25519: KeyObject,
    private readonly serverX25519: string,
    private readonly token: string,
  ) {}

  static async register(serverUrl: string, name: string, opts: { expectParams?: string; expectCert?: string } = {}): Promise<DataOwner> {
    const api = new ComputeServerApi(serverUrl, undefined, { tls: await pinCertificate(serverUrl, opts.expectCert) });
    const info = await api.request<Info>('GET', '/v1/info');
    const sk = keyGen(checkNewParams(deserializeParams(Buffer.from(info.params, 'base64')), serverUrl, opts.expectParams));
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
    const api = new ComputeServerApi(f.server, f.token, { tls: f.pins?.tls });
    const info = await api.request<Info>('GET', '/v1/info');
    const sk = deserializeSecretKey(Buffer.from(f.bcpSecretKey, 'base64'));
    checkPinned('X25519 key', f.server, info.x25519PublicKey, f.pins?.x25519);
    checkPinned('public parameters', f.server, deserializeParams(Buffer.from(info.params, 'base64')).fingerprint, f.pins?.params);
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
      pins: { params: this.sk.publicKey.params.fingerprint, x25519: this.serverX25519, tls: this.api.pins.tls },
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
    // A loop, not Math.max(...cells): a spread over millions of cells overflows the stack.
    return this.upload(name, table, chooseCodec(opts.fractionBits, opts.maxAbs, largestAbs(table.rows), `table ${name}`), opts);
  }

  /** Encodes (range-checked first, so a bad value uploads nothing), encrypts, wraps, uploads. */
  async upload(name: string, table: NumericTable, codec: FixedPointCodec, opts: UploadOptions = {}): Promise<string> {
    for (const r of table.rows) codec.encodeRow(r);
    const id = await this.createDataset(name, table.columns, table.rows.length, codec, opts);
    const chunkRows = opts.chunkRows ?? defaultChunkRows(table.columns.length, this.sk.publicKey.params.elementBytes);
    await this.sendChunks(id, this.valueEncoder(codec, opts), tableBatches(table.rows, chunkRows), table.rows.length, new Map(), opts);
    return id;
  }

  /**
   * Uploads a CSV file of any size: one streaming pass validates it and finds the declared range,
   * a second encrypts and sends it chunk by chunk (memory bounded by a few chunks). Nothing is
   * created at the server unless the whole file parses.
   */
  async uploadCsvFile(path: string, opts: CsvUploadOptions = {}): Promise<UploadOutcome> {
    const ignore = opts.ignoreColumns ?? [];
    const summary = await scanCsvFile(path, ignore);
    const codec = chooseCodec(opts.fractionBits, opts.maxAbs, summary.largestAbs, path);
    const name = opts.name ?? basename(path);
    const id = await this.createDataset(name, summary.columns, summary.rows, codec, opts);
    const chunkRows = opts.chunkRows ?? defaultChunkRows(summary.columns.length, this.sk.publicKey.params.elementBytes);
    await this.sendChunks(id, this.valueEncoder(codec, opts), csvRowBatches(path, ignore, chunkRows), summary.rows, new Map(), opts);
    return { dataset: id, rows: summary.rows, columns: summary.columns };
  }

  /**
   * Finishes an interrupted upload of the same file: chunks the server already stored are skipped,
   * the rest are sent. The file must have the columns and row count the dataset declared.
   */
  async resumeCsvFile(datasetId: string, path: string, opts: CsvUploadOptions = {}): Promise<UploadOutcome> {
    const d = await this.dataset(datasetId);
    if (d.state === 'ready') throw new ParameterError(`dataset ${datasetId} is already complete`);
    const summary = await scanCsvFile(path, opts.ignoreColumns ?? []);
    if (summary.columns.join(',') !== d.columns.join(',') || summary.rows !== d.rows) {
      throw new ParameterError(
        `${path} has ${summary.rows} rows of columns ${summary.columns.join(',')}; dataset ${datasetId} declared ${d.rows} rows of ${d.columns.join(',')}`,
      );
    }
    const codec = chooseCodec(d.fractionBits, d.maxAbs, summary.largestAbs, path);
    const chunkRows = opts.chunkRows ?? defaultChunkRows(d.columns.length, this.sk.publicKey.params.elementBytes);
    const stored = new Map((d.chunks ?? []).map((c) => [c.idx, c.rows] as const));
    for (const [idx, rows] of stored) {
      if (rows !== Math.min(chunkRows, d.rows - idx * chunkRows)) {
        throw new ParameterError(`dataset ${datasetId} was cut into chunks of another size; resume with the --chunk-rows of the first attempt`);
      }
    }
    const encode = packedByCodec(codec, this.sk.publicKey.params.N, d.packSlotBits ?? null);
    await this.sendChunks(datasetId, encode, csvRowBatches(path, opts.ignoreColumns ?? [], chunkRows), d.rows, stored, opts);
    return { dataset: datasetId, rows: d.rows, columns: d.columns };
  }

  /**
   * Uploads a labelled table for training (seed 002): features and targets (one-hot classes, or
   * the regression value) in fixed point with 16 fraction bits, each value m split into R from a
   * fresh PRG seed and m - R. The compute server receives Enc_pk(m - R) (AES-wrapped as every
   * upload); the seed goes as one BCP ciphertext under this owner's key, which only the key
   * server's master key opens: neither server alone holds both shares.
   */
  async uploadForTraining(name: string, table: NumericTable, opts: TrainingUploadOptions): Promise<string> {
    const { label, ids } = opts;
    if (ids && ids.values.length !== table.rows.length) throw new ParameterError(`${ids.values.length} ids for ${table.rows.length} rows`);
    const hashes = ids ? idHashes(ids.key, ids.values).toString('base64') : undefined;
    if (label === undefined) {
      if (!ids) throw new ParameterError('a training upload names its label column (or is a part of a vertical table, with ids)');
      const info = { task: 'classification' as const, labelColumn: '', classes: null, targets: 0 };
      return this.uploadShared(name, { columns: table.columns, rows: table.rows, info }, opts, hashes);
    }
    return this.uploadShared(name, trainingTable(table, { ...opts, label }), opts, hashes);
  }

  /**
   * Uploads features without a label, secret-shared exactly as for training, for `predict` jobs
   * (a query client's predictions on them, granted with scope `predict`).
   */
  async uploadForPrediction(name: string, table: NumericTable, opts: UploadOptions = {}): Promise<string> {
    if (table.columns.length < 1 || table.rows.length < 1) throw new ParameterError('a prediction upload needs at least one column and one row');
    const info = { task: 'classification' as const, labelColumn: '', classes: null, targets: 0 };
    return this.uploadShared(name, { columns: table.columns, rows: table.rows, info }, opts);
  }

  private async uploadShared(name: string, prepared: TrainingTable, opts: UploadOptions, ids?: string): Promise<string> {
    const seed = randomBytes(SEED_BYTES);
    const seedCt = this.sk.publicKey.encrypt(BigInt('0x' + seed.toString('hex')));
    const codec = new FixedPointCodec({ fractionBits: MLP_FRACTION_BITS, maxAbs: Math.max(1, largestAbs(prepared.rows)) });
    const cols = prepared.columns.length;
    const slots = ringSlots(this.sk.publicKey.params.N);
    const id = await this.createDataset(name, prepared.columns, prepared.rows.length, codec, {
      ...opts,
      training: {
        ...prepared.info,
        seed: serializeCiphertexts(this.sk.publicKey, [seedCt]).toString('base64'),
        slots,
        featureBounds: featureBounds(prepared.rows, prepared.columns.length - prepared.info.targets),
        ids,
      },
    });
    const chunkRows = opts.chunkRows ?? slots * defaultChunkRows(cols, this.sk.publicKey.params.elementBytes);
    const share: RowEncoder = (rows, first) => {
      const m = rows.flatMap((r) => codec.encodeRow(r));
      const R = ringAt(seed, first * cols, m.length);
      return packRing(
        m.map((v, i) => BigInt.asUintN(64, v - R[i]!)),
        slots,
      );
    };
    await this.sendChunks(id, share, tableBatches(prepared.rows, chunkRows), prepared.rows.length, new Map(), opts);
    return id;
  }

  /** How this upload encodes a chunk: owner packs unless `pack: false`. */
  private valueEncoder(codec: FixedPointCodec, opts: UploadOptions): RowEncoder {
    const slotBits = opts.pack === false ? null : ownerSlotBits(codec.maxEncoded);
    return packedByCodec(codec, this.sk.publicKey.params.N, slotBits);
  }

  private async createDataset(
    name: string,
    columns: string[],
    rows: number,
    codec: FixedPointCodec,
    opts: UploadOptions & { training?: TrainingInfo },
  ): Promise<string> {
    const { id } = await this.api.request<{ id: string }>('POST', '/v1/datasets', {
      name,
      columns,
      fractionBits: codec.fractionBits,
      maxAbs: codec.maxAbs,
      rows,
      epsilonBudget: opts.epsilonBudget,
      minClusterSize: opts.minClusterSize,
      maxDelta: opts.maxDelta,
      deltaBudget: opts.deltaBudget,
      training: opts.training,
      packed: !opts.training && opts.pack !== false ? true : undefined,
    });
    return id;
  }

  /**
   * Encrypts and sends each batch as one chunk, skipping those already stored, then completes the
   * dataset. The next chunk is encrypted while the previous one travels.
   */
  private async sendChunks(
    id: string,
    encode: RowEncoder,
    batches: AsyncIterable<number[][]>,
    rows: number,
    stored: ReadonlyMap<number, number>,
    opts: UploadOptions,
  ): Promise<void> {
    const aesKey = deriveEnvelopeKey(this.x25519, this.serverX25519, { ownerId: this.id, datasetId: id });
    const tagKey = deriveEnvelopeKey(this.x25519, this.serverX25519, { ownerId: this.id, datasetId: id }, 'hmac-tag');
    let rowsSent = 0;
    let sending: Promise<void> = Promise.resolve();
    let idx = 0;
    let firstRow = 0;
    for await (const batch of batches) {
      const i = idx++;
      const first = firstRow;
      firstRow += batch.length;
      if (stored.get(i) === batch.length) {
        rowsSent += batch.length;
        continue;
      }
      const cts = await this.encrypt(encode(batch, first), opts.pool);
      const context = uploadContext(id, i, batch.length);
      const bytes = serializeCiphertexts(this.sk.publicKey, cts);
      const body = { rows: batch.length, envelope: seal(aesKey, bytes, context).toString('base64'), tag: ciphertextTag(tagKey, context, bytes) };
      await sending;
      sending = this.withRetry(() => this.api.request('PUT', `/v1/datasets/${id}/chunks/${i}`, body), opts.attempts).then(() => {
        rowsSent += batch.length;
        opts.onProgress?.({ rowsSent, rows });
      });
      sending.catch(() => undefined); // awaited at the next chunk; meanwhile not an unhandled rejection
    }
    await sending;
    await this.withRetry(() => this.api.request('POST', `/v1/datasets/${id}/complete`), opts.attempts);
  }

  /** Retries while the compute server is unreachable or restarting; a refusal is final. */
  private async withRetry<T>(send: () => Promise<T>, attempts = 6): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await send();
      } catch (e) {
        if (!isTransient(e) || attempt >= attempts) throw e;
        await sleep(Math.min(16_000, 500 * 2 ** attempt));
      }
    }
  }

  /**
   * Takes part in the joint decryption of a model trained on this owner's data (a `train` job):
   * posts this owner's partial decryption for the others, waits up to `waitMs` for theirs, and
   * returns the model. Every owner of the model must run it.
   */
  decryptModel(job: string, waitMs = 0): Promise<ModelFile> {
    return decryptJointModel({ api: this.api, id: this.id, sk: this.sk, x25519: this.x25519 }, job, waitMs);
  }

  /** This owner's datasets. */
  async datasets(): Promise<OwnedDataset[]> {
    return (await this.api.request<{ datasets: OwnedDataset[] }>('GET', '/v1/datasets')).datasets;
  }

  /** One dataset with its stored chunks and grants. */
  dataset(id: string): Promise<OwnedDataset> {
    return this.api.request<OwnedDataset>('GET', `/v1/datasets/${encodeURIComponent(id)}`);
  }

  /** Withdraws a grant: the client's later jobs may not use the dataset (running ones finish). */
  async revoke(datasetId: string, clientId: string): Promise<void> {
    await this.api.request('DELETE', `/v1/datasets/${encodeURIComponent(datasetId)}/grants/${encodeURIComponent(clientId)}`);
  }

  /** Deletes a dataset (complete or not) with its chunks and grants; refused while a job reads it. */
  async deleteDataset(datasetId: string): Promise<void> {
    await this.api.request('DELETE', `/v1/datasets/${encodeURIComponent(datasetId)}`);
  }

  /**
   * Lets a query client run the listed kinds of job on a dataset (default: k-means and DP
   * statistics); granting again replaces the scopes.
   */
  async grant(datasetId: string, clientId: string, scopes: readonly GrantScope[] = ['kmeans', 'stats']): Promise<void> {
    await this.api.request('POST', `/v1/datasets/${datasetId}/grants`, { clientId, scopes });
  }
}
