/**
 * `npm run bench [-- --key-bits 2048 --json]`: BCP operations against the raw modexp floor of the
 * same run (one exponentiation modulo N^2 with an exponent of N's size, fastest backend), and
 * paillier-bigint's encryption at the same modulus, side by side.
 */
import { cpus } from 'node:os';
import { createBackend, setup, keyGen, BcpMasterKey, add, scalarMultiply, randomBelow, backend } from '../src/crypto/index.js';
import { loadNativeGmp } from '../src/crypto/backend-gmp.js';
import { KmsEncryptor, KmsRerandomizer } from '../src/crypto/kms-paillier.js';
import { measure, parseFlags, round, type Rate } from './measure.js';

const flags = parseFlags(process.argv.slice(2));
const bits = Number(flags.get('key-bits') ?? 2048);
const json = flags.has('json');
const log = (s: string) => json || console.error(s);

log(`setup at ${bits} bits (safe primes)...`);
let t = performance.now();
const { params, p, q } = setup(bits);
const setupMs = performance.now() - t;
const { N, N2 } = params;
const sk = keyGen(params);
const pk = sk.publicKey;
const msk = new BcpMasterKey(params, p, q);
t = performance.now();
pk.precompute();
const tablesMs = performance.now() - t;

const exps = Array.from({ length: 64 }, () => randomBelow(N));
const base = randomBelow(N2);
const floors: Record<string, Rate> = {};
for (const name of ['openssl', ...(loadNativeGmp() ? ['gmp'] : []), 'js']) {
  const be = createBackend(name);
  const powm =
    name === 'gmp' ? (i: number) => loadNativeGmp()!.powm(base, exps[i % 64]!, N2, false) : (i: number) => be.modPow(base, exps[i % 64]!, N2);
  floors[name] = measure(powm, name === 'js' ? 600 : 300, name === 'js' ? 3 : 5);
  log(`modexp ${name}: ${floors[name]!.msPerOp} ms`);
}
const [floorName, floor] = Object.entries(floors).sort((a, b) => a[1].msPerOp - b[1].msPerOp)[0]!;

const kmsEnc = new KmsEncryptor(params.N, msk.p, msk.q);
const kmsRe = new KmsRerandomizer(params.N);
const cts = Array.from({ length: 64 }, (_, i) => pk.encrypt(BigInt(i) - 32n));
const scalars = Array.from({ length: 64 }, () => randomBelow(1n << 64n));
const ops: Record<string, Rate> = {
  modexpFloor: floor,
  encrypt: measure((i) => pk.encrypt(BigInt(i))),
  decrypt: measure((i) => sk.decrypt(cts[i % 64]!)),
  masterDecrypt: measure((i) => msk.decrypt(cts[i % 64]!)),
  add: measure((i) => add(cts[i % 64]!, cts[(i + 1) % 64]!)),
  scalarMul64: measure((i) => scalarMultiply(cts[i % 64]!, scalars[i % 64]!)),
  // KMS form (kms-paillier.ts): the key server's CRT encryption and the compute server's fresh factor.
  kmsEncryptCrt: measure((i) => kmsEnc.encrypt(BigInt(i))),
  kmsRerandomizeFactor: measure(() => kmsRe.factor()),
};
for (const [k, v] of Object.entries(ops)) log(`${k}: ${v.msPerOp} ms/op`);

log('paillier-bigint key generation...');
const paillier = await import('paillier-bigint');
const { publicKey: ppk } = await paillier.generateRandomKeys(bits);
const paillierEncrypt = measure((i) => ppk.encrypt(BigInt(i)), 500, 3);
log(`paillier-bigint encrypt: ${paillierEncrypt.msPerOp} ms/op`);

const result = {
  keyBits: bits,
  backend: backend().name,
  floorBackend: floorName,
  machine: { cpu: cpus()[0]?.model, cores: cpus().length, node: process.version },
  date: new Date().toISOString(),
  ops,
  ratios: {
    encryptOverFloor: round(ops.encrypt!.msPerOp / floor.msPerOp, 3),
    decryptOverFloor: round(ops.decrypt!.msPerOp / floor.msPerOp, 3),
    masterDecryptOverFloor: round(ops.masterDecrypt!.msPerOp / floor.msPerOp, 3),
    kmsEncryptCrtOverFloor: round(ops.kmsEncryptCrt!.msPerOp / floor.msPerOp, 3),
    paillierBigintEncryptOverOurs: round(paillierEncrypt.msPerOp / ops.encrypt!.msPerOp, 3),
  },
  baselines: { modexpByBackend: floors, paillierBigintEncrypt: paillierEncrypt },
  oneOff: { setupMs: round(setupMs), fixedBaseTablesMs: round(tablesMs) },
};
console.log(JSON.stringify(result, json ? undefined : null, json ? undefined : 2));
process.exit(0);
