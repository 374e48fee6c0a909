/**
 * The parties' channel over the servers' HMAC-authenticated HTTP link: a real listener, the key
 * server's half started by name, products equal to plaintext; a frame for the wrong round or an
 * unknown session is refused; a silent or vanished party gives a clear error, not a hang.
 */
import { isOutage } from '../../src/services/jobs/runner.js';
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { serveHttp, HttpTransport } from '../../src/protocols/http-transport.js';
import { encodeFrame, MpcEndpoint, MPC_METHOD, startRemote, TransportChannel } from '../../src/mpc/server-channel.js';
import { mpcParty } from '../../src/mpc/party.js';
import { startEngineSession } from '../../src/mpc/engine-session.js';
import { OtProvider } from '../../src/mpc/provider/ot.js';
import { mul, open, share } from '../../src/mpc/primitives/arithmetic.js';
import * as ring from '../../src/mpc/ring.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startKeyServer } from '../../src/services/key-server.js';
import { readKeyFile } from '../../src/crypto/keyfile.js';

async function keyServer(timeoutMs = 60_000) {
  const key = randomBytes(32);
  const endpoint = new MpcEndpoint({ timeoutMs });
  const server = await serveHttp(async (m, b) => (await endpoint.handle(m, b)) ?? new Uint8Array(0), { hmacKey: key, port: 0 });
  return { endpoint, server, transport: new HttpTransport(server.url, key) };
}

describe("MPC over the servers' channel", () => {
  it('forks sessions from base OTs run once; a repeated fork is refused; a lost base is run again', async () => {
    const ks = await keyServer();
    const n = 50;
    const product = (endpoint: MpcEndpoint) =>
      endpoint.register('product', async (channel, args, provider) => {
        const r = (args as { r: string }).r.split(',').map(BigInt);
        const p = mpcParty(1, channel(), await provider());
        assert.equal(p.provider.name, 'ot');
        await open(p, await mul(p, share([n], BigUint64Array.from(r)), share([n], BigUint64Array.from(r))));
      });
    product(ks.endpoint);
    const square = async (session: string) => {
      const [x, r] = [ring.random(n), ring.random(n)];
      const p = await startEngineSession({ transport: ks.transport }, 'product', session, { r: [...r].join(',') });
      const xs = share([n], ring.sub(x, r));
      assert.deepEqual(await open(p, await mul(p, xs, xs)), ring.mul(x, x));
    };
    await square('fork-a');
    await square('fork-b');
    // Forking the same session id from the same base again would reuse its PRG seeds.
    await new Promise((r) => setTimeout(r, 1100)); // let the finished session be dropped
    await assert.rejects(square('fork-a'), /already forked/);
    // The key server restarts (its bases are gone): the next session runs new base OTs by itself.
    const fresh = new MpcEndpoint({ timeoutMs: 60_000 });
    product(fresh);
    (ks.endpoint as unknown as { handle: MpcEndpoint['handle'] }).handle = fresh.handle.bind(fresh);
    await square('fork-c');
    await ks.server.close();
  });

  it('runs a product with OT-made triples between party 0 and the key server', async () => {
    const ks = await keyServer();
    const n = 100;
    const [x, y, rx, ry] = [ring.random(n), ring.random(n), ring.random(n), ring.random(n)];
    ks.endpoint.register('product', async (channel) => {
      const p = mpcParty(1, channel(), new OtProvider(1, channel('ot')));
      await open(p, await mul(p, share([n], rx), share([n], ry)));
    });
    await startRemote(ks.transport, 'product', 'test-product', {});
    const p = mpcParty(
      0,
      new TransportChannel(ks.transport, 'test-product'),
      new OtProvider(0, new TransportChannel(ks.transport, 'test-product:ot')),
    );
    const z = await open(p, await mul(p, share([n], ring.sub(x, rx)), share([n], ring.sub(y, ry))));
    assert.deepEqual(z, ring.mul(x, y));
    await ks.server.close();
  });

  it("runs over a real key server process's channel, under its channel key", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cm-mpc-ks-'));
    const ks = await startKeyServer({ dataDir: dir, port: 0, keyBits: 512, workers: 1 });
    try {
      const n = 10;
      const [x, rx] = [ring.random(n), ring.random(n)];
      ks.mpc.register('square', async (channel) => {
        const [c1] = [channel()];
        const p = mpcParty(1, c1, new OtProvider(1, channel('ot')));
        await open(p, await mul(p, share([n], rx), share([n], rx)));
      });
      const transport = new HttpTransport(ks.url, readKeyFile(ks.channelKeyPath));
      await startRemote(transport, 'square', 'test-square', {});
      const p = mpcParty(0, new TransportChannel(transport, 'test-square'), new OtProvider(0, new TransportChannel(transport, 'test-square:ot')));
      const xs = share([n], ring.sub(x, rx));
      assert.deepEqual(await open(p, await mul(p, xs, xs)), ring.mul(x, x));
      await assert.rejects(
        new HttpTransport(ks.url, randomBytes(32)).call(MPC_METHOD, encodeFrame('test-square', 9, new Uint8Array(0))),
        /channel keys differ/,
      );
    } finally {
      await ks.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses unknown programs, unknown sessions and out-of-order rounds', async () => {
    const ks = await keyServer();
    await assert.rejects(startRemote(ks.transport, 'nope', 'test-x', {}), /no MPC program "nope"/);
    await assert.rejects(
      ks.transport.call(MPC_METHOD, encodeFrame('missing', 0, new Uint8Array(1))),
      (e: unknown) =>
        // A session the key server lost in a restart is an outage: the job retries, and is refunded if it never comes back.
        /no MPC session missing/.test(String(e)) && (e as { code?: string }).code === 'ERR_SESSION_LOST' && isOutage(e),
    );
    ks.endpoint.register('echo', async (channel) => {
      await channel().exchange(new Uint8Array(1));
    });
    await startRemote(ks.transport, 'echo', 'test-echo', {});
    await assert.rejects(ks.transport.call(MPC_METHOD, encodeFrame('test-echo', 3, new Uint8Array(1))), /expected round 0, got 3/);
    await assert.rejects(ks.transport.call(MPC_METHOD, new Uint8Array([200, 1])), /truncated MPC frame/);
    // A session cannot be started inside another one's namespace, nor twice.
    await assert.rejects(startRemote(ks.transport, 'echo', 'test-echo:ot', {}), /a session id is 1 to 64/);
    await assert.rejects(startRemote(ks.transport, 'echo', 'test-echo', {}), /already running/);
    await ks.server.close();
  });

  it("a silent compute server fails the key server's round; a vanished key server fails party 0 clearly", async () => {
    const ks = await keyServer(300);
    let failure: Error | undefined;
    ks.endpoint.register('wait', async (channel) => {
      try {
        await channel().exchange(new Uint8Array(1));
      } catch (e) {
        failure = e as Error;
      }
    });
    await startRemote(ks.transport, 'wait', 'test-wait', {});
    await new Promise((r) => setTimeout(r, 500));
    assert.match(String(failure?.message), /the compute server went silent mid-protocol/);
    ks.endpoint.register('never', async () => new Promise(() => {}));
    await ks.server.close();
    await assert.rejects(new TransportChannel(ks.transport, 'test-gone').exchange(new Uint8Array(1)), /the key server disappeared mid-protocol/);
  });
});
