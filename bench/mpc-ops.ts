/**
 * The workloads of `npm run bench:mpc`, shared by both parties' processes: each party derives its
 * own shares from seeds in the arguments (party 0: x - r, party 1: r), so no data crosses between
 * the processes except the protocol's own messages.
 */
import { Prg } from '../src/mpc/prg.js';
import * as ring from '../src/mpc/ring.js';
import type { MpcParty } from '../src/mpc/party.js';
import { mul, matmul, share, type ArithmeticShare } from '../src/mpc/primitives/arithmetic.js';
import { lessThan, relu } from '../src/mpc/primitives/binary.js';
import { lessThanWide, type WideShare } from '../src/mpc/primitives/wide.js';
import type { WideArray } from '../src/mpc/wide-ring.js';
import * as wide from '../src/mpc/wide-ring.js';

export type OpName = 'mul' | 'matmul' | 'lt64' | 'relu' | 'lt130';
export const LT130_RING_BITS = 131;

export interface OpArgs {
  op: OpName;
  provider: 'dealer' | 'ot';
  scale: number;
  /** Hex seeds: the secret inputs' and the masks'. */
  seedX: string;
  seedR: string;
}

type Input = ArithmeticShare | WideShare;

/**
 * The op's input shapes. With `ot` the matrix product has 8 rows, not 128: its triple moves
 * 64 k n m values (6.4 GB for 128 rows), so the row is measured narrow and says so by its elements.
 */
export function shapes(op: OpName, scale: number, provider: 'dealer' | 'ot' = 'dealer'): { x: number[]; y: number[]; elements: number } {
  const n = Math.max(128, Math.round((op === 'lt130' ? 100_000 : 1_000_000) * scale));
  const rows = provider === 'ot' ? 8 : 128;
  if (op === 'matmul') return { x: [rows, 784], y: [784, 128], elements: rows * 128 };
  return { x: [n], y: [n], elements: n };
}

const size = (s: number[]) => s.reduce((a, b) => a * b, 1);

function wideFrom(prg: Prg, n: number): WideArray {
  return wide.fromBigints(
    LT130_RING_BITS,
    Array.from(prg.ring(3 * n), (v) => v).reduce<bigint[]>((out, v, i) => {
      if (i % 3 === 0) out.push(v);
      else out[out.length - 1] = (out[out.length - 1]! << 64n) | v;
      return out;
    }, []),
  );
}

/** This party's shares of the op's two inputs. */
export function inputs(party: 0 | 1, a: OpArgs): [Input, Input] {
  const s = shapes(a.op, a.scale, a.provider);
  const px = new Prg(Buffer.from(a.seedX, 'hex'));
  const pr = new Prg(Buffer.from(a.seedR, 'hex'));
  if (a.op === 'lt130') {
    const n = s.elements;
    const [rx, ry] = [wideFrom(pr, n), wideFrom(pr, n)];
    if (party === 1) return [rx, ry];
    // 130-bit operands: the top bit of the 131-bit ring is cleared.
    const value = () =>
      wide.fromBigints(
        LT130_RING_BITS,
        wide.toBigints(wideFrom(px, n)).map((v) => v >> 1n),
      );
    return [wide.sub(value(), rx), wide.sub(value(), ry)];
  }
  const [rx, ry] = [pr.ring(size(s.x)), pr.ring(size(s.y))];
  if (party === 1) return [share(s.x, rx), share(s.y, ry)];
  let [x, y] = [px.ring(size(s.x)), px.ring(size(s.y))];
  if (a.op === 'lt64') [x, y] = [x.map((v) => v >> 2n), y.map((v) => v >> 2n)]; // |x - y| < 2^63
  return [share(s.x, ring.sub(x, rx)), share(s.y, ring.sub(y, ry))];
}

export async function runOp(op: OpName, p: MpcParty, x: Input, y: Input): Promise<void> {
  switch (op) {
    case 'mul':
      await mul(p, x as ArithmeticShare, y as ArithmeticShare);
      return;
    case 'matmul':
      await matmul(p, x as ArithmeticShare, y as ArithmeticShare);
      return;
    case 'lt64':
      await lessThan(p, x as ArithmeticShare, y as ArithmeticShare);
      return;
    case 'relu':
      await relu(p, x as ArithmeticShare);
      return;
    case 'lt130':
      await lessThanWide(p, x as WideShare, y as WideShare);
      return;
  }
}
