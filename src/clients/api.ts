/** A small JSON client for the compute server's API, turning error answers into typed errors. */
import type { Dispatcher } from 'undici';
import { CiphermineError, isErrorCode, ParameterError } from '../crypto/errors.js';
import { deserializeParams } from '../crypto/serialize.js';
import { requireSecureUrl } from '../crypto/tls.js';
import { pinnedDispatcher, pinErrorOf } from '../protocols/pinned-tls.js';
import { checkPinned } from './pins.js';

export class ApiError extends CiphermineError {
  constructor(
    readonly status: number,
    code: string,
    message: string,
  ) {
    // A code this client does not know (a newer server) still arrives as a typed error.
    super(isErrorCode(code) ? code : 'ERR_REMOTE', message);
  }
}

/** True for a failure worth retrying: the server unreachable, restarting or overloaded. */
export function isTransient(e: unknown): boolean {
  return e instanceof ApiError && (e.code === 'ERR_UNREACHABLE' || (e.status >= 502 && e.status <= 504));
}

/** What a party trusts about its compute server, pinned at registration (pins.ts). */
export interface ServerPins {
  /** SHA-256 of the compute server's TLS certificate (https servers). */
  tls?: string;
  /** The public parameters' fingerprint: checked against /v1/info before the first request. */
  params?: string;
}

export class ComputeServerApi {
  private readonly dispatcher?: Dispatcher;
  private verified?: Promise<void>;

  constructor(
    readonly baseUrl: string,
    private token?: string,
    readonly pins: ServerPins = {},
  ) {
    requireSecureUrl(baseUrl, 'the compute server');
    if (baseUrl.startsWith('https:')) {
      if (!pins.tls) throw new ParameterError(`no TLS certificate is pinned for ${baseUrl}: register with this server again`);
      this.dispatcher = pinnedDispatcher(pins.tls, 'the compute server');
    }
  }

  withToken(token: string): ComputeServerApi {
    return new ComputeServerApi(this.baseUrl, token, this.pins);
  }

  /** Once per client: the server still serves the pinned public parameters. */
  private verify(): Promise<void> {
    this.verified ??= (async () => {
      if (!this.pins.params) return;
      const info = await this.send<{ params: string }>('GET', '/v1/info');
      checkPinned('public parameters', this.baseUrl, deserializeParams(Buffer.from(info.params, 'base64')).fingerprint, this.pins.params);
    })().catch((e) => {
      this.verified = undefined;
      throw e;
    });
    return this.verified;
  }

  async request<T>(method: 'GET' | 'POST' | 'PUT' | 'DELETE', path: string, body?: unknown, extraHeaders: Record<string, string> = {}): Promise<T> {
    await this.verify();
    return this.send<T>(method, path, body, extraHeaders);
  }

  private async send<T>(
    method: 'GET' | 'POST' | 'PUT' | 'DELETE',
    path: string,
    body?: unknown,
    extraHeaders: Record<string, string> = {},
  ): Promise<T> {
    const headers: Record<string, string> = { ...extraHeaders };
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    let res: Response;
    const payload = body === undefined ? undefined : JSON.stringify(body);
    try {
      res = await fetch(`${this.baseUrl}${path}`, {
        method,
        headers,
        body: payload,
        // A redirect would carry the bearer token somewhere nobody pinned.
        redirect: 'error',
        ...(this.dispatcher ? { dispatcher: this.dispatcher } : {}),
      } as RequestInit);
    } catch (e) {
      const pin = pinErrorOf(e);
      if (pin) throw pin;
      throw new ApiError(0, 'ERR_UNREACHABLE', `cannot reach the compute server at ${this.baseUrl}: ${(e as Error).message}`);
    }
    if (res.status === 413) {
      throw new ApiError(
        413,
        'ERR_TOO_LARGE',
        `the compute server refused a ${payload?.length ?? 0}-byte request to ${path} as larger than its body limit`,
      );
    }
    const text = await res.text();
    let json: unknown;
    try {
      json = text ? JSON.parse(text) : {};
    } catch {
      throw new ApiError(res.status, 'ERR_BAD_RESPONSE', `the compute server answered ${res.status} with non-JSON`);
    }
    if (!res.ok) {
      const err = (json as { error?: { code?: string; message?: string }; message?: string }).error;
      throw new ApiError(res.status, err?.code ?? 'ERR_HTTP', err?.message ?? (json as { message?: string }).message ?? `HTTP ${res.status}`);
    }
    return json as T;
  }
}
