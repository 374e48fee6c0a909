/**
 * The dealer as its own process: each server reaches it under its own key, gets its own seed and
 * (the key server) its corrections; the engine's products and ReLUs computed with it equal their
 * plaintext; a server cannot fetch the other's seed or corrections with its key; the dealer's log
 * of what it served holds request sizes only.
 */
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { readKeyFile } from '../../src/crypto/index.js';
import { HttpTransport } from '../../src/protocols/index.js';
import { startChildServer, type ChildServer } from '../../src/cli/child-server.js';
import { remoteDealerProvider } from '../../src/mpc/provider/dealer-http.js';
import { channelPair } from '../../src/mpc/channel.js';
import { mpcParty } from '../../src/mpc/party.js';
import * as ring from '../../src/mpc/ring.js';
import { mul, open, splitSecret } from '../../src/mpc/primitives/arithmetic.js';
import { relu } from '../../src/mpc/primitives/binary.js';
import { startServices, type Services } from './services-harness.js';

describe('the dealer process', () => {
  let dealer: ChildServer;
  after(() => dealer?.stop());

  it('serves each server its own seed and the key server its corrections; products and ReLUs are exact', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cm-dealer-'));
    dealer = await startChildServer(['dealer', 'start', '--data-dir', dir, '--port', '0', '--key-server-port', '0']);
    const csKey = readKeyFile(dealer.info.computeServer!);
    const ksKey = readKeyFile(dealer.info.keyServer!);
    assert.equal((statSync(dealer.info.computeServer!).mode & 0o777).toString(8), '600');
    const session = `job-${randomBytes(8).toString('hex')}`;
    const p0 = await remoteDealerProvider(0, dealer.url, csKey, session);
    const p1 = await remoteDealerProvider(1, dealer.info.keyServerUrl!, ksKey, session);
    const [c0, c1] = channelPair();
    const [a, b] = [mpcParty(0, c0, p0), mpcParty(1, c1, p1)];
    const x = BigUint64Array.from([0n, 1n, 5n, (1n << 64n) - 3n, 1n << 63n, (1n << 63n) - 1n]);
    const [x0, x1] = splitSecret([x.length], x);
    const [sq] = await Promise.all([mul(a, x0, x0).then((s) => open(a, s)), mul(b, x1, x1).then((s) => open(b, s))]);
    assert.deepEqual(sq, ring.mul(x, x));
    const [r] = await Promise.all([relu(a, x0).then((s) => open(a, s)), relu(b, x1).then((s) => open(b, s))]);
    assert.deepEqual(
      Array.from(r),
      Array.from(x, (v) => (ring.toSigned(v) > 0n ? v : 0n)),
    );
    assert.ok(p1.counters.offlineBytes > 0, 'the key server received corrections');

    // The compute server's key opens neither the key server's endpoint nor its corrections.
    await assert.rejects(new HttpTransport(dealer.info.keyServerUrl!, csKey).call('seed', Buffer.from(session)), /channel keys differ/);
    await assert.rejects(
      new HttpTransport(dealer.url, csKey).call('correction', Buffer.from(JSON.stringify({ session, request: { kind: 'triple', n: 1 } }))),
      /no method correction for party 0/,
    );
    await assert.rejects(new HttpTransport(dealer.url, csKey).call('seed', Buffer.from('bad id!')), /malformed session id/);
  });
});

describe('both servers on a dealer', () => {
  it('DP clipping and k-means take their correlated randomness from the dealer and equal their plaintext', async () => {
    const { startDealerServer } = await import('../../src/services/dealer-server.js');
    const { DataOwner } = await import('../../src/clients/data-owner.js');
    const { QueryClient } = await import('../../src/clients/query-client.js');
    const { FixedPointCodec } = await import('../../src/crypto/index.js');
    const { lloyd } = await import('../../src/analytics/kmeans-plain.js');
    const dir = mkdtempSync(join(tmpdir(), 'cm-dealer-svc-'));
    let services: Services;
    const d = await startDealerServer({ dataDir: join(dir, 'dealer'), port: 0, keyServerPort: 0 });
    const { cs } = (services = await startServices(
      512,
      { dealer: { url: d.computeServerUrl, key: readKeyFile(d.keyFiles.computeServer) }, unsafeNoiseControlForTests: { disabled: true } },
      { dealer: { url: d.keyServerUrl, key: readKeyFile(d.keyFiles.keyServer) } },
    ));
    try {
      const codec = new FixedPointCodec({ fractionBits: 8, maxAbs: 100 });
      const rows = [
        [1, 2],
        [1.5, 1.8],
        [8, 8],
        [9, 8.5],
        [1.2, 2.2],
        [8.5, 9],
        [0.9, 2.1],
        [8.8, 8.1],
        [1.1, 1.9],
        [9.1, 8.7],
      ];
      const owner = await DataOwner.register(cs.url, 'o');
      const client = await QueryClient.register(cs.url, 'c');
      const id = await owner.upload('t', { columns: ['x', 'y'], rows }, codec, { epsilonBudget: 5, minClusterSize: 1 });
      await owner.grant(id, client.id);
      const before = d.served.length;
      const sum = await client.stats({ datasets: [id], column: 'x', kind: 'sum', lo: 1, hi: 8.6, epsilon: 1 });
      const want = rows.reduce((a, [x]) => a + Math.min(8.6, Math.max(1, x!)), 0);
      assert.ok(Math.abs(sum.value! - want) < 0.01, `${sum.value} vs ${want}`);
      const km = await client.kmeans({ datasets: [id], k: 2, maxIter: 10, initIndices: [0, 2] });
      const plain = lloyd(
        rows.map((r) => codec.encodeRow(r)),
        [0, 2],
        10,
      );
      assert.deepEqual(km.assignments, plain.assignments);
      assert.ok(d.served.length > before, 'the dealer served the sessions');
      // With a dealer the distances are one matrix product on shares per block (mpc/nearest-centroid.ts).
      assert.ok(
        d.served.some((s) => s.request !== 'seed' && s.request.kind === 'wideMatmul'),
        'k-means took wide matrix triples',
      );
      assert.ok(
        d.served.every((s) => !('values' in s)),
        'the dealer holds sizes, never data',
      );
    } finally {
      await services.close();
      await d.close();
    }
  });

  it('a key server without a dealer refuses a dealer session with a clear error', async () => {
    const { MpcEndpoint, startRemote } = await import('../../src/mpc/server-channel.js');
    const { serveHttp } = await import('../../src/protocols/http-transport.js');
    const key = randomBytes(32);
    const endpoint = new MpcEndpoint();
    endpoint.register('noop', async () => undefined);
    const server = await serveHttp(async (m, b) => (await endpoint.handle(m, b)) ?? new Uint8Array(0), { hmacKey: key });
    try {
      await assert.rejects(startRemote(new HttpTransport(server.url, key), 'noop', 'sess-1', { provider: 'dealer' }), /has no dealer/);
    } finally {
      await server.close();
    }
  });
});
