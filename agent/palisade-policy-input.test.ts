import assert from 'node:assert/strict';
import { test } from 'node:test';
import { compile } from '../policy/compile.ts';
import { evaluate } from '../policy/evaluate.ts';
import { allocateIdentities, scenarioCluster } from '../policy/fixtures.ts';
import { readPalisadePolicy } from './palisade-policy-input.ts';

const cluster = scenarioCluster();
const identities = allocateIdentities(cluster);
const [xa, xb] = cluster.pods;

test('a valid policy is read as written, with its rule counts', () => {
  const r = readPalisadePolicy('PalisadeNetworkPolicy', {
    metadata: { name: 'p', namespace: 'x' },
    spec: { endpointSelector: {}, egress: [{ toEntities: ['world'] }], egressDeny: [{ toCIDR: ['10.0.0.0/8'] }] },
  });
  assert.equal(r.problem, undefined);
  assert.deepEqual(r.rules, { ingress: 0, egress: 1, ingressDeny: 0, egressDeny: 1 });
  assert.equal(r.input.namespace, 'x');
});

test('an invalid policy isolates the pods it selects in both directions, allowing nothing (fail closed)', () => {
  const r = readPalisadePolicy('PalisadeNetworkPolicy', {
    metadata: { name: 'bad', namespace: 'x' },
    spec: { endpointSelector: { matchLabels: { pod: 'b' } }, ingress: [{ fromCIDR: ['10.0.0.0/40'] }] },
  });
  assert.match(r.problem!, /spec\.ingress\[0\]\.fromCIDR\[0\].*fail closed/);
  const out = compile({ ...cluster, identities, policies: [], palisadePolicies: [r.input] });
  assert.equal(evaluate(out, { src: xa!.ip!, dst: xb!.ip!, protocol: 'TCP', port: 80 }).allowed, false, 'x/b refuses');
  assert.equal(evaluate(out, { src: xb!.ip!, dst: xa!.ip!, protocol: 'TCP', port: 80 }).allowed, false, 'x/b cannot send');
  assert.equal(evaluate(out, { src: xa!.ip!, dst: cluster.pods[2]!.ip!, protocol: 'TCP', port: 80 }).allowed, true, 'other pods are not selected');
});

test('an invalid policy whose selector is invalid too selects nothing, and says so', () => {
  const r = readPalisadePolicy('PalisadeClusterNetworkPolicy', { metadata: { name: 'worse' }, spec: { endpointSelector: { matchExpressions: [{ key: 'a', operator: 'Maybe' }] } } });
  assert.match(r.problem!, /selects no pod/);
  const out = compile({ ...cluster, identities, policies: [], palisadePolicies: [r.input] });
  assert.equal(evaluate(out, { src: xa!.ip!, dst: xb!.ip!, protocol: 'TCP', port: 80 }).allowed, true);
});
