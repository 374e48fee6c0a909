/**
 * Bad input and unauthorised callers at the compute server: a clear error each time, nothing
 * stored or changed, and the servers keep serving.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { FixedPointCodec, seal, deriveEnvelopeKey, EncodingError } from '../../src/crypto/index.js';
import { parseNumericCsv, CsvError } from '../../src/clients/csv.js';
import { DataOwner, defaultChunkRows } from '../../src/clients/data-owner.js';
import { QueryClient } from '../../src/clients/query-client.js';
import { ApiError, ComputeServerApi } from '../../src/clients/api.js';
import { startServices, countRows, type Services } from './services-harness.js';

const codec = new FixedPointCodec({ fractionBits: 8, maxAbs: 100 });
const table = {
  columns: ['a', 'b'],
  rows: [
    [1, 2],
    [3, 4],
    [5, 6],
    [-7, 8],
  ],
};

function rejectsWith(p: Promise<unknown>, status: number, pattern?: RegExp) {
  return assert.rejects(p, (e: unknown) => e instanceof ApiError && e.status === status && (!pattern || pattern.test(e.message)));
}

describe('upload chunk size', () => {
  it('a wide table at 2048 bits goes up in chunks well under the 64 MiB body limit', () => {
    const elementBytes = 512; // N^2 of 4096 bits
    for (const columns of [1, 4, 30, 64, 1000]) {
      const rows = defaultChunkRows(columns, elementBytes);
      const base64 = (rows * columns * 2 * elementBytes * 4) / 3;
      assert.ok(rows >= 1 && base64 < 16 * 1024 * 1024, `${columns} columns: ${rows} rows, ${base64} bytes`);
    }
    assert.equal(defaultChunkRows(4, 512), 2048, 'narrow tables keep large chunks');
  });
});

describe('CSV input', () => {
  it('parses a header and numeric rows, honouring --ignore-columns and quotes', () => {
    const t = parseNumericCsv('a,"b",label\n1,2.5,x\n-3,"4",y\n\n', ['label']);
    assert.deepEqual(t, {
      columns: ['a', 'b'],
      rows: [
        [1, 2.5],
        [-3, 4],
      ],
    });
  });
  for (const [name, text, ignore] of [
    ['empty file', '', []],
    ['header only', 'a,b\n', []],
    ['non-numeric cell', 'a,b\n1,x\n', []],
    ['NaN', 'a,b\n1,NaN\n', []],
    ['hexadecimal cell', 'a,b\n1,0x10\n', []],
    ['binary cell', 'a,b\n1,0b1\n', []],
    ['blank cell', 'a,b\n1, \n', []],
    ['Infinity', 'a,b\n1,Infinity\n', []],
    ['empty cell', 'a,b\n1,\n', []],
    ['ragged row', 'a,b\n1,2\n3\n', []],
    ['too many cells', 'a,b\n1,2,3\n', []],
    ['unterminated quote', 'a,b\n"1,2\n', []],
    ['duplicate column', 'a,a\n1,2\n', []],
    ['unknown ignored column', 'a,b\n1,2\n', ['c']],
  ] as Array<[string, string, string[]]>) {
    it(`refuses: ${name}`, () => assert.throws(() => parseNumericCsv(text, ignore), CsvError));
  }
  it('refuses values outside the declared range before anything is uploaded', () => {
    assert.throws(() => codec.encodeRow([1, 1000]), EncodingError);
  });
});

describe('compute server refuses bad and unauthorised requests, and keeps serving', () => {
  let s: Services;
  let owner: DataOwner;
  let other: DataOwner;
  let client: QueryClient;
  let stranger: QueryClient;
  let dataset: string;
  before(async () => {
    s = await startServices();
    owner = await DataOwner.register(s.cs.url, 'owner');
    other = await DataOwner.register(s.cs.url, 'other owner');
    client = await QueryClient.register(s.cs.url, 'granted');
    stranger = await QueryClient.register(s.cs.url, 'not granted');
    dataset = await owner.upload('mine', table, codec, { minClusterSize: 1 }); // four rows: clusters of one or two
    await owner.grant(dataset, client.id);
  });
  after(() => s.close());

  const api = () => new ComputeServerApi(s.cs.url);
  const rowCount = () => countRows(s.cs.store, 'chunks');
  const jobCount = () => countRows(s.cs.store, 'jobs');

  it('requests without or with a wrong token get 401', async () => {
    await rejectsWith(api().request('POST', '/v1/datasets', { name: 'x', columns: ['a'], fractionBits: 8, maxAbs: 1, rows: 1 }), 401);
    await rejectsWith(api().withToken('x'.repeat(43)).request('GET', '/v1/datasets'), 401);
  });

  it('an unauthorised query client gets 403 and no job is created', async () => {
    const before = await jobCount();
    await rejectsWith(stranger.submitKMeans({ datasets: [dataset], k: 2 }), 403, /not granted/);
    assert.equal(await jobCount(), before);
  });

  it("a query client cannot upload, and an owner cannot touch another owner's dataset", async () => {
    await rejectsWith(
      api()
        .withToken(client.identity().token)
        .request('POST', '/v1/datasets', { name: 'x', columns: ['a'], fractionBits: 8, maxAbs: 1, rows: 1 }),
      403,
    );
    await rejectsWith(other.grant(dataset, stranger.id), 403);
    await rejectsWith(api().withToken(other.identity().token).request('POST', `/v1/datasets/${dataset}/complete`), 403);
  });

  it('a tampered upload is refused and nothing is stored', async () => {
    const before = await rowCount();
    const token = owner.identity().token;
    const { id } = await api()
      .withToken(token)
      .request<{ id: string }>('POST', '/v1/datasets', { name: 't', columns: ['a', 'b'], fractionBits: 8, maxAbs: 100, rows: 1 });
    const info = await api().request<{ x25519PublicKey: string }>('GET', '/v1/info');
    const { importAgreementPrivateKey } = await import('../../src/crypto/index.js');
    const key = deriveEnvelopeKey(importAgreementPrivateKey(Buffer.from(owner.identity().x25519PrivateKey!, 'base64')), info.x25519PublicKey, {
      ownerId: owner.id,
      datasetId: id,
    });
    const env = seal(key, Buffer.from('whatever'), 'ciphermine/upload/v1;dataset=' + id + ';chunk=0;rows=1');
    env[env.length - 1]! ^= 1;
    await rejectsWith(
      api()
        .withToken(token)
        .request('PUT', `/v1/datasets/${id}/chunks/0`, { rows: 1, envelope: env.toString('base64'), tag: 'ab'.repeat(32) }),
      400,
      /authentication/,
    );
    // An intact envelope of garbage is refused as well (not a ciphertext batch).
    const garbage = seal(key, Buffer.from('whatever'), 'ciphermine/upload/v1;dataset=' + id + ';chunk=0;rows=1');
    await rejectsWith(
      api()
        .withToken(token)
        .request('PUT', `/v1/datasets/${id}/chunks/0`, { rows: 1, envelope: garbage.toString('base64'), tag: 'ab'.repeat(32) }),
      400,
    );
    await rejectsWith(api().withToken(token).request('POST', `/v1/datasets/${id}/complete`), 409);
    assert.equal(await rowCount(), before);
  });

  it('malformed bodies get 400', async () => {
    const token = owner.identity().token;
    await rejectsWith(api().withToken(token).request('POST', '/v1/datasets', { name: '', columns: [], fractionBits: 99, maxAbs: -1, rows: 0 }), 400);
    await rejectsWith(api().request('POST', '/v1/register', { role: 'owner', name: 'x', bcpPublicKey: 'AAAA' }), 400);
    await rejectsWith(api().request('POST', '/v1/register', { role: 'admin', name: 'x', bcpPublicKey: 'AAAA' }), 400);
  });

  it('k larger than the record count, bad initial indices and a dimension mismatch get 400', async () => {
    const before = await jobCount();
    // The refusal does not state the record count (a query client must not learn n exactly).
    await rejectsWith(client.submitKMeans({ datasets: [dataset], k: 5 }), 400, /larger than the number of records$/);
    await rejectsWith(client.submitKMeans({ datasets: [dataset], k: 2, initIndices: [0, 0] }), 400, /distinct/);
    const wide = await other.upload(
      'wide',
      {
        columns: ['a', 'b', 'c'],
        rows: [
          [1, 2, 3],
          [4, 5, 6],
        ],
      },
      codec,
    );
    await other.grant(wide, client.id);
    await rejectsWith(client.submitKMeans({ datasets: [dataset, wide], k: 2 }), 400, /dimension mismatch/);
    assert.equal(await jobCount(), before);
  });

  it('storage tampering is caught when a job reads the data, and the failed job says why', async () => {
    const victim = await owner.upload('victim', table, codec);
    await owner.grant(victim, client.id);
    await s.cs.store.db
      .updateTable('chunks')
      .set({ tag: '00'.repeat(32) })
      .where('dataset_id', '=', victim)
      .execute();
    const job = await client.submitKMeans({ datasets: [victim], k: 2 });
    const st = await client.waitFor(job);
    assert.equal(st.state, 'failed');
    assert.match(st.error ?? '', /integrity tag/);
    await rejectsWith(client.kmeansResult(job), 409, /failed/);
  });

  it('unknown jobs and datasets get 404; the servers still run a job correctly afterwards', async () => {
    await rejectsWith(client.status('job-nope'), 404);
    await rejectsWith(client.submitKMeans({ datasets: ['ds-nope'], k: 2 }), 404);
    const job = await client.submitKMeans({ datasets: [dataset], k: 2, initIndices: [0, 3] });
    const st = await client.waitFor(job);
    assert.equal(st.state, 'done');
    const r = await client.kmeansResult(job);
    assert.equal(
      r.sizes.reduce((a, b) => a + b, 0),
      4,
    );
    await rejectsWith(stranger.kmeansResult(job), 404); // another client's job is invisible
  });
});
