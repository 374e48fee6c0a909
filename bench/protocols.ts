/**
 * `npm run bench:protocols [-- --key-bits 2048 --batch 1000 --json]`: ms per element of SCT, SM,
 * secure square and SDC over the HTTP transport on loopback, the key server in its own process
 * (with its worker pool), the compute server side in this one (with its own pool).
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { setup, keyGen, serializeMasterKey, serializePublicKey, WorkerPool, backend, randomBelow } from '../src/crypto/index.js';
import { HttpTransport, createProtocolPool, sct, secureMultiply, secureSquare, secureCompare } from '../src/protocols/index.js';
import { measure, parseFlags, round } from './measure.js';

const flags = parseFlags(process.argv.slice(2));
const bits = Number(flags.get('key-bits') ?? 2048);
const batch = Number(flags.get('batch') ?? 1000);
const json = flags.has('json');
const log = (s: string) => json || console.error(s);

const { params, p, q } = setup(bits);
const { BcpMasterKey } = await import('../src/crypto/index.js');
const msk = new BcpMasterKey(params, p, q);
const hmacKey = randomBytes(32);
const child = spawn(process.execPath, [new URL('./key-server-process.js', import.meta.url).pathname], { stdio: ['pipe', 'pipe', 'inherit'] });
child.stdin.end(JSON.stringify({ msk: serializeMasterKey(msk).toString('hex'), hmacKey: hmacKey.toString('hex') }));
const [line] = (await once(child.stdout, 'data')) as [Buffer];
const url = line.toString().trim();
const transport = new HttpTransport(url, hmacKey);
const pool = createProtocolPool();
const alice = { transport, pool };

const owner = keyGen(params);
const target = keyGen(params);
for (const k of [owner, target]) await transport.call('register-key', serializePublicKey(k.publicKey));
owner.publicKey.precompute();

const floor = measure((i) => backend().modPow(randomBelow(params.N2) | 1n, params.N - BigInt(i), params.N2), 200, 3).msPerOp;
const pk = owner.publicKey;
const values = Array.from({ length: batch }, (_, i) => BigInt(i) - BigInt(batch / 2));
const cts = pk.encryptBatch(values);
const omegas = pk.encryptBatch(values.map((v) => v * v));

async function perElement(name: string, f: () => Promise<unknown>): Promise<number> {
  const t = performance.now();
  await f();
  const ms = (performance.now() - t) / batch;
  log(`${name}: ${ms.toFixed(3)} ms/element`);
  return round(ms);
}

const results = {
  sct: await perElement('SCT', () => sct(alice, cts, target.publicKey)),
  sm: await perElement('SM', () => secureMultiply(alice, cts, cts)),
  secureSquare: await perElement('secure square', () => secureSquare(alice, cts)),
  sdc: await perElement('SDC', () =>
    secureCompare(
      alice,
      omegas.map((o, i) => ({ omegaA: o, omegaB: omegas[(i + 1) % batch]!, sizeA: 1n, sizeB: 1n })),
      64,
    ),
  ),
};
console.log(
  JSON.stringify({
    keyBits: bits,
    batch,
    transport: 'http-loopback, key server in a separate process',
    date: new Date().toISOString(),
    modexpFloorMs: round(floor),
    msPerElement: results,
    overFloor: Object.fromEntries(Object.entries(results).map(([k, v]) => [k, round(v / floor, 3)])),
  }),
);
child.kill('SIGTERM');
await pool.close();
process.exit(0);
