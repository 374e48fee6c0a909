/**
 * The federated k-means job kind (seed 003, generalised from two hosts to any number). The hosts
 * keep their records and do the assignment step locally (clients/host.ts); this job, on the compute
 * server (CCS), only adds up what they send, each round:
 *   1. every host encrypts its vector (per-column moments for the private mean, its initial rows,
 *      then per iteration its per-cluster sums S_j and counts n_j) under the job key pk_c and posts
 *      it to the job's mailbox;
 *   2. the compute server multiplies the hosts' ciphertexts (adds the plaintexts): seed 003's third
 *      party combining with Paillier;
 *   3. the total moves to each host's own key by SCT (sct.ts): the compute server blinds it with a
 *      uniform r, the key server (KMS) decrypts only the blinded value and re-encrypts it under the
 *      host's key, the compute server removes r. Neither server sees a total.
 * The hosts decrypt, take the next step and decide together (they hold the same totals) whether to
 * stop. The servers never connect to a host: hosts poll (mailbox-routes.ts).
 */
import { randomInt } from 'node:crypto';
import { CiphermineError, InvalidCiphertextError } from '../../../crypto/errors.js';
import {
  add,
  bitLength,
  deserializeCiphertexts,
  deserializePublicKey,
  serializeCiphertexts,
  serializePublicKey,
  FixedPointCodec,
  type BcpPublicKey,
  type Ciphertext,
} from '../../../crypto/index.js';
import { sctFanoutPacked } from '../../../protocols/index.js';
import { shareSlotBits } from '../../../protocols/inner-distances.js';
import type { NoiseSpec } from '../../../crypto/noise/mechanisms.js';
import { clusterVector, momentsLength } from '../../../analytics/federated-kmeans.js';
import { badRequest } from '../../http-errors.js';
import { addNoise, roundNoise } from './federated-kmeans-noise.js';
import { defineJobKind, type JobContext } from '../job-kind.js';
import { federatedKmeansResult, federatedKmeansSpec, hostRound, type HostStart } from './federated-kmeans-schema.js';

type Spec = ReturnType<typeof federatedKmeansSpec.parse>;

/** Records a job may span in total: with maxAbs it bounds every sum the hosts send (section 6 of DESIGN). */
const MAX_RECORDS_BITS = 40;

export const federatedKmeansKind = defineJobKind({
  name: 'federated-kmeans',
  description: 'k-means over records that stay with their hosts; the servers only add encrypted per-cluster sums (seed 003)',
  spec: federatedKmeansSpec,
  result: federatedKmeansResult,
  participants: (spec) => spec.hosts,

  async admit({ services }, spec) {
    for (const id of spec.hosts) if (!(await services.store.party(id))) throw badRequest(`no registered party ${id} to be a host`);
    // Sums of squares (zscore) are the largest values: n maxEncoded^2 must stay below N/2 with room.
    const maxEncoded = new FixedPointCodec({ fractionBits: spec.fractionBits, maxAbs: spec.maxAbs }).maxEncoded;
    const need = MAX_RECORDS_BITS + 2 * (bitLength(maxEncoded) + 1) + 2;
    if (need >= bitLength(services.params.N) - 2)
      throw new CiphermineError(
        'ERR_BIT_BUDGET',
        `sums of up to 2^${MAX_RECORDS_BITS} records of |value| <= ${spec.maxAbs} need ${need} bits, N has ${bitLength(services.params.N)}`,
      );
    const widest = Math.max(...['moments', 'round-1'].map((t) => shareSlotBits(totalBits(spec, t, roundNoise(spec, t)))));
    if (widest > bitLength(services.params.N) - 2)
      throw new CiphermineError(
        'ERR_BIT_BUDGET',
        `the totals need ${widest}-bit slots, N has ${bitLength(services.params.N)} bits: lower maxAbs or epsilon's noise`,
      );
    return { spec };
  },

  async run(ctx) {
    // A run after an outage (or a restart) starts the protocol over: the hosts see a new start.
    ctx.mailbox.reset();
    const jobKey = await ctx.jobKey();
    const hosts = await hostKeys(ctx);
    const m = ctx.spec.columns.length;
    const k = ctx.spec.k;
    await ctx.phase('joining', () => join(ctx, hosts, jobKey));
    await ctx.phase('normalisation', () => round(ctx, hosts, jobKey, 'moments', momentsLength(m, ctx.spec.normalize)));
    await ctx.phase('initialisation', () => round(ctx, hosts, jobKey, 'init', k * m));
    const vectorLength = clusterVector({ sums: [new Array(m).fill(0n)], sizes: [0n] }).length * k;
    for (let t = 1; ; t++) {
      const start = performance.now();
      const stop = await ctx.phase('iterations', () => round(ctx, hosts, jobKey, `round-${t}`, vectorLength));
      await ctx.time(`iteration ${t}`, (performance.now() - start) / 1000);
      if (stop)
        return {
          iterations: t - 1,
          converged: stop.converged,
          hosts: hosts.length,
          columns: ctx.spec.columns,
          normalize: ctx.spec.normalize,
          fractionBits: ctx.spec.fractionBits,
          epsilon: ctx.spec.epsilon ?? null,
        };
      await ctx.progress(t, ctx.spec.maxIter, 'iteration');
      if (t > ctx.spec.maxIter) throw new CiphermineError('ERR_HOST_INPUT', `the hosts went on past the iteration limit of ${ctx.spec.maxIter}`);
    }
  },
});

