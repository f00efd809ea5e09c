import assert from 'node:assert/strict';
import { test } from 'node:test';
import { desiredNodeRoutes, planRouteChanges } from './node-routes.ts';

const nodes = [
  { name: 'n1', podCidr: '10.200.1.0/24', internalIp: '172.30.0.11' },
  { name: 'n2', podCidr: '10.200.2.0/24', internalIp: '172.30.0.12' },
  // not routable yet: no pod CIDR assigned
  { name: 'n3', podCidr: undefined, internalIp: '172.30.0.13' },
];

test('a node routes to every other node with a pod CIDR and an address, not to itself', () => {
  assert.deepEqual(desiredNodeRoutes(nodes, 'n1'), [{ podCidr: '10.200.2.0/24', via: '172.30.0.12' }]);
});

// Each row: the routes a node wants, the ones it has, and the change that gets it there.
const rows = [
  { why: 'nothing to do when in step', want: [['a', '1']], have: [['a', '1']], replace: [], remove: [] },
  { why: 'a new node is added', want: [['a', '1'], ['b', '2']], have: [['a', '1']], replace: [['b', '2']], remove: [] },
  { why: 'a node that moved address is replaced', want: [['a', '9']], have: [['a', '1']], replace: [['a', '9']], remove: [] },
  { why: 'a deleted node is removed', want: [], have: [['a', '1']], replace: [], remove: [['a', '1']] },
];
for (const row of rows) {
  test(`route plan: ${row.why}`, () => {
    const r = (pairs: string[][]) => pairs.map(([podCidr, via]) => ({ podCidr: podCidr!, via: via! }));
    assert.deepEqual(planRouteChanges(r(row.want), r(row.have)), { replace: r(row.replace), remove: r(row.remove) });
  });
}
