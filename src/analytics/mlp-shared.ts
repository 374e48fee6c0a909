/**
 * The MLP's tensor operations on secret shares (seed 002's two-cloud training, built as SecureML
 * does): matrix products with matrix triples and local truncation, ReLU by an exact comparison on
 * shares and one product. Both servers run analytics/mlp.ts with these operations on their own
 * shares; every message is masked by fresh correlated randomness, so neither learns anything of
 * the data or the model but shapes.
 */
import type { MpcParty } from '../mpc/party.js';
import { addPublic, matmulFixed, mul, mulFixed, mulPublic, share, truncate } from '../mpc/primitives/arithmetic.js';
import { rowMax } from '../mpc/primitives/row-max.js';
import { reluDerivative } from '../mpc/primitives/binary.js';
import { columnProduct, type TensorOps } from './mlp.js';

export function sharedOps(p: MpcParty): TensorOps {
  return {
    matmul: (a, b) => matmulFixed(p, share(a.shape, a.data), share(b.shape, b.data)),
    async relu(z) {
      const derivative = await reluDerivative(p, share(z.shape, z.data));
      return { out: await mul(p, share(z.shape, z.data), derivative), derivative };
    },
    mask: (x, bits) => mul(p, share(x.shape, x.data), share(bits.shape, bits.data)),
    scale: (x, c) => truncate(p, mulPublic(share(x.shape, x.data), c)),
    scaleColumns: (x, c) => truncate(p, share(x.shape, columnProduct(x, c))),
    addPublic: (x, c) => addPublic(p, share(x.shape, x.data), c),
    mulFixed: (a, b) => mulFixed(p, share(a.shape, a.data), share(b.shape, b.data)),
    // all pairs at once with a dealer (few rounds), the argmin tournament with ot (few gates)
    rowMax: (x) => rowMax(p, share(x.shape, x.data)),
  };
}
