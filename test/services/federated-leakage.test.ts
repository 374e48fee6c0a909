/**
 * What the servers see of a federated k-means job (seed 003). Two jobs of the same shape over very
 * different data (small values near zero, and values near the declared bound) are recorded: the key
 * server's decryptions must be alike in distribution (uniform blinded values) and in number, and
 * the compute server's messages alike in topic and size. Every value a host sends is under the job
 * key, whose secret only the key server holds: nothing on the compute server's disk opens it.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { toBytes } from '../../src/crypto/bigint.js';
import { deserializeCiphertexts, serializePublicKey, type BcpSecretKey } from '../../src/crypto/index.js';
import { JobMailbox } from '../../src/services/jobs/mailbox.js';
import { startServices, type Services } from './services-harness.js';
import { totalBits } from '../../src/services/jobs/kinds/federated-kmeans.js';
import { federatedKmeansSpec } from '../../src/services/jobs/kinds/federated-kmeans-schema.js';
import { federate, type FederatedRun } from './federated-helpers.js';
import { ksSameDistribution } from '../protocols/harness.js';

interface View {
  /** Values the key server decrypted, scaled to [0, 1) by N, per protocol. */
  keyServer: Map<string, number[]>;
  /** What reached the compute server from the hosts and went back: (direction, topic, bytes). */
  computeServer: string[];
  posts: Array<{ topic: string; data: Buffer }>;
  jobId: string;
}

const o: FederatedRun = { k: 4, init: [0, 1, 2, 3], normalize: 'mean', tolerance: 2 ** -50, maxIter: 2, fractionBits: 8, maxAbs: 1000 };

function table(scale: number, seed: number) {
  const rand = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  return { columns: ['a', 'b', 'c'], rows: Array.from({ length: 60 }, () => [0, 1, 2].map(() => scale * rand())) };
}

describe('leakage: the servers’ views of a federated job do not depend on the data', () => {
  let s: Services;
  const views: View[] = [];
  const post = JobMailbox.prototype.post;
  const send = JobMailbox.prototype.send;
  before(async () => {
    s = await startServices();
    for (const t of [table(0.01, 1), table(999, 2)]) {
      const view: View = { keyServer: new Map(), computeServer: [], posts: [], jobId: '' };
      // The slots of each round's packs, in round order, scaled by their blinding range 2^(bits + 40).
      const topics = ['moments', 'init', 'round-1', 'round-2'];
      let call = 0;
      s.ks.core.observer = (protocol, values) => {
        const seen = view.keyServer;
        const scale = protocol === 'sct-fanout-packed' ? 1n << BigInt(totalBits(specOf(topics[call++]!), topics[call - 1]!, undefined) + 40) : 1n;
        seen.set(protocol, [...(seen.get(protocol) ?? []), ...values.map((v) => Number((v * 1_000_000n) / scale) / 1_000_000)]);
      };
      JobMailbox.prototype.post = function (from, topic, data) {
        view.computeServer.push(`in ${topic} ${data.length}`);
        view.posts.push({ topic, data });
        return post.call(this, from, topic, data);
      };
      JobMailbox.prototype.send = function (to, topic, data) {
        // A start carries the job's public key, whose serialised length varies by a byte now and
        // then whatever the data (a leading zero); its size is compared without it.
        const size = topic === 'start' ? data.length - String(JSON.parse(data.toString('utf8')).jobKey).length : data.length;
        view.computeServer.push(`out ${topic} ${size}`);
        return send.call(this, to, topic, data);
      };
      const r = await federate(s.cs.url, t, 3, o);
      assert.equal(r.status.state, 'done');
      assert.equal(r.outcomes[0]!.iterations, 2);
      view.jobId = r.jobId;
      views.push(view);
    }
  });
  after(async () => {
    JobMailbox.prototype.post = post;
    JobMailbox.prototype.send = send;
    s.ks.core.observer = undefined;
    await s.close();
  });

  it('the key server decrypts only blinded totals (SCT), as many and as uniform for either data set', () => {
    const [a, b] = views.map((v) => v.keyServer);
    assert.deepEqual([...a!.keys()].sort(), ['sct-fanout-pack', 'sct-fanout-packed']);
    assert.deepEqual([...b!.keys()].sort(), ['sct-fanout-pack', 'sct-fanout-packed']);
    // every value of moments (4), init (12) and 2 rounds (16 each) once, whatever the number of hosts, in few packs
    assert.equal(a!.get('sct-fanout-packed')!.length, 4 + 12 + 2 * 16);
    assert.ok(a!.get('sct-fanout-pack')!.length < 4 + 12 + 2 * 16);
    assert.equal(b!.get('sct-fanout-packed')!.length, a!.get('sct-fanout-packed')!.length);
    const ks = ksSameDistribution(a!.get('sct-fanout-packed')!, b!.get('sct-fanout-packed')!);
    assert.ok(ks.same, `KS distance ${ks.d} above ${ks.critical}`);
    const uniform = Array.from({ length: 2000 }, (_, i) => (i + 0.5) / 2000);
    assert.ok(ksSameDistribution(a!.get('sct-fanout-packed')!, uniform).same, 'the blinded totals look uniform on their blinding range');
  });

  it('the compute server sees the same topics and message sizes for either data set', () => {
    // Hosts poll concurrently, so compare as multisets.
    assert.deepEqual([...views[0]!.computeServer].sort(), [...views[1]!.computeServer].sort());
  });

  it('the compute server never holds a key that opens a host’s message', async () => {
    for (const v of views) {
      const job = (await s.cs.store.job(v.jobId))!;
      const jobKeys = (s.ks.core as unknown as { jobKeys: Map<string, BcpSecretKey> }).jobKeys;
      const sk = [...jobKeys.values()].find((k) => job.jobKey!.equals(serializePublicKey(k.publicKey)))!;
      assert.ok(sk, 'the job key was made by the key server');
      // Every ciphertext a host sent is under the job key.
      for (const p of v.posts) {
        const body = JSON.parse(p.data.toString('utf8')) as { cts?: string };
        if (body.cts) assert.ok(deserializeCiphertexts(Buffer.from(body.cts, 'base64'), sk.publicKey).length > 0, p.topic);
      }
      // Its secret exponent is nowhere on the compute server's disk (database, WAL, key files).
      const secret = toBytes(sk.a, Math.ceil(sk.a.toString(16).length / 2));
      for (const f of files(join(s.dir, 'cs'))) assert.equal(readFileSync(f).indexOf(secret), -1, `${f} holds the job's secret key`);
      // The job's record holds no statistic: the hosts' totals never reach the compute server in the clear.
      assert.deepEqual(Object.keys(job.result as object).sort(), [
        'columns',
        'converged',
        'epsilon',
        'fractionBits',
        'hosts',
        'iterations',
        'normalize',
      ]);
    }
  });
});

function specOf(_topic: string) {
  return federatedKmeansSpec.parse({ ...o, hosts: ['a', 'b'], columns: ['a', 'b', 'c'], init: o.init.map((row) => ({ host: 0, row })) });
}

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? files(p) : [p];
  });
}
