// endpoints: each pod with its identity, address, node and the policies
// selecting it per direction.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { allocateIdentities, np, scenarioCluster } from '../policy/fixtures.ts';
import { endpointNotes, endpointRows, endpointsTable } from './endpoints.ts';

const c = scenarioCluster(['x', 'y'], ['a', 'b']);
const policies = [
  np('x', 'deny-in', { podSelector: {} }),
  np('x', 'a-out', { podSelector: { matchLabels: { pod: 'a' } }, policyTypes: ['Egress'], egress: [{}] }),
  np('x', 'b-in', { podSelector: { matchLabels: { pod: 'b' } }, ingress: [{}] }),
];

test('policies per direction; a direction no policy selects is not isolated', () => {
  const { rows } = endpointRows({ ...c, policies, identities: allocateIdentities(c) });
  const byPod = Object.fromEntries(rows.map((r) => [`${r.namespace}/${r.name}`, [r.ingress, r.egress]]));
  assert.deepEqual(byPod, {
    'x/a': [['deny-in'], ['a-out']],
    'x/b': [['b-in', 'deny-in'], null],
    'y/a': [null, null],
    'y/b': [null, null],
  });
});

test('the table: aligned, identities and nodes shown, isolation said in words', () => {
  const { rows } = endpointRows({ ...c, policies, identities: allocateIdentities(c) });
  assert.equal(endpointsTable(rows), [
    'ENDPOINT  IDENTITY  ADDRESS   NODE    INGRESS POLICIES  EGRESS POLICIES',
    'x/a       256       10.0.1.1  node-1  deny-in           a-out',
    'x/b       257       10.0.1.2  node-2  b-in, deny-in     (not isolated)',
    'y/a       258       10.0.2.1  node-1  (not isolated)    (not isolated)',
    'y/b       259       10.0.2.2  node-2  (not isolated)    (not isolated)',
    '',
  ].join('\n'));
});

test('pods without an address, identities unknown or not allocated: said on the side', () => {
  const pending = { ...c, pods: [...c.pods, { namespace: 'y', name: 'pending', labels: {}, containerPorts: [] }] };
  const unknown = endpointRows({ ...pending, policies, identities: undefined });
  assert.equal(unknown.withoutAddress, 1);
  assert.match(endpointsTable(unknown.rows), /^x\/a +\? +10\.0\.1\.1/m);
  const none = endpointRows({ ...c, policies, identities: new Map() });
  assert.match(endpointsTable(none.rows), /^x\/a +\(none yet\) +10\.0\.1\.1/m);
  assert.deepEqual(endpointNotes({ ...unknown, identitiesKnown: false, namespacesAssumed: ['y'] }), [
    '1 pod(s) without an address (pending, finished or host-network) are not endpoints',
    'SecurityIdentities could not be read (RBAC): identities shown as ?',
    'namespace y could not be read (RBAC): identities are computed with its name label only',
  ]);
});
