/**
 * The README's walkthrough, run line by line as written (only `npx ciphermine` becomes this
 * checkout's CLI, and small keys, free ports and the test database come from the documented
 * CIPHERMINE_* variables), in a fresh directory holding data/iris.csv. Then what a newcomer trips
 * on when the servers are misconfigured: a stopped key server and a wrong channel key.
 */
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { writeKeyFile } from '../../src/crypto/index.js';
import { startChildServer, type ChildServer } from '../../src/cli/child-server.js';
import { testDatabase } from './test-database.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const main = join(root, 'dist/src/cli/main.js');

/** The sh block of the README's walkthrough section, one command per entry. */
function walkthrough(): string[] {
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## Running the servers and clients yourself'));
  const block = /```sh\n([\s\S]*?)```/.exec(section)![1]!;
  return block.split('\n').filter((l) => l.startsWith('npx ciphermine '));
}

async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const { port } = srv.address() as { port: number };
  await new Promise((r) => srv.close(r));
  return port;
}

describe('the README walkthrough', () => {
  const servers: ChildServer[] = [];
  after(async () => {
    for (const s of servers.reverse()) await s.stop();
  });

  it('runs as written, then names a stopped key server and a wrong channel key', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cm-walk-'));
    mkdirSync(join(dir, 'data'));
    copyFileSync(join(root, 'data/iris.csv'), join(dir, 'data/iris.csv'));
    const [ksPort, csPort] = [await freePort(), await freePort()];
    const database = await testDatabase();
    const env = {
      ...process.env,
      CIPHERMINE_KEY_BITS: '512',
      CIPHERMINE_KEY_SERVER_PORT: String(ksPort),
      CIPHERMINE_KEY_SERVER_URL: `http://127.0.0.1:${ksPort}`,
      CIPHERMINE_COMPUTE_SERVER_PORT: String(csPort),
      CIPHERMINE_SERVER: `http://127.0.0.1:${csPort}`,
      ...(database ? { CIPHERMINE_DATABASE_URL: database } : {}),
    };
    const run = (line: string) =>
      promisify(execFile)('bash', ['-c', line.replace(/^npx ciphermine /, `"${process.execPath}" "${main}" `)], { env, cwd: dir, timeout: 120_000 });
    const ids: Record<string, string> = {};
    const outputs: Record<string, unknown> = {};
    for (const written of walkthrough()) {
      if (/ (key|compute)-server start/.test(written)) {
        const args = written.replace(/#.*$/, '').trim().split(/\s+/).slice(2);
        servers.push(await startChildServer(args, { env, cwd: dir }));
        continue;
      }
      const line = written.replace(/<(dataset|client|job) id>/g, (_, what: string) => {
        assert.ok(ids[what], `the walkthrough uses a ${what} id before printing one`);
        return ids[what]!;
      });
      const { stdout } = await run(line);
      const out = JSON.parse(stdout.trim().split('\n').at(-1)!);
      const command = written.split(' ').slice(2, 4).join(' ');
      outputs[command] = out;
      if (command === 'client register') ids.client = out.id;
      if (command === 'owner upload') ids.dataset = out.dataset;
      if (command === 'client kmeans') ids.job = out.job;
    }
    assert.equal(walkthrough().length, 14);
    assert.equal((statSync(join(dir, '.ciphermine/alice.id')).mode & 0o777).toString(8), '600');
    const upload = outputs['owner upload'] as { rows: number; columns: string[] };
    assert.equal(upload.rows, 150);
    assert.equal(upload.columns.length, 4);
    const km = outputs['client kmeans'] as { sizes: number[] };
    assert.equal(
      km.sizes.reduce((a, b) => a + b),
      150,
    );
    assert.deepEqual(outputs['client result'], outputs['client kmeans']);
    assert.ok(Number.isFinite((outputs['query stats'] as { value: number }).value));
    const granted = outputs['client datasets'] as Array<{ id: string; name: string; rows?: number }>;
    assert.deepEqual(
      granted.map((d) => [d.id, d.name, d.rows]),
      [[ids.dataset, 'iris.csv', undefined]],
    );
    const owned = outputs['owner datasets'] as Array<{ state: string; grantees: string[]; epsilonSpentMicro: number }>;
    assert.deepEqual(owned[0]!.grantees, [ids.client]);
    assert.equal(owned[0]!.epsilonSpentMicro, 500_000);
    assert.equal((outputs['client jobs'] as unknown[]).length, 2);

    // A compute server given another channel key refuses to start, and says why.
    const wrongKey = join(dir, 'wrong-channel.key');
    writeKeyFile(wrongKey, randomBytes(32));
    const wrong = startChildServer(['compute-server', 'start', '--port', '0', '--data-dir', join(dir, 'cs2'), '--channel-key', wrongKey], {
      env: { ...env, CIPHERMINE_DATABASE_URL: undefined },
      cwd: dir,
    });
    await assert.rejects(wrong, /channel keys differ/);

    // With the key server stopped, registration still works (it costs the key server nothing), and a
    // query is refused before any charge, naming the key server instead of "internal error".
    await servers[0]!.stop();
    const late = JSON.parse((await run('npx ciphermine client register --identity .ciphermine/late.id')).stdout) as { id: string };
    const again = JSON.parse(
      (await run('npx ciphermine owner upload --identity .ciphermine/alice.id --csv data/iris.csv --ignore-columns label --epsilon-budget 1')).stdout
        .trim()
        .split('\n')
        .at(-1)!,
    ) as { dataset: string };
    await run(`npx ciphermine owner grant --identity .ciphermine/alice.id --dataset ${again.dataset} --client ${late.id} --scope stats`);
    await assert.rejects(
      run(`npx ciphermine query stats --identity .ciphermine/late.id --datasets ${again.dataset} --column petal_length --kind count --epsilon 0.1`),
      (e: Error & { stderr: string }) =>
        /the key server is unreachable: the query was not started and nothing was charged/.test(e.stderr) ? true : assert.fail(e.stderr),
    );
  });
});