interface HostParty {
  id: string;
  name: string;
  key: BcpPublicKey;
}

/** The hosts' keys, registered at the key server so it can re-encrypt totals under them. */
async function hostKeys(ctx: JobContext<Spec>): Promise<HostParty[]> {
  const { store, params, compute } = ctx.services;
  return Promise.all(
    ctx.spec.hosts.map(async (id) => {
      const p = (await store.party(id))!;
      const key = deserializePublicKey(p.bcpPublicKey, params);
      await compute.transport.call('register-key', serializePublicKey(key));
      return { id, name: p.name, key };
    }),
  );
}

/** Sends every host the job key and its part of the spec, then waits for each to join with matching columns. */
async function join(ctx: JobContext<Spec>, hosts: HostParty[], jobKey: BcpPublicKey): Promise<void> {
  const s = ctx.spec;
  hosts.forEach((h, i) => {
    const start: HostStart = {
      jobKey: serializePublicKey(jobKey).toString('base64'),
      hostIndex: i,
      columns: s.columns,
      k: s.k,
      maxIter: s.maxIter,
      tolerance: s.tolerance,
      normalize: s.normalize,
      fractionBits: s.fractionBits,
      maxAbs: s.maxAbs,
      // Only its own initial rows: a host does not learn which host holds the other centres.
      init: s.init === 'random' ? 'random' : s.init.flatMap((c, cluster) => (c.host === i ? [{ cluster, row: c.row }] : [])),
    };
    ctx.mailbox.send(h.id, 'start', Buffer.from(JSON.stringify(start)));
  });
  const joins = await gather(ctx, hosts, 'join');
  joins.forEach((body, i) => {
    const { columns, abort } = body as { columns?: unknown; abort?: unknown };
    if (typeof abort === 'string') throw new CiphermineError('ERR_HOST_INPUT', `host ${named(hosts[i]!)} stopped the job: ${abort.slice(0, 500)}`);
    if (!Array.isArray(columns) || columns.join('\n') !== s.columns.join('\n'))
      throw new CiphermineError(
        'ERR_HOST_INPUT',
        `host ${named(hosts[i]!)} has columns ${JSON.stringify(columns)}, the job expects ${JSON.stringify(s.columns)}`,
      );
  });
}

/**
 * One round: every host's vector under the job key, added up, released to every host under its
 * own key. Returns the hosts' common decision instead when they all said stop.
 */
async function round(
  ctx: JobContext<Spec>,
  hosts: HostParty[],
  jobKey: BcpPublicKey,
  topic: string,
  length: number,
): Promise<{ converged: boolean } | undefined> {
  const bodies = (await gather(ctx, hosts, topic)).map((b, i) => parseRound(b, hosts[i]!, topic));
  const stops = bodies.map((b) => ('stop' in b ? b : undefined));
  if (stops.every(Boolean)) {
    if (stops.some((x) => x!.converged !== stops[0]!.converged))
      throw new CiphermineError('ERR_HOST_INPUT', `the hosts disagree on convergence in ${topic}`);
    return { converged: stops[0]!.converged };
  }
  const stopped = hosts.filter((_, i) => stops[i]);
  if (stopped.length)
    throw new CiphermineError('ERR_HOST_INPUT', `host ${stopped.map(named).join(', ')} stopped at ${topic} while the others went on`);
  const start = performance.now();
  const vectors = bodies.map((b, i) => ciphertextsOf((b as { cts: string }).cts, hosts[i]!, jobKey, length, topic));
  const exact =
    topic === 'init' && ctx.spec.init === 'random'
      ? drawCandidates(vectors, ctx.spec.k)
      : vectors.reduce((acc, v) => acc.map((c, j) => add(c, v[j]!)));
  const noise = roundNoise(ctx.spec, topic);
  const total = noise ? await addNoise(ctx.services.compute, jobKey, exact, noise, ctx.services.noise) : exact;
  // One blinding and one key-server decryption per value, re-encrypted under every host's key.
  // One blinding per value, one key-server decryption per pack, each pack re-encrypted under every host's key.
  const { slotBits, packs } = await sctFanoutPacked(
    ctx.services.compute,
    total,
    hosts.map((h) => h.key),
    totalBits(ctx.spec, topic, noise),
  );
  hosts.forEach((h, i) => {
    const release = { slotBits, count: length, cts: serializeCiphertexts(h.key, packs[i]!).toString('base64') };
    ctx.mailbox.send(h.id, topic, Buffer.from(JSON.stringify(release)));
  });
  await ctx.time('aggregate and release', (performance.now() - start) / 1000);
  return undefined;
}

