/**
 * The compute server's (party 0) engine sessions. With a dealer configured, both servers take the
 * session's correlated randomness from it. Otherwise (the default, no third party) the `ot`
 * provider: base OTs run once per link to the key server and are forked for every session
 * (ot/base-ot-cache.ts), so a short session costs hashes, not public-key operations. A key server
 * that lost the base (a restart) answers the start with ERR_UNKNOWN_OT_BASE, and the session
 * starts again on new base OTs.
 */
import { randomBytes } from 'node:crypto';
import { RemoteError, type Transport } from '../protocols/transport.js';
import { forkBase, MAX_FORKS, newBase, type OtBase } from './ot/base-ot-cache.js';
import { mpcParty, type MpcParty } from './party.js';
import { OtProvider } from './provider/ot.js';
import { remoteDealerProvider } from './provider/dealer-http.js';
import type { ComputeSideContext } from '../protocols/round-trip.js';
import { BASE_OT_PROGRAM, startRemote, TransportChannel } from './server-channel.js';

interface CachedBase {
  id: string;
  base: Promise<OtBase>;
  forks: number;
}

const cache = new WeakMap<Transport, CachedBase>();

function currentBase(transport: Transport): CachedBase {
  let c = cache.get(transport);
  if (!c || c.forks >= MAX_FORKS) {
    const id = `base-${randomBytes(12).toString('hex')}`;
    const base = startRemote(transport, BASE_OT_PROGRAM, id, { id }).then(() => newBase(new TransportChannel(transport, id)));
    c = { id, base, forks: 0 };
    cache.set(transport, c);
  }
  return c;
}

function forget(transport: Transport, c: CachedBase): void {
  if (cache.get(transport) === c) cache.delete(transport);
}

/** Starts the key server's half of `program` for `session` and returns party 0 of the session. */
export async function startEngineSession(
  ctx: ComputeSideContext,
  program: string,
  session: string,
  args: Record<string, unknown>,
): Promise<MpcParty> {
  if (!ctx.dealer) return startOtSession(ctx.transport, program, session, args);
  const { url, key, fingerprint } = ctx.dealer;
  await startRemote(ctx.transport, program, session, { ...args, provider: 'dealer' });
  return mpcParty(0, new TransportChannel(ctx.transport, session), await remoteDealerProvider(0, url, key, session, fingerprint));
}

async function startOtSession(transport: Transport, program: string, session: string, args: Record<string, unknown>): Promise<MpcParty> {
  for (let attempt = 0; ; attempt++) {
    const c = currentBase(transport);
    const base = await c.base.catch((e) => {
      forget(transport, c);
      throw e;
    });
    c.forks++;
    try {
      await startRemote(transport, program, session, { ...args, otBase: c.id });
    } catch (e) {
      forget(transport, c);
      if (attempt === 0 && e instanceof RemoteError && e.code === 'ERR_UNKNOWN_OT_BASE') continue;
      throw e;
    }
    const provider = new OtProvider(0, new TransportChannel(transport, `${session}:ot`), forkBase(base, session));
    return mpcParty(0, new TransportChannel(transport, session), provider);
  }
}
