// Builds the optional GMP addon (native/). Failure is not fatal: Ciphermine then falls back to
// OpenSSL + BigInt arithmetic, slower but correct. Headers come from the local Node installation,
// so nothing is downloaded.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';

const nodeDir = dirname(dirname(process.execPath));
const args = ['rebuild', '--directory=native'];
if (existsSync(join(nodeDir, 'include', 'node', 'node_api.h'))) args.push(`--nodedir=${nodeDir}`);
// npm passes its bundled node-gyp; run by hand, look for the one next to this Node's npm.
const bundled = join(nodeDir, 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
const gyp = process.env.npm_config_node_gyp ?? (existsSync(bundled) ? bundled : undefined);
const cmd = gyp ? [process.execPath, [gyp, ...args]] : ['node-gyp', args];
const result = spawnSync(cmd[0], cmd[1], { stdio: 'inherit' });
if (result.status !== 0) {
  console.warn('ciphermine: the native GMP addon did not build; using the OpenSSL/BigInt fallback.');
}
