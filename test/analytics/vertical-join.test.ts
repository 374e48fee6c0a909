/** Vertical partitioning: row orders from id hashes, the join of the parts, and refusals. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { checkLayout, joinVertical, rowOrders } from '../../src/analytics/vertical-join.js';

describe('vertical join', () => {
  it('orders every part by the first part’s ids and joins features, then the one part’s targets', () => {
    const perms = rowOrders(
      [
        ['a', 'b', 'c'],
        ['c', 'a', 'b'],
      ],
      ['A', 'B'],
    );
    assert.deepEqual(perms, [
      [0, 1, 2],
      [1, 2, 0],
    ]);
    // A: feature x and a target t per row; B: features y, z per row (in its own order c, a, b)
    const a = BigUint64Array.from([1n, 10n, 2n, 20n, 3n, 30n]);
    const b = BigUint64Array.from([7n, 8n, 5n, 6n, 9n, 4n]);
    const layout = { columns: [2, 2], targets: [1, 0], perms };
    checkLayout(layout, [3, 3], 4, 1);
    assert.deepEqual([...joinVertical([a, b], layout)], [1n, 5n, 6n, 10n, 2n, 9n, 4n, 20n, 3n, 7n, 8n, 30n]);
  });

  it('refuses ids that do not match (counting, not naming), repeated ids, and layouts that do not fit', () => {
    assert.throws(
      () =>
        rowOrders(
          [
            ['a', 'b'],
            ['a', 'c'],
          ],
          ['A', 'B'],
        ),
      /B lacks 1 of A's ids and has 1 that A lacks/,
    );
    assert.throws(
      () =>
        rowOrders(
          [
            ['a', 'a'],
            ['a', 'a'],
          ],
          ['A', 'B'],
        ),
      /A repeats an id/,
    );
    const ok = {
      columns: [2, 2],
      targets: [1, 0],
      perms: [
        [0, 1],
        [1, 0],
      ],
    };
    assert.throws(
      () =>
        checkLayout(
          {
            ...ok,
            perms: [
              [0, 1],
              [1, 1],
            ],
          },
          [2, 2],
          4,
          1,
        ),
      /not a permutation/,
    );
    assert.throws(() => checkLayout(ok, [2, 3], 4, 1), /the same records/);
    assert.throws(() => checkLayout(ok, [2, 2], 5, 1), /do not add up/);
    assert.throws(() => joinVertical([new BigUint64Array(4), new BigUint64Array(4)], { ...ok, targets: [1, 1] }), /exactly one part/);
  });
});
