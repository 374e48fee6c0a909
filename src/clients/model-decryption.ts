/**
 * A data owner's side of the joint model decryption (crypto/joint-decryption.ts, services/model-routes.ts):
 * it checks that the model is under the joint key of exactly its owners, posts its partial
 * decryption with its proof to each other owner (sealed for that owner alone), collects theirs,
 * verifies each against its author's public key, and combines. Every owner must take part: a
 * missing partial is named, and so is one that does not verify; never a wrong model.
 */
import type { KeyObject } from 'node:crypto';
import type { BcpSecretKey } from '../crypto/bcp-keys.js';
import { deriveEnvelopeKey } from '../crypto/key-agreement.js';
import { openEnvelope, seal } from '../crypto/envelope.js';
import {
  combinePartials,
  jointPublicKey,
  partialDecrypt,
  verifyPartial,
  type PartialDecryption,
  PartialDecryptionError,
} from '../crypto/joint-decryption.js';
import { deserializeCiphertexts, deserializePublicKey } from '../crypto/serialize.js';
import { CiphermineError } from '../crypto/errors.js';
import type { ComputeServerApi } from './api.js';
import { modelFile, unpackModel, type ModelFile, type ModelMeta } from './model-file.js';

export type { ModelFile } from './model-file.js';

interface ModelInfo {
  model: string;
  jointKey: string;
  owners: Array<{ id: string; bcpPublicKey: string; x25519PublicKey: string }>;
  partials: Array<{ from: string; envelope: string }>;
  posted: boolean;
  job: ModelMeta;
}

export interface OwnerKeys {
  api: ComputeServerApi;
  id: string;
  sk: BcpSecretKey;
  x25519: KeyObject;
}

export class MissingPartialError extends CiphermineError {
  constructor(missing: readonly string[]) {
    super(
      'ERR_CONFLICT',
      `waiting for the partial decryption of owner${missing.length > 1 ? 's' : ''} ${missing.join(', ')}: every owner must run 'ciphermine owner decrypt-model'`,
    );
  }
}

const b64 = (s: string) => Buffer.from(s, 'base64');
const context = (job: string, owner: string) => `job=${job}/owner=${owner}`;
const envelopeKey = (me: OwnerKeys, peerX25519: string, from: string, to: string, job: string) =>
  deriveEnvelopeKey(me.x25519, peerX25519, { ownerId: from, datasetId: `job=${job}/to=${to}` });
const aad = (job: string, from: string, to: string) => `ciphermine/partial-decryption/v1/${job}/${from}/${to}`;

const encodePartial = (p: PartialDecryption) =>
  Buffer.from(
    JSON.stringify({ d: p.d.map((x) => x.toString(16)), t1: p.proof.t1.toString(16), t2: p.proof.t2.toString(16), z: p.proof.z.toString(16) }),
  );

function decodePartial(bytes: Buffer, who: string): PartialDecryption {
  try {
    const j = JSON.parse(bytes.toString('utf8')) as { d: string[]; t1: string; t2: string; z: string };
    const big = (h: string) => BigInt(`0x${h}`);
    return { d: j.d.map(big), proof: { t1: big(j.t1), t2: big(j.t2), z: big(j.z) } };
  } catch {
    throw new PartialDecryptionError(`${who}'s partial decryption is malformed`);
  }
}

/** Decrypts job `job`'s model with every other owner; waits up to `waitMs` for their partials. */
export async function decryptJointModel(me: OwnerKeys, job: string, waitMs = 0): Promise<ModelFile> {
  const path = `/v1/jobs/${encodeURIComponent(job)}/model`;
  let info = await me.api.request<ModelInfo>('GET', path);
  const params = me.sk.publicKey.params;
  const keys = new Map(info.owners.map((o) => [o.id, deserializePublicKey(b64(o.bcpPublicKey), params)]));
  const joint = deserializePublicKey(b64(info.jointKey), params);
  if (!jointPublicKey([...keys.values()]).equals(joint) || !keys.get(me.id)?.equals(me.sk.publicKey))
    throw new PartialDecryptionError('the model is not encrypted under the joint key of its owners: refusing to decrypt');
  const cts = deserializeCiphertexts(b64(info.model), joint);
  const mine = partialDecrypt(me.sk, cts, context(job, me.id));
  const others = info.owners.filter((o) => o.id !== me.id);
  if (!info.posted && others.length > 0) {
    const bytes = encodePartial(mine);
    const partials = others.map((o) => ({
      to: o.id,
      envelope: seal(envelopeKey(me, o.x25519PublicKey, me.id, o.id, job), bytes, aad(job, me.id, o.id)).toString('base64'),
    }));
    await me.api.request('POST', `/v1/jobs/${encodeURIComponent(job)}/partials`, { partials });
  }
  const deadline = Date.now() + waitMs;
  for (;;) {
    const have = new Set(info.partials.map((p) => p.from));
    const missing = others.filter((o) => !have.has(o.id)).map((o) => o.id);
    if (missing.length === 0) break;
    if (Date.now() >= deadline) throw new MissingPartialError(missing);
    await new Promise((r) => setTimeout(r, 500));
    info = await me.api.request<ModelInfo>('GET', path);
  }
  const theirs = others.map((o) => {
    const sealed = info.partials.find((p) => p.from === o.id)!;
    let bytes: Buffer;
    try {
      bytes = openEnvelope(envelopeKey(me, o.x25519PublicKey, o.id, me.id, job), b64(sealed.envelope), aad(job, o.id, me.id));
    } catch {
      throw new PartialDecryptionError(`owner ${o.id}'s partial decryption does not open for this owner (tampered or misaddressed)`);
    }
    const part = decodePartial(bytes, `owner ${o.id}`);
    verifyPartial(keys.get(o.id)!, cts, part, context(job, o.id), `owner ${o.id}`);
    return part;
  });
  return modelFile(job, info.job, unpackModel(combinePartials(cts, [mine, ...theirs]), info.job.parameters));
}