/**
 * A random start: each cluster's centre is the candidate for that cluster of a host drawn uniformly
 * (every host proposed k rows of its own). The compute server knows which host it drew, never the
 * row; the hosts get the centres without knowing whose they are (the release re-randomises them).
 */
function drawCandidates(vectors: Ciphertext[][], k: number): Ciphertext[] {
  const m = vectors[0]!.length / k;
  const from = Array.from({ length: k }, () => randomInt(vectors.length));
  return vectors[0]!.map((_, i) => vectors[from[Math.floor(i / m)]!]![i]!);
}

/**
 * A bound, in bits, on |total| of a round's values: what the packed release's slots must hold. Up
 * to 2^40 records; normalised values are below 2 maxAbs 2^f after mean-centring and below
 * sqrt(n) 2^f as z-scores; Laplace noise exceeds 256 scales with probability below e^-256.
 */
export function totalBits(s: Spec, topic: string, noise: NoiseSpec[] | undefined): number {
  const enc = bitLength(new FixedPointCodec({ fractionBits: s.fractionBits, maxAbs: s.maxAbs }).maxEncoded);
  const normalised = Math.max(enc + 1, s.normalize === 'zscore' ? MAX_RECORDS_BITS / 2 + s.fractionBits + 1 : 0);
  const base =
    topic === 'moments'
      ? MAX_RECORDS_BITS + (s.normalize === 'zscore' ? 2 * enc : enc)
      : topic === 'init'
        ? normalised
        : MAX_RECORDS_BITS + normalised;
  const tail = noise ? Math.max(...noise.map((n) => bitLength((n.param.num + n.param.den - 1n) / n.param.den))) + 8 : 0;
  return Math.max(base, tail) + 2;
}

function parseRound(body: unknown, host: HostParty, topic: string) {
  const r = hostRound.safeParse(body);
  if (!r.success) throw new CiphermineError('ERR_HOST_INPUT', `host ${named(host)} sent a malformed message for ${topic}`);
  if ('abort' in r.data) throw new CiphermineError('ERR_HOST_INPUT', `host ${named(host)} stopped the job: ${r.data.abort}`);
  return r.data;
}

/** A host's vector: exactly `length` well-formed ciphertexts under the job key, or the job fails naming the host. */
function ciphertextsOf(base64: string, host: HostParty, jobKey: BcpPublicKey, length: number, topic: string): Ciphertext[] {
  let cs: Ciphertext[];
  try {
    cs = deserializeCiphertexts(Buffer.from(base64, 'base64'), jobKey, length);
  } catch (e) {
    throw new InvalidCiphertextError(`host ${named(host)} sent malformed ciphertexts for ${topic}: ${(e as Error).message}`);
  }
  if (cs.length !== length)
    throw new InvalidCiphertextError(`host ${named(host)} sent ${cs.length} ciphertexts for ${topic}, the job expects ${length}`);
  return cs;
}

/**
 * Every host's JSON message on `topic`. A host that sends nothing within the job's timeout fails
 * the job, named, with whether it was ever seen (absent at the start) or went away (left).
 */
async function gather(ctx: JobContext<Spec>, hosts: HostParty[], topic: string): Promise<unknown[]> {
  const timeoutMs = ctx.spec.hostTimeoutSeconds * 1000;
  const got = new Array<Buffer | undefined>(hosts.length);
  const since = Date.now();
  for (;;) {
    for (let i = 0; i < hosts.length; i++) got[i] ??= await ctx.mailbox.receive(hosts[i]!.id, topic, 0);
    if (got.every(Boolean)) break;
    // The timeout runs from the round's start: a host busy with its local step does not poll either.
    const idle = Date.now() - since > timeoutMs ? hosts.filter((_, i) => !got[i]) : [];
    if (idle.length) throw absent(ctx, idle, topic);
    await new Promise((r) => setTimeout(r, 20));
  }
  return got.map((b, i) => {
    try {
      return JSON.parse(b!.toString('utf8')) as unknown;
    } catch {
      throw new CiphermineError('ERR_HOST_INPUT', `host ${named(hosts[i]!)} sent a message that is not JSON for ${topic}`);
    }
  });
}

function absent(ctx: JobContext<Spec>, missing: HostParty[], topic: string): CiphermineError {
  const s = ctx.spec.hostTimeoutSeconds;
  const what = missing.map((h) => `${named(h)} ${ctx.mailbox.seen(h.id) === undefined ? 'never joined' : 'left'}`).join('; ');
  return new CiphermineError('ERR_HOST_ABSENT', `waited ${s} s for ${topic}: host ${what}`);
}

function named(h: HostParty): string {
  return `'${h.name}' (${h.id})`;
}
