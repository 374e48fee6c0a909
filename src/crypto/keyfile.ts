/**
 * Key files: serialised keys written with mode 0600 and refused on read when group or others can
 * read them (as ssh does), since a leaked msk or sk opens data.
 */
import { chmodSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { CiphermineError } from './errors.js';

export class KeyFileError extends CiphermineError {
  constructor(message: string) {
    super('ERR_KEY_FILE', message);
  }
}

export function writeKeyFile(path: string, bytes: Uint8Array): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  writeFileSync(path, bytes, { mode: 0o600 });
  chmodSync(path, 0o600); // writeFileSync keeps the mode of a file that already existed
}

export function readKeyFile(path: string): Buffer {
  let mode: number;
  try {
    mode = statSync(path).mode;
  } catch {
    throw new KeyFileError(`key file ${path} does not exist`);
  }
  if (mode & 0o077) {
    throw new KeyFileError(`key file ${path} is accessible by others (mode ${(mode & 0o777).toString(8)}); run chmod 600`);
  }
  return readFileSync(path);
}
