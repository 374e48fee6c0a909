/**
 * The key server's engine: its session endpoint with the key server's halves of the engine-based
 * protocols registered against its state, and the request handler that puts the engine's two
 * methods in front of the homomorphic protocols' (the same authenticated channel carries both).
 */
import type { KeyServerState } from '../protocols/key-server-state.js';
import type { RequestHandler } from '../protocols/transport.js';
import type { DealerEndpoint } from '../protocols/round-trip.js';
import { registerHiddenLessThan } from './hidden-less-than.js';
import { registerHiddenArgmin } from './hidden-argmin.js';
import { registerNearestCentroid } from './nearest-centroid.js';
import { MpcEndpoint } from './server-channel.js';

export function keyServerEngine(
  state: KeyServerState,
  handle: RequestHandler,
  log?: (m: string) => void,
  dealer?: DealerEndpoint,
): { endpoint: MpcEndpoint; handle: RequestHandler } {
  const endpoint = new MpcEndpoint({ log, dealer });
  registerHiddenLessThan(endpoint, state);
  registerHiddenArgmin(endpoint, state);
  registerNearestCentroid(endpoint, state);
  return { endpoint, handle: async (method, body) => (await endpoint.handle(method, body)) ?? handle(method, body) };
}
