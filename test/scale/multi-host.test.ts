/**
 * The scale-out deployment across hosts (issue 17): two key-server replicas and two compute workers,
 * each in a network namespace of its own joined to this one by a veth pair on a bridge, as separate
 * machines on one network would be. PostgreSQL, Redis and the compute server's API node stay here.
 * The replicas listen off loopback, so with TLS (a self-signed certificate the others pin), and every
 * byte between the parties crosses a network interface, which the veths' counters show. The k-means
 * result is plaintext Lloyd's, as on one machine.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { randomBytes, randomInt } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readKeyFile } from '../../src/crypto/index.js';
import { makeSelfSigned } from '../../src/crypto/tls.js';
import { DataOwner } from '../../src/clients/data-owner.js';
import { QueryClient } from '../../src/clients/query-client.js';
import { startComputeServer, type ComputeServerHandle } from '../../src/services/compute-server.js';
import { startChildServer, type ChildServer } from '../../src/cli/child-server.js';
import { startPgCluster, type PgCluster } from '../pg-cluster.js';
import { startRedis, type RedisServer } from '../redis-server.js';
import { assertEqualsLloyd, iris, irisCodec } from './iris-lloyd.js';

const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const codec = irisCodec;
const ip = (...args: string[]) => execFileSync('ip', args, { stdio: 'pipe', encoding: 'utf8' });
const counter = (dev: string, what: 'rx_bytes' | 'tx_bytes') => Number(readFileSync(`/sys/class/net/${dev}/statistics/${what}`, 'utf8'));

let refused = '';

/** Namespaces may be made here (root with CAP_NET_ADMIN and CAP_SYS_ADMIN); else why not. */
function namespacesAllowed(): boolean {
  const probe = `cm-probe-${randomBytes(3).toString('hex')}`;
  try {
    ip('netns', 'add', probe);
    ip('netns', 'del', probe);
    return true;
  } catch (e) {
    refused = String((e as { stderr?: string }).stderr ?? (e as Error).message).trim();
    if (!/Operation not permitted|Permission denied/.test(refused)) throw e;
    return false;
  }
}

/** A bridge here and `n` namespaces on it, each with one address; removed by `remove`. */
function network(n: number) {
  if (!namespacesAllowed()) return undefined;
  const tag = randomBytes(3).toString('hex');
  const subnet = `10.231.${randomInt(0, 256)}`;
  const bridge = `cmbr${tag}`;
  const hosts = Array.from({ length: n }, (_, i) => ({
    ns: `cm-${tag}-${i}`,
    veth: `cmv${i}${tag}`,
    peer: `cmp${i}${tag}`,
    addr: `${subnet}.${10 + i}`,
  }));
  const remove = () => {
    for (const h of hosts) spawnQuiet('ip', 'netns', 'del', h.ns);
    spawnQuiet('ip', 'link', 'del', bridge);
  };
  process.once('exit', remove);
  ip('link', 'add', bridge, 'type', 'bridge');
  ip('addr', 'add', `${subnet}.1/24`, 'dev', bridge);
  ip('link', 'set', bridge, 'up');
  for (const h of hosts) {
    ip('netns', 'add', h.ns);
    ip('link', 'add', h.veth, 'type', 'veth', 'peer', 'name', h.peer);
    ip('link', 'set', h.peer, 'netns', h.ns);
    ip('link', 'set', h.veth, 'master', bridge, 'up');
    ip('-n', h.ns, 'addr', 'add', `${h.addr}/24`, 'dev', h.peer);
    ip('-n', h.ns, 'link', 'set', h.peer, 'up');
    ip('-n', h.ns, 'link', 'set', 'lo', 'up');
  }
  return { gateway: `${subnet}.1`, cidr: `${subnet}.0/24`, hosts, remove };
}

function spawnQuiet(cmd: string, ...args: string[]): void {
  try {
    execFileSync(cmd, args, { stdio: 'ignore' });
  } catch {
    // already gone
  }
}

