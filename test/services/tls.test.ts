/**
 * TLS on the listeners and the pins that make it authenticate: both servers over TLS with
 * self-signed certificates (`ciphermine tls make`), the compute server pinning the key server's,
 * owners and clients pinning the compute server's at registration; a different certificate is
 * refused with ERR_PIN_MISMATCH, plain HTTP to a TLS listener fails, and a listener off loopback
 * without TLS does not start.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeSelfSigned, loadTls, type TlsMaterial } from '../../src/crypto/tls.js';
import { startKeyServer, type KeyServerHandle } from '../../src/services/key-server.js';
import { startComputeServer, type ComputeServerHandle } from '../../src/services/compute-server.js';
import { readKeyFile } from '../../src/crypto/keyfile.js';
import { DataOwner } from '../../src/clients/data-owner.js';
import { QueryClient } from '../../src/clients/query-client.js';
import { testDatabase } from './test-database.js';
import { parseNumericCsv } from '../../src/clients/csv.js';
import { FixedPointCodec } from '../../src/crypto/index.js';

const main = new URL('../../src/cli/main.js', import.meta.url).pathname;
const isPinError = (e: Error & { code?: string }) => e.code === 'ERR_PIN_MISMATCH';

describe('TLS and certificate pinning', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cm-tls-'));
  let ksCert: TlsMaterial;
  let csCert: TlsMaterial;
  let other: TlsMaterial;
  let ks: KeyServerHandle;
  let cs: ComputeServerHandle;
  let database: string | undefined;
  const startCs = (tls: TlsMaterial, port = 0, keyServerFingerprint = ksCert.fingerprint) =>
    startComputeServer({
      dataDir: join(dir, 'cs'),
      database,
      port,
      keyServerUrl: ks.url,
      keyServerFingerprint,
      channelKey: readKeyFile(ks.channelKeyPath),
      workers: 1,
      tls,
    });

  before(async () => {
    ksCert = await makeSelfSigned(['127.0.0.1', 'localhost'], join(dir, 'ks.crt'), join(dir, 'ks.key'));
    csCert = await makeSelfSigned(['127.0.0.1'], join(dir, 'cs.crt'), join(dir, 'cs.key'));
    other = await makeSelfSigned(['127.0.0.1'], join(dir, 'other.crt'), join(dir, 'other.key'));
    ks = await startKeyServer({ dataDir: join(dir, 'ks'), port: 0, keyBits: 512, workers: 1, tls: ksCert });
    database = await testDatabase();
    cs = await startCs(csCert);
  });
  after(async () => {
    await cs.close();
    await ks.close();
  });

  it('makes self-signed pairs with a 0600 key, and the listeners speak https', () => {
    assert.equal(statSync(join(dir, 'cs.key')).mode & 0o777, 0o600);
    assert.equal(loadTls(join(dir, 'cs.crt'), join(dir, 'cs.key')).fingerprint, csCert.fingerprint);
    assert.match(ks.url, /^https:/);
    assert.match(cs.url, /^https:/);
    assert.equal(ks.tlsFingerprint, ksCert.fingerprint);
  });

  it('a plain-HTTP request to a TLS listener fails', async () => {
    for (const url of [cs.url, ks.url]) {
      const plain = url.replace('https:', 'http:');
      await assert.rejects(fetch(`${plain}/v1/info`, { signal: AbortSignal.timeout(5000) }));
    }
  });

  it('owners and clients pin the certificate at registration and work through it', async () => {
    await assert.rejects(DataOwner.register(cs.url, 'a', { expectCert: other.fingerprint }), (e: Error & { code?: string }) => {
      assert.ok(isPinError(e));
      assert.match(e.message, /presents TLS certificate .* not the .* you expected/);
      return true;
    });
    const owner = await DataOwner.register(cs.url, 'a', { expectCert: csCert.fingerprint });
    assert.equal(owner.identity().pins?.tls, csCert.fingerprint);
    const id = await owner.upload('t', parseNumericCsv('x,y\n1,2\n3,4\n'), new FixedPointCodec({ fractionBits: 8, maxAbs: 10 }));
    assert.match(id, /^ds-/);
    const client = await QueryClient.register(cs.url, 'q'); // trust on first use
    assert.equal(client.identity().pins?.tls, csCert.fingerprint);
    assert.deepEqual(await QueryClient.fromIdentity(client.identity()).datasets(), []);
  });

  it('a compute server that presents another certificate is refused by every pinned party', async () => {
    const owner = await DataOwner.register(cs.url, 'b');
    const client = await QueryClient.register(cs.url, 'q2');
    const port = Number(new URL(cs.url).port);
    await cs.close();
    cs = await startCs(other, port); // same address, same keys, another certificate
    try {
      await assert.rejects(DataOwner.fromIdentity(owner.identity()), (e: Error & { code?: string }) => {
        assert.ok(isPinError(e), `${e.code}: ${e.message}`);
        assert.match(e.message, /presents TLS certificate .* not the .* pinned/);
        return true;
      });
      await assert.rejects(QueryClient.fromIdentity(client.identity()).datasets(), isPinError);
    } finally {
      await cs.close();
      cs = await startCs(csCert, port);
    }
    await DataOwner.fromIdentity(owner.identity()); // the pinned certificate again: accepted
  });

  it('the compute server refuses a key server whose certificate is not the one it was given', async () => {
    await assert.rejects(
      startComputeServer({
        dataDir: join(dir, 'cs2'),
        port: 0,
        keyServerUrl: ks.url,
        keyServerFingerprint: other.fingerprint,
        channelKey: readKeyFile(ks.channelKeyPath),
        workers: 1,
        retryForMs: 0,
      } as Parameters<typeof startComputeServer>[0]),
      /presents TLS certificate/,
    );
    await assert.rejects(
      startComputeServer({ dataDir: join(dir, 'cs3'), port: 0, keyServerUrl: ks.url, channelKey: readKeyFile(ks.channelKeyPath), workers: 1 }),
      /speaks TLS: give its certificate fingerprint/,
    );
  });

  it('a listener off loopback without TLS does not start', async () => {
    await assert.rejects(
      startKeyServer({ dataDir: join(dir, 'ks-open'), host: '0.0.0.0', port: 0, keyBits: 512, workers: 1 }),
      /not loopback-only: give --tls-cert and --tls-key/,
    );
    await assert.rejects(
      startComputeServer({ dataDir: join(dir, 'cs-open'), host: '0.0.0.0', port: 0, keyServerUrl: ks.url, channelKey: Buffer.alloc(32), workers: 1 }),
      /not loopback-only/,
    );
  });

  it('ciphermine tls make writes the pair and prints its fingerprint', async () => {
    const { stdout } = await promisify(execFile)(process.execPath, [
      main,
      'tls',
      'make',
      '--host',
      'cs.example.org,10.0.0.5',
      '--cert',
      join(dir, 'cli.crt'),
      '--key',
      join(dir, 'cli.key'),
    ]);
    const out = JSON.parse(stdout) as { fingerprint: string };
    assert.equal(out.fingerprint, loadTls(join(dir, 'cli.crt'), join(dir, 'cli.key')).fingerprint);
    assert.equal(statSync(join(dir, 'cli.key')).mode & 0o777, 0o600);
  });
});
