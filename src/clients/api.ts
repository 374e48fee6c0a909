/** A small JSON client for the compute server's API, turning error answers into typed errors. */
import { CiphermineError, isErrorCode } from '../crypto/errors.js';

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

export class ComputeServerApi {
  constructor(
    readonly baseUrl: string,
    private token?: string,
  ) {}

  withToken(token: string): ComputeServerApi {
    return new ComputeServerApi(this.baseUrl, token);
  }

  async request<T>(method: 'GET' | 'POST' | 'PUT' | 'DELETE', path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = {};
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    let res: Response;
    const payload = body === undefined ? undefined : JSON.stringify(body);
    try {
      res = await fetch(`${this.baseUrl}${path}`, { method, headers, body: payload });
    } catch (e) {
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