describe('scale-out across hosts: replicas and workers in network namespaces joined by veth', { timeout: 600_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'cm-hosts-'));
  let net: NonNullable<ReturnType<typeof network>> | undefined;
  let pg: PgCluster;
  let redis: RedisServer;
  let cs: ComputeServerHandle;
  const children: ChildServer[] = [];

  before(async () => {
    net = network(4);
    if (!net) return;
    pg = await startPgCluster({ listen: [net.gateway], allow: net.cidr });
    redis = await startRedis({ bind: [net.gateway] });
  });

  after(async () => {
    for (const c of children) await c.stop();
    await cs?.close();
    redis?.stop();
    pg?.stop();
    net?.remove();
  });

  it('k-means equals plaintext Lloyd, and the traffic crosses every host interface', async (t) => {
    // Only a kernel that refuses network namespaces to this user (no CAP_NET_ADMIN) skips, saying so.
    if (!net) return t.skip(`network namespaces are refused here: ${refused}`);
    const hosts = net;
    const [ks1, ks2, w1, w2] = hosts.hosts as [(typeof hosts.hosts)[0], (typeof hosts.hosts)[0], (typeof hosts.hosts)[0], (typeof hosts.hosts)[0]];
    const onHost = (h: { ns: string }) => ({ command: ['ip', 'netns', 'exec', h.ns, process.execPath, MAIN] });
    const remote = (url: string) => url.replace('127.0.0.1', hosts.gateway);
    const ksDb = remote(await pg.createDatabase());
    const csDb = await pg.createDatabase();
    const tls = await makeSelfSigned([ks1.addr, ks2.addr], join(dir, 'ks.crt'), join(dir, 'ks.key'));
    const ksArgs = (h: { addr: string }, d: string) => [
      'key-server',
      'start',
      '--data-dir',
      d,
      '--host',
      h.addr,
      '--port',
      '7401',
      '--key-bits',
      '512',
      '--workers',
      '1',
      '--database',
      ksDb,
      '--tls-cert',
      join(dir, 'ks.crt'),
      '--tls-key',
      join(dir, 'ks.key'),
    ];
    children.push(await startChildServer(ksArgs(ks1, join(dir, 'ks1')), onHost(ks1)));
    mkdirSync(join(dir, 'ks2'), { mode: 0o700 });
    for (const f of ['master.key', 'channel.key']) copyFileSync(join(dir, 'ks1', f), join(dir, 'ks2', f));
    children.push(await startChildServer(ksArgs(ks2, join(dir, 'ks2')), onHost(ks2)));
    const urls = [ks1, ks2].map((h) => `https://${h.addr}:7401`);
    const channelKey = join(dir, 'ks1', 'channel.key');
    cs = await startComputeServer({
      dataDir: join(dir, 'cs'),
      database: csDb,
      queue: redis.url,
      port: 0,
      keyServerUrl: urls.join(','),
      keyServerFingerprint: tls.fingerprint,
      channelKey: readKeyFile(channelKey),
      workers: 1,
      blockRecords: 25,
      registrationsPerMinute: 10_000,
    });
    const workerArgs = (order: string[]) => [
      'worker',
      'start',
      '--database',
      remote(csDb),
      '--queue',
      remote(redis.url),
      '--data-dir',
      join(dir, 'cs'),
      '--key-server',
      order.join(','),
      '--key-server-fingerprint',
      tls.fingerprint,
      '--channel-key',
      channelKey,
    ];
    children.push(await startChildServer(workerArgs(urls), onHost(w1)));
    children.push(await startChildServer(workerArgs([...urls].reverse()), onHost(w2)));
    const before = hosts.hosts.map((h) => counter(h.veth, 'rx_bytes') + counter(h.veth, 'tx_bytes'));

    const table = iris();
    const owner = await DataOwner.register(cs.url, 'owner');
    const client = await QueryClient.register(cs.url, 'client');
    const ds = await owner.upload('iris', table, codec, { chunkRows: 25 });
    await owner.grant(ds, client.id);
    const init = [0, 1, 2];
    const { jobId } = await client.kmeans({ datasets: [ds], k: 3, maxIter: 100, initIndices: init });
    await assertEqualsLloyd(client, jobId, init);

    const after = hosts.hosts.map((h) => counter(h.veth, 'rx_bytes') + counter(h.veth, 'tx_bytes'));
    hosts.hosts.forEach((h, i) => assert.ok(after[i]! - before[i]! > 10_000, `${h.ns} (${h.addr}) moved only ${after[i]! - before[i]!} bytes`));
    for (const w of children.slice(2)) assert.match(w.log(), /task done/, 'each worker ran tasks');
  });
});
