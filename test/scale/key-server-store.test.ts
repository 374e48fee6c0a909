/**
 * The key-server replicas' database (issue 17): shares that no job dropped age out, and neither
 * server starts on the other's database.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KeyServerStore } from '../../src/services/key-server-store.js';
import { openStore } from '../../src/services/store/index.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("the key servers' database", () => {
  it('drops shares older than the age given, and keeps newer ones', async () => {
    const store = await KeyServerStore.open(join(mkdtempSync(join(tmpdir(), 'cm-ks-store-')), 'ks.db'));
    try {
      await store.putShare('old', 'k', 0, 2, Buffer.from('a'));
      await store.putShare('old', 'k', 2, 2, Buffer.from('b'));
      await sleep(60);
      await store.putShare('new', 'k', 0, 2, Buffer.from('c'));
      assert.equal(await store.dropSharesOlderThan(30), 2);
      assert.deepEqual(await store.share('old'), []);
      assert.equal((await store.share('new')).length, 1);
    } finally {
      await store.close();
    }
  });

  it("neither server starts on the other's database", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cm-ks-store-'));
    const cs = await openStore(join(dir, 'cs.db'));
    await cs.close();
    await assert.rejects(KeyServerStore.open(join(dir, 'cs.db')), /compute server's tables/);
    const ks = await KeyServerStore.open(join(dir, 'ks.db'));
    await ks.close();
    await assert.rejects(openStore(join(dir, 'ks.db')), /key servers' tables/);
  });
});
