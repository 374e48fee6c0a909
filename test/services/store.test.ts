/**
 * The store on its own, on whichever database this run uses (SQLite, or PostgreSQL on the
 * PostgreSQL run): migrations and the refusal of a newer schema, the all-or-nothing privacy-budget
 * charge under concurrency, bounded uploads, and intermediates stored in parts.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { openStore, SchemaVersionError, type Store } from '../../src/services/store/index.js';
import BetterSqlite3 from 'better-sqlite3';
import { onPostgres, testDatabase } from './test-database.js';

async function location(): Promise<string> {
  return (await testDatabase()) ?? join(mkdtempSync(join(tmpdir(), 'cm-store-')), 'compute.db');
}

describe('store', () => {
  let where: string;
  let store: Store;
  let owner: string;
  let client: string;
  before(async () => {
    where = await location();
    store = await openStore(where);
    owner = (await store.addParty('owner', 'o', Buffer.from([1]), 'x')).id;
    client = (await store.addParty('client', 'c', Buffer.from([2]), null)).id;
  });
  let open = true;
  after(async () => {
    if (open) await store.close();
  });

  const dataset = (budget: number | null) =>
    store.addDataset({ ownerId: owner, name: 'd', columns: ['a'], fractionBits: 8, maxAbs: 1, rows: 10, epsilonBudgetMicro: budget });

  it('a charge is all or nothing: one dataset without budget refuses the whole job', async () => {
    const rich = await dataset(1_000_000);
    const none = await dataset(null);
    const r = await store.createJob(client, 'stats', {}, { datasets: [rich, none], epsilonMicro: 100 });
    assert.equal(r.ok, false);
    assert.equal(!r.ok && r.dataset.id, none);
    assert.equal((await store.dataset(rich))!.epsilonSpentMicro, 0, 'the other dataset paid nothing');
    assert.equal((await store.jobsOf(client, 10)).length, 0, 'no job was created');
  });

  it('concurrent charges never overspend: budget 1 pays for exactly three queries of 0.3', async () => {
    const d = await dataset(1_000_000);
    const outcomes = await Promise.all(
      Array.from({ length: 10 }, () => store.createJob(client, 'stats', {}, { datasets: [d], epsilonMicro: 300_000 })),
    );
    assert.equal(outcomes.filter((o) => o.ok).length, 3);
    assert.equal((await store.dataset(d))!.epsilonSpentMicro, 900_000);
  });

  it('charges over the same datasets in opposite orders neither deadlock nor overspend', async () => {
    const a = await dataset(1_000_000);
    const b = await dataset(1_000_000);
    const outcomes = await Promise.all(
      Array.from({ length: 20 }, (_, i) => store.createJob(client, 'stats', {}, { datasets: i % 2 ? [a, b] : [b, a], epsilonMicro: 100_000 })),
    );
    assert.equal(outcomes.filter((o) => o.ok).length, 10);
    assert.equal((await store.dataset(a))!.epsilonSpentMicro, 1_000_000);
    assert.equal((await store.dataset(b))!.epsilonSpentMicro, 1_000_000);
  });

  it('uploads beyond the declared rows are refused, a replaced chunk counts once', async () => {
    const d = await dataset(null);
    const chunk = (idx: number, rows: number) => ({ idx, rows, envelope: Buffer.alloc(4, idx), tag: 'ab' });
    assert.equal(await store.putChunk(d, 10, chunk(0, 6)), 6);
    assert.equal(await store.putChunk(d, 10, chunk(0, 6)), 6, 'the same chunk again replaces it');
    assert.equal(await store.putChunk(d, 10, chunk(1, 5)), null);
    assert.equal(await store.putChunk(d, 10, chunk(1, 4)), 10);
    assert.deepEqual(await store.chunkIndices(d), [0, 1]);
    assert.deepEqual((await store.chunk(d, 1))!.envelope, Buffer.alloc(4, 1));
    assert.equal(await store.completeUpload(d, 10), 10);
    assert.equal((await store.dataset(d))!.state, 'ready');
    assert.equal(await store.putChunk(d, 10, chunk(1, 4)), null, 'a complete dataset takes no more chunks');
  });

  it('intermediates come back in their parts, replaced whole; an empty one is still recorded', async () => {
    const r = await store.createJob(client, 'kmeans', { k: 2 });
    assert.ok(r.ok);
    assert.equal(await store.jobBlob(r.id, 'records'), undefined);
    const parts = [Buffer.from('first'), Buffer.alloc(100_000, 7), Buffer.from('last')];
    await store.putJobBlob(r.id, 'records', parts);
    assert.deepEqual(await store.jobBlob(r.id, 'records'), parts);
    await store.putJobBlob(r.id, 'records', [Buffer.from('again')]);
    assert.deepEqual(await store.jobBlob(r.id, 'records'), [Buffer.from('again')]);
    await store.putJobBlob(r.id, 'empty', []);
    assert.deepEqual(await store.jobBlob(r.id, 'empty'), []);
    await store.saveCheckpoint(r.id, { step: 1, state: { a: [1] }, data: Buffer.from([9]) }, { done: 1, total: 5, unit: 'iteration' });
    await store.saveCheckpoint(r.id, { step: 2, state: { a: [2] }, data: null });
    assert.deepEqual(await store.latestCheckpoint(r.id), { step: 2, state: { a: [2] }, data: null });
    assert.deepEqual((await store.job(r.id))!.progress, { done: 1, total: 5, unit: 'iteration' });
  });

  it('reopening migrates nothing twice; a schema newer than this build is refused and left alone', async () => {
    await store.close();
    store = await openStore(where);
    assert.ok(await store.party(owner), 'data survives reopening');
    await sql`INSERT INTO kysely_migration (name, timestamp) VALUES ('9999-from-the-future', '2099-01-01T00:00:00.000Z')`.execute(store.db);
    await store.close();
    await assert.rejects(
      openStore(where),
      (e: unknown) => e instanceof SchemaVersionError && /newer version/.test(e.message) && /9999-from-the-future/.test(e.message),
    );
    open = false;
  });

  it('an SQLite file of Ciphermine 0.1 (tables, no migration history) is refused and left untouched', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'cm-legacy-')), 'compute.db');
    const legacy = new BetterSqlite3(file);
    legacy.exec("CREATE TABLE parties (id TEXT PRIMARY KEY, name TEXT); INSERT INTO parties VALUES ('owner-1', 'kept');");
    legacy.close();
    await assert.rejects(openStore(file), (e: unknown) => e instanceof SchemaVersionError && /Ciphermine 0.1/.test(e.message));
    const again = new BetterSqlite3(file);
    assert.deepEqual(again.prepare('SELECT name FROM parties').all(), [{ name: 'kept' }]);
    again.close();
  });

  if (onPostgres) {
    it('a second compute server on the same PostgreSQL database is refused', async () => {
      const url = (await testDatabase())!;
      const first = await openStore(url);
      try {
        await assert.rejects(openStore(url), (e: unknown) => (e as { code?: string }).code === 'ERR_DATABASE_IN_USE');
      } finally {
        await first.close();
      }
      await (await openStore(url)).close(); // free again once the first is closed
    });
  }
});
