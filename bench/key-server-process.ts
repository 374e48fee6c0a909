/**
 * A key server in its own process for benchmarks: reads the master key and HMAC key (hex) from
 * stdin as JSON, serves over HTTP on loopback with a worker pool, prints its URL on stdout.
 */
import { deserializeMasterKey, WorkerPool } from '../src/crypto/index.js';
import { KeyServerCore, serveHttp } from '../src/protocols/index.js';

let input = '';
for await (const chunk of process.stdin) input += chunk;
const { msk, hmacKey } = JSON.parse(input) as { msk: string; hmacKey: string };
const core = new KeyServerCore(deserializeMasterKey(Buffer.from(msk, 'hex')), new WorkerPool());
const server = await serveHttp(core.handle, { hmacKey: Buffer.from(hmacKey, 'hex') });
console.log(server.url);
process.on('SIGTERM', () => void server.close().then(() => process.exit(0)));
