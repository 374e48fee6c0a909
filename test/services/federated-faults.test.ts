/**
 * Federated k-means when hosts misbehave or go away: bad specs are refused at submission; a host
 * with other columns, one absent at the start, one that leaves, one that sends malformed ciphertexts
 * and a k beyond the records held in total each end the job with a message naming the host; a
 * host that leaves and comes back within the timeout resumes and the result is still exact.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { ApiError, ComputeServerApi } from '../../src/clients/api.js';
import { startServices, type Services } from './services-harness.js';
import { assertEqualsReference, registerHosts, specFor, split, type FederatedRun } from './federated-helpers.js';
import { Host } from '../../src/clients/host.js';

const table = {
  columns: ['a', 'b'],
  rows: Array.from({ length: 24 }, (_, i) => [(i % 3) * 10 + (i % 5) / 5, (i % 2) * 7 - (i % 4)]),
};
const o: FederatedRun = { k: 3, init: [0, 1, 2], fractionBits: 8, maxAbs: 64 };

async function failedJob(s: Services, spec: Record<string, unknown>, hosts: Awaited<ReturnType<typeof registerHosts>>) {
  const jobId = await hosts[0]!.client.submit('federated-kmeans', spec);
  return { jobId, status: () => hosts[0]!.client.waitFor(jobId, undefined, 50) };
}

describe('federated k-means: faults and bad input (512-bit keys)', () => {
  let s: Services;
  before(async () => {
    s = await startServices();
  });
  after(() => s.close());

  it('refuses a duplicate host, a tolerance of zero or below, and init beyond the hosts', async () => {
    const hosts = await registerHosts(s.cs.url, 2);
    const { init } = split(table, 2, o.init);
    const ids = hosts.map((h) => h.client.id);
    const bad = [
      [{ ...specFor([ids[0]!, ids[0]!], table, init, o) }, /a host is listed twice/],
      [{ ...specFor(ids, table, init, o), tolerance: 0 }, /tolerance/],
      [{ ...specFor(ids, table, init, o), tolerance: -1 }, /tolerance/],
      [{ ...specFor(ids, table, init, o), init: [{ host: 2, row: 0 }, ...init.slice(1)] }, /beyond the host list/],
      [{ ...specFor(ids, table, init, o), hosts: [ids[0]!, 'nobody'] }, /no registered party nobody/],
    ] as const;
    for (const [spec, message] of bad) {
      await assert.rejects(hosts[0]!.client.submit('federated-kmeans', spec), (e: ApiError) => e.status === 400 && message.test(e.message));
    }
  });

  it('a host with other columns is named', async () => {
    const hosts = await registerHosts(s.cs.url, 2);
    const { parts, init } = split(table, 2, o.init);
    const job = await failedJob(
      s,
      specFor(
        hosts.map((h) => h.client.id),
        table,
        init,
        o,
      ),
      hosts,
    );
    const joins = [
      hosts[0]!.host.join(job.jobId, parts[0]!, { pollMs: 20 }),
      hosts[1]!.host.join(job.jobId, { columns: ['a', 'c'], rows: parts[1]!.rows }, { pollMs: 20 }),
    ];
    for (const r of await Promise.allSettled(joins)) assert.equal(r.status, 'rejected');
    const st = await job.status();
    assert.equal(st.errorCode, 'ERR_HOST_INPUT');
    assert.match(st.error!, new RegExp(`host 'host 1' \\(${hosts[1]!.client.id}\\) has columns \\["a","c"\\]`));
  });

  it('a host absent at the start, and one that leaves, fail the job after its timeout, named', async () => {
    const hosts = await registerHosts(s.cs.url, 3);
    const { parts, init } = split(table, 3, o.init);
    const job = await failedJob(
      s,
      {
        ...specFor(
          hosts.map((h) => h.client.id),
          table,
          init,
          o,
        ),
        hostTimeoutSeconds: 1,
      },
      hosts,
    );
    const running = hosts[0]!.host.join(job.jobId, parts[0]!, { pollMs: 20 });
    // Host 1 joins and goes silent; host 2 never appears.
    const api = new ComputeServerApi(s.cs.url, hosts[1]!.client.identity().token);
    await api.request('GET', `/v1/jobs/${job.jobId}/mailbox`);
    await api.request('POST', `/v1/jobs/${job.jobId}/mailbox`, {
      topic: 'join',
      data: Buffer.from(JSON.stringify({ columns: table.columns })).toString('base64'),
    });
    await assert.rejects(running, /ERR_HOST_ABSENT|waited 1 s/);
    const st = await job.status();
    assert.equal(st.errorCode, 'ERR_HOST_ABSENT');
    assert.match(st.error!, /host 'host 2' \(.*\) never joined/);
  });

  it('a host that joined and went silent is named as having left', async () => {
    const hosts = await registerHosts(s.cs.url, 2);
    const { parts, init } = split(table, 2, o.init);
    const job = await failedJob(
      s,
      {
        ...specFor(
          hosts.map((h) => h.client.id),
          table,
          init,
          o,
        ),
        hostTimeoutSeconds: 1,
      },
      hosts,
    );
    const running = hosts[0]!.host.join(job.jobId, parts[0]!, { pollMs: 20 });
    const quit = new AbortController();
    const leaving = hosts[1]!.host.join(job.jobId, parts[1]!, {
      pollMs: 20,
      signal: quit.signal,
      onEvent: (m) => m.startsWith('iteration 1') && quit.abort(),
    });
    await assert.rejects(leaving);
    await assert.rejects(running);
    const st = await job.status();
    assert.equal(st.errorCode, 'ERR_HOST_ABSENT');
    assert.match(st.error!, /round-\d+: host 'host 1' \(.*\) left/);
  });

  it('a host that leaves and rejoins within the timeout resumes; the result is still exact', async () => {
    const hosts = await registerHosts(s.cs.url, 2);
    const { parts, init } = split(table, 2, o.init);
    const job = await failedJob(
      s,
      specFor(
        hosts.map((h) => h.client.id),
        table,
        init,
        o,
      ),
      hosts,
    );
    const first = hosts[0]!.host.join(job.jobId, parts[0]!, { pollMs: 20 });
    const quit = new AbortController();
    await assert.rejects(
      hosts[1]!.host.join(job.jobId, parts[1]!, { pollMs: 20, signal: quit.signal, onEvent: (m) => m.startsWith('iteration 1') && quit.abort() }),
    );
    // A new process with the same identity: it replays the job's messages and goes on.
    const again = Host.fromIdentity(hosts[1]!.client.identity());
    const outcomes = await Promise.all([first, again.join(job.jobId, parts[1]!, { pollMs: 20 })]);
    assert.equal((await job.status()).state, 'done');
    assertEqualsReference(outcomes, table, o);
  });

  it('a key server outage mid-job: the job starts its protocol over when it is back, the hosts follow, the result is exact', async () => {
    const hosts = await registerHosts(s.cs.url, 2);
    const { parts, init } = split(table, 2, o.init);
    const job = await failedJob(
      s,
      specFor(
        hosts.map((h) => h.client.id),
        table,
        init,
        o,
      ),
      hosts,
    );
    let down: Promise<unknown> | undefined;
    const outcomes = await Promise.all(
      hosts.map((h, i) =>
        h.host.join(job.jobId, parts[i]!, {
          pollMs: 20,
          onEvent: (m) => {
            if (i === 0 && m.startsWith('iteration 1') && !down)
              down = s.ks
                .close()
                .then(() => new Promise((r) => setTimeout(r, 700)))
                .then(() => s.restartKeyServer());
          },
        }),
      ),
    );
    await down;
    assert.equal((await job.status()).state, 'done');
    assertEqualsReference(outcomes, table, o);
  });

  it('malformed ciphertexts are refused and the host named', async () => {
    const hosts = await registerHosts(s.cs.url, 2);
    const { parts, init } = split(table, 2, o.init);
    const job = await failedJob(
      s,
      specFor(
        hosts.map((h) => h.client.id),
        table,
        init,
        o,
      ),
      hosts,
    );
    const running = hosts[0]!.host.join(job.jobId, parts[0]!, { pollMs: 20 });
    const api = new ComputeServerApi(s.cs.url, hosts[1]!.client.identity().token);
    const post = (topic: string, body: unknown) =>
      api.request('POST', `/v1/jobs/${job.jobId}/mailbox`, { topic, data: Buffer.from(JSON.stringify(body)).toString('base64') });
    await post('join', { columns: table.columns });
    await post('moments', { cts: Buffer.from('not a ciphertext batch').toString('base64') });
    await assert.rejects(running);
    const st = await job.status();
    assert.equal(st.errorCode, 'ERR_INVALID_CIPHERTEXT');
    assert.match(st.error!, /host 'host 1' \(.*\) sent malformed ciphertexts for moments/);
  });

  it('k larger than the records held in total fails the job with the reason', async () => {
    const small = { columns: ['a', 'b'], rows: table.rows.slice(0, 4) };
    const hosts = await registerHosts(s.cs.url, 2);
    const { parts } = split(small, 2, []);
    const spec = {
      ...specFor(
        hosts.map((h) => h.client.id),
        small,
        [],
        o,
      ),
      k: 5,
      init: [0, 1, 0, 1, 0].map((row, c) => ({ host: c % 2, row })),
    };
    const job = await failedJob(s, spec, hosts);
    const r = await Promise.allSettled(hosts.map((h, i) => h.host.join(job.jobId, parts[i]!, { pollMs: 20 })));
    assert.ok(r.every((x) => x.status === 'rejected'));
    const st = await job.status();
    assert.equal(st.errorCode, 'ERR_HOST_INPUT');
    assert.match(st.error!, /k = 5 is larger than the 4 records the hosts hold in total/);
  });
});

describe('federated k-means across a compute server restart (512-bit keys)', () => {
  it('the job starts over on the new server, the hosts notice the new mailbox and follow, the result is exact', async () => {
    const { startComputeServer } = await import('../../src/services/compute-server.js');
    const { readKeyFile } = await import('../../src/crypto/index.js');
    const { join } = await import('node:path');
    const s = await startServices();
    try {
      const hosts = await registerHosts(s.cs.url, 2);
      const { parts, init } = split(table, 2, o.init);
      const jobId = await hosts[0]!.client.submit(
        'federated-kmeans',
        specFor(
          hosts.map((h) => h.client.id),
          table,
          init,
          o,
        ),
      );
      let restarted: Promise<unknown> | undefined;
      const port = Number(new URL(s.cs.url).port);
      const restart = async () => {
        await s.cs.close();
        s.cs = await startComputeServer({
          dataDir: join(s.dir, 'cs'),
          port,
          keyServerUrl: s.ks.url,
          channelKey: readKeyFile(s.ks.channelKeyPath),
          workers: 1,
          database: s.database,
        });
      };
      const outcomes = await Promise.all(
        hosts.map((h, i) =>
          h.host.join(jobId, parts[i]!, {
            pollMs: 20,
            onEvent: (m) => {
              if (i === 0 && m.startsWith('iteration 1') && !restarted) restarted = restart();
            },
          }),
        ),
      );
      await restarted;
      assert.ok(restarted, 'the server restarted mid-job');
      assert.equal((await hosts[0]!.client.waitFor(jobId)).state, 'done');
      assertEqualsReference(outcomes, table, o);
    } finally {
      await s.close();
    }
  });
});
