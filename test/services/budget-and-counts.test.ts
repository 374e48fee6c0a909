/**
 * Budgets that cannot be gamed and counts that do not leak: the owner's cap on delta per Gaussian
 * query, delta charged in the ledger beside epsilon; a query refused at admission or with the key
 * server down costs nothing, and a job that fails after admission is refunded; every former route
 * to the record count (validation errors, the sample-and-aggregate divisor) gives nothing; a
 * revoked or rotated token is refused with 401; registration is rate-limited and leaves the key
 * server no state.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { FixedPointCodec } from '../../src/crypto/index.js';
import { DataOwner } from '../../src/clients/data-owner.js';
import { QueryClient } from '../../src/clients/query-client.js';
import { ApiError } from '../../src/clients/api.js';
import { registrationSource } from '../../src/services/compute-server.js';
import { revokeToken, rotateToken } from '../../src/clients/tokens.js';
import { statsResult } from '../../src/services/jobs/kinds/stats-schema.js';
import { startServices, type Services } from './services-harness.js';

const codec = new FixedPointCodec({ fractionBits: 8, maxAbs: 1000 });
const rowsOf = (n: number) => ({ columns: ['wage'], rows: Array.from({ length: n }, (_, i) => [10 + (i % 7)]) });

const rejectsWith = (p: Promise<unknown>, status: number, re: RegExp) =>
  assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof ApiError, String(e));
    assert.equal(e.status, status, e.message);
    assert.match(e.message, re);
    return true;
  });

describe('budgets, counts and tokens', () => {
  let s: Services;
  let owner: DataOwner;
  let client: QueryClient;
  let small: string;
  let large: string;
  const spent = async (id: string) => (await owner.datasets()).find((d) => d.id === id)!;

  before(async () => {
    s = await startServices(512, { unsafeNoiseControlForTests: { disabled: true }, retryForMs: 0 });
    owner = await DataOwner.register(s.cs.url, 'hospital');
    client = await QueryClient.register(s.cs.url, 'analyst');
    small = await owner.upload('small', rowsOf(12), codec, { epsilonBudget: 10, maxDelta: 1e-7, deltaBudget: 1.2e-7, minClusterSize: 1 });
    large = await owner.upload('large', rowsOf(17), codec, { epsilonBudget: 10, minClusterSize: 1 });
    await owner.grant(small, client.id);
    await owner.grant(large, client.id);
  });
  after(() => s.close());

  it('registration leaves the key server no state; a job registers the keys it needs', async () => {
    const dir = join(s.dir, 'ks', 'public-keys');
    const keysAt = () => (existsSync(dir) ? readdirSync(dir).length : 0);
    const known = (q: { sk: { publicKey: { fingerprint: string } } }) => existsSync(join(dir, `${q.sk.publicKey.fingerprint}.pk`));
    const before = keysAt();
    const idle = await QueryClient.register(s.cs.url, 'idle');
    assert.equal(keysAt(), before, 'a registration alone sends the key server nothing');
    await client.stats({ datasets: [large], column: 'wage', kind: 'count', epsilon: 0.1 });
    assert.ok(known(client) && known(owner), "the job registered the client's and the owner's keys");
    assert.ok(!known(idle));
  });

  it('delta: over the cap refused and free; under it charged in the ledger beside epsilon', async () => {
    const q = { datasets: [small], column: 'wage', kind: 'count' as const, epsilon: 0.5, mechanism: 'gaussian' as const };
    await rejectsWith(client.stats({ ...q, delta: 1e-6 }), 403, /allows delta at most 1e-7 per query/);
    assert.equal((await spent(small)).epsilonSpentMicro, 0);
    await client.stats({ ...q, delta: 5e-8 });
    const d = await spent(small);
    assert.equal(d.epsilonSpentMicro, 500_000);
    assert.equal(d.deltaSpentPico, 50_000);
    assert.equal(d.maxDeltaPico, 100_000);
    assert.equal(d.deltaBudgetPico, 120_000);
    // The total: 5e-8 spent of 1.2e-7, so a second 1e-7 (under the per-query cap) no longer fits.
    await rejectsWith(client.stats({ ...q, delta: 1e-7 }), 403, /delta budget 7e-8 left, the query needs 1e-7/);
    assert.equal((await spent(small)).epsilonSpentMicro, 500_000, 'nothing charged');
    await client.stats({ ...q, delta: 7e-8 });
    assert.equal((await spent(small)).deltaSpentPico, 120_000);
  });

  it('queries that could only fail later are refused at admission, free', async () => {
    const before = (await spent(large)).epsilonSpentMicro;
    await rejectsWith(client.kmeans({ datasets: [large], k: 400, maxIter: 2 }), 400, /k is at most 362/);
    const edges = Array.from({ length: 402 }, (_, i) => i / 10);
    await rejectsWith(client.stats({ datasets: [large], column: 'wage', kind: 'mode', epsilon: 0.1, edges }), 400, /at most 362 bins/);
    const few = [0, 10, 20];
    await rejectsWith(client.stats({ datasets: [large], column: 'wage', kind: 'mode', epsilon: 1e-290, edges: few }), 400, /too small for the mode/);
    assert.equal((await spent(large)).epsilonSpentMicro, before);
  });

  it('the registration limit counts an IPv6 host by its /64', () => {
    assert.equal(registrationSource('203.0.113.9'), '203.0.113.9');
    assert.equal(registrationSource('::ffff:203.0.113.9'), '203.0.113.9');
    assert.equal(registrationSource('2001:db8:1:2:aaaa::1'), registrationSource('2001:0db8:1:2:bbbb:cccc:dddd:eeee'));
    assert.notEqual(registrationSource('2001:db8:1:2::1'), registrationSource('2001:db8:1:3::1'));
    assert.equal(registrationSource('2001:db8::1'), '2001:db8:0:0::/64');
  });

  it('clients refuse a plain-http server off this machine before sending a token', () => {
    assert.throws(() => QueryClient.fromIdentity({ ...client.identity(), server: 'http://192.0.2.7:8443' }), /plain http: use https/);
  });

  it('the count routes to n are closed: errors name no count, the divisor is the public b * s', async () => {
    for (const [id, n] of [
      [small, 12],
      [large, 17],
    ] as const) {
      const tooMany = client.kmeans({ datasets: [id], k: 30, maxIter: 2 });
      await assert.rejects(tooMany, (e: Error) => !e.message.includes(String(n)) && /larger than the number of records/.test(e.message));
      const badInit = client.kmeans({ datasets: [id], k: 2, maxIter: 2, initIndices: [0, 99] });
      await assert.rejects(badInit, (e: Error) => !e.message.includes(String(n)) && /out of range/.test(e.message));
      // More blocks than records is no longer an error; the divisor depends on the query only.
      const r = await client.stats({ datasets: [id], column: 'wage', kind: 'mean', lo: 0, hi: 20, epsilon: 0.1, blocks: 40, blockSize: 3 });
      assert.ok(r.value !== undefined);
      const raw = await client.rawResult(r.jobId, statsResult);
      assert.equal(raw.divisor, String(40 * 3));
    }
  });

  it('a query with the key server down is refused before any charge; a job failing after admission is refunded', async () => {
    const q = { datasets: [large], column: 'wage', kind: 'sum' as const, lo: 0, hi: 20, epsilon: 0.25 };
    const before = (await spent(large)).epsilonSpentMicro;
    await s.ks.close();
    try {
      await rejectsWith(client.stats(q), 503, /key server is unreachable: the query was not started and nothing was charged/);
      assert.equal((await spent(large)).epsilonSpentMicro, before);
    } finally {
      s = await s.restartKeyServer();
    }
    // Admitted, then the key server goes away for good (retryForMs 0): the job fails, the charge returns.
    const jobId = await client.submit('stats', q);
    assert.equal((await spent(large)).epsilonSpentMicro, before + 250_000);
    await s.ks.close();
    try {
      for (let i = 0; i < 200 && (await client.status(jobId)).state !== 'failed'; i++) await new Promise((r) => setTimeout(r, 100));
      assert.equal((await client.status(jobId)).state, 'failed');
      for (let i = 0; i < 50 && (await spent(large)).epsilonSpentMicro !== before; i++) await new Promise((r) => setTimeout(r, 100));
      assert.equal((await spent(large)).epsilonSpentMicro, before, 'refunded');
    } finally {
      s = await s.restartKeyServer();
    }
  });

  it('a rotated token stops working at once, and a revoked one gets 401', async () => {
    const q = await QueryClient.register(s.cs.url, 'leaky');
    const old = q.identity();
    const fresh = await rotateToken(old);
    assert.notEqual(fresh.token, old.token);
    await rejectsWith(QueryClient.fromIdentity(old).datasets(), 401, /token/);
    assert.deepEqual(await QueryClient.fromIdentity(fresh).datasets(), []);
    await revokeToken(fresh);
    await rejectsWith(QueryClient.fromIdentity(fresh).datasets(), 401, /token/);
  });

  it('a leaked token alone can neither rotate nor revoke: the party must prove its X25519 key', async () => {
    const q = await QueryClient.register(s.cs.url, 'leaked');
    const mine = q.identity();
    // The thief has the token, not the identity's private key: it sends no proof, or one made with its own key.
    const { x25519PrivateKey: _, ...stolen } = mine;
    await rejectsWith(rotateToken(stolen), 403, /prove the party's X25519 key/);
    const other = (await QueryClient.register(s.cs.url, 'thief')).identity();
    await rejectsWith(rotateToken({ ...mine, x25519PrivateKey: other.x25519PrivateKey }), 403, /does not verify/);
    await rejectsWith(revokeToken({ ...mine, x25519PrivateKey: other.x25519PrivateKey }), 403, /does not verify/);
    // The owner of the key still can, and its proof cannot be replayed once the token it names is gone.
    const fresh = await rotateToken(mine);
    assert.deepEqual(await QueryClient.fromIdentity(fresh).datasets(), []);
    await rejectsWith(rotateToken(mine), 401, /token/);
    // Data owners prove theirs the same way.
    const owner = (await DataOwner.register(s.cs.url, 'owner-rotates')).identity();
    const { x25519PrivateKey: __, ...ownerStolen } = owner;
    await rejectsWith(rotateToken(ownerStolen), 403, /prove/);
    assert.notEqual((await rotateToken(owner)).token, owner.token);
  });

  it('registration is rate-limited per address', async () => {
    const limited = await startServices(512, { registrationsPerMinute: 3 });
    try {
      for (let i = 0; i < 3; i++) await QueryClient.register(limited.cs.url, `c${i}`);
      await rejectsWith(QueryClient.register(limited.cs.url, 'one too many'), 429, /too many registrations/);
    } finally {
      await limited.close();
    }
  });
});
