// node --test  (plain Node; the `weft` import resolves to test/weft-shim via the import map below)
import test from 'node:test';
import assert from 'node:assert';
import { reshape } from './index.js';

const data = [
  { id: 1, status: 'shipped', amount: 10, customer: { city: 'Oslo' } },
  { id: 2, status: 'pending', amount: 5.5, customer: { city: 'Lima' } },
  { id: 3, status: 'shipped', amount: 2, customer: { city: 'Oslo' } },
];

test('group by + sum', () => {
  const out = reshape({ data, groupBy: 'status', sum: 'amount', sortBy: '-sum_amount' });
  assert.deepStrictEqual(out.rows, [
    { status: 'shipped', sum_amount: 12, count: 2 },
    { status: 'pending', sum_amount: 5.5, count: 1 },
  ]);
});

test('filter + select', () => {
  const out = reshape({ data, filter: [{ field: 'amount', op: '>', value: 3 }], select: { id: 'id', city: 'customer.city' } });
  assert.deepStrictEqual(out.rows, [{ id: 1, city: 'Oslo' }, { id: 2, city: 'Lima' }]);
});
