/**
 * Authenticated setup: parameters below 2048 bits are refused outside tests (library and CLI), an
 * owner or client that expects other parameters refuses to register, an owner's identity refuses a
 * compute server that presents another X25519 key or other parameters than those pinned at
 * registration, and a key server refuses to reuse a data directory with a different key size.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { join } from 'node:path';
import { DataOwner } from '../../src/clients/data-owner.js';
import { QueryClient } from '../../src/clients/query-client.js';
import { startKeyServer } from '../../src/services/key-server.js';
import { INSECURE_TEST_PARAMS_ENV } from '../../src/crypto/params-policy.js';
import { startServices, type Services } from './services-harness.js';

const main = new URL('../../src/cli/main.js', import.meta.url).pathname;

/** Runs f with the test-only allowance for small parameters switched off. */
async function withoutTestAllowance<T>(f: () => Promise<T>): Promise<T> {
  const saved = process.env[INSECURE_TEST_PARAMS_ENV];
  delete process.env[INSECURE_TEST_PARAMS_ENV];
  try {
    return await f();
  } finally {
    if (saved !== undefined) process.env[INSECURE_TEST_PARAMS_ENV] = saved;
  }
}

describe('pinning and parameter policy', () => {
  let s: Services;
  before(async () => {
    process.env[INSECURE_TEST_PARAMS_ENV] = '1';
    s = await startServices(512);
  });
  after(() => s.close());

  it('parameters below 2048 bits are refused without the test-only allowance', async () => {
    await withoutTestAllowance(async () => {
      await assert.rejects(DataOwner.register(s.cs.url, 'a'), /512-bit N; at least 2048 bits are required/);
      await assert.rejects(QueryClient.register(s.cs.url, 'q'), /at least 2048 bits/);
    });
  });

  it('the CLI refuses --key-bits below 2048 without the allowance', async () => {
    const env = { ...process.env };
    delete env[INSECURE_TEST_PARAMS_ENV];
    await assert.rejects(
      promisify(execFile)(process.execPath, [main, 'key-server', 'start', '--data-dir', join(s.dir, 'never'), '--key-bits', '1024'], { env }),
      /--key-bits must be at least 2048/,
    );
    await assert.rejects(promisify(execFile)(process.execPath, [main, 'demo', '--key-bits', '512'], { env }), /--key-bits must be at least 2048/);
  });

  it('registration refuses parameters other than the expected fingerprint', async () => {
    await assert.rejects(DataOwner.register(s.cs.url, 'a', { expectParams: '0'.repeat(32) }), (e: Error & { code?: string }) => {
      assert.equal(e.code, 'ERR_PIN_MISMATCH');
      assert.match(e.message, new RegExp(`serves public parameters ${s.ks.paramsFingerprint}`));
      return true;
    });
    const ok = await QueryClient.register(s.cs.url, 'q', { expectParams: s.ks.paramsFingerprint });
    assert.equal(ok.identity().pins?.params, s.ks.paramsFingerprint);
  });

  it("an owner's identity refuses a compute server with another X25519 key or other parameters", async () => {
    const owner = await DataOwner.register(s.cs.url, 'a');
    const id = owner.identity();
    assert.ok(id.pins?.x25519 && id.pins.params === s.ks.paramsFingerprint);
    await DataOwner.fromIdentity(id); // unchanged: accepted
    await assert.rejects(
      DataOwner.fromIdentity({ ...id, pins: { ...id.pins, x25519: 'A'.repeat(44) } }),
      /now presents X25519 key .* pinned at registration/,
    );
    await assert.rejects(DataOwner.fromIdentity({ ...id, pins: { ...id.pins, params: 'f'.repeat(32) } }), /now presents public parameters/);
  });

  it('a key server refuses a data directory made with another key size', async () => {
    await assert.rejects(
      startKeyServer({ dataDir: join(s.dir, 'ks'), port: 0, keyBits: 1024, workers: 1 }),
      /holds 512-bit public parameters, but 1024 bits were asked for/,
    );
  });
});

describe('compute server files', () => {
  it('compute.db and its WAL files are 0600 even in a directory that already existed', async () => {
    const { mkdtempSync, writeFileSync, chmodSync, statSync, existsSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { openStore } = await import('../../src/services/store/open-store.js');
    const dir = mkdtempSync(join(tmpdir(), 'cm-mode-'));
    chmodSync(dir, 0o755);
    const db = join(dir, 'compute.db');
    writeFileSync(db, '');
    chmodSync(db, 0o644);
    const store = await openStore(db);
    try {
      for (const f of [db, `${db}-wal`, `${db}-shm`]) if (existsSync(f)) assert.equal(statSync(f).mode & 0o777, 0o600, f);
    } finally {
      await store.close();
    }
  });
});
