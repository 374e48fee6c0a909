/** Picks the fastest backend available on this machine, once per process (or worker). */
import type { BignumBackend } from './backend.js';
import { JsBackend } from './backend-js.js';
import { OpenSslBackend } from './backend-openssl.js';
import { GmpBackend, loadNativeGmp } from './backend-gmp.js';
import { ParameterError } from './errors.js';

let selected: BignumBackend | undefined;

export function createBackend(name: string | undefined): BignumBackend {
  switch (name) {
    case 'js':
      return new JsBackend();
    case 'openssl':
      return new OpenSslBackend();
    case 'gmp': {
      const gmp = loadNativeGmp();
      if (!gmp) throw new ParameterError('the native GMP addon is not built (run npm install with libgmp-dev)');
      return new GmpBackend(gmp);
    }
    case undefined:
    case '': {
      const gmp = loadNativeGmp();
      return gmp ? new GmpBackend(gmp) : new OpenSslBackend();
    }
    default:
      throw new ParameterError(`unknown backend ${name} (use gmp, openssl or js)`);
  }
}

/** The process-wide backend; CIPHERMINE_BACKEND=gmp|openssl|js overrides the automatic choice. */
export function backend(): BignumBackend {
  selected ??= createBackend(process.env.CIPHERMINE_BACKEND);
  return selected;
}
