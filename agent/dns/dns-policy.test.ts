import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Compiler } from '../../policy/compile.ts';
import { allocateIdentities, scenarioCluster } from '../../policy/fixtures.ts';
import { validatePalisadePolicy } from '../../policy/palisade-policy.ts';
import type { PalisadePolicyInput } from '../../policy/types.ts';
import { dnsAllows } from './dns-policy.ts';

const base = scenarioCluster();
const dnsPod = { namespace: 'kube-system', name: 'dns', labels: { 'k8s-app': 'kube-dns' }, ip: '10.0.9.53', node: 'node-1', containerPorts: [] };
const cluster = { namespaces: [...base.namespaces, { name: 'kube-system', labels: {} }], pods: [...base.pods, dnsPod] };
function palisade(namespace: string, name: string, spec: unknown): PalisadePolicyInput {
  const v = validatePalisadePolicy({ kind: 'PalisadeNetworkPolicy', spec });
  if (!v.ok) throw new Error(v.errors.join('; '));
  return { kind: 'PalisadeNetworkPolicy', namespace, name, spec: v.spec };
}
function compiler(...policies: PalisadePolicyInput[]) {
  const c = new Compiler();
  for (const ns of cluster.namespaces) c.setNamespace(ns);
  c.setIdentities(allocateIdentities(cluster));
  for (const pod of cluster.pods) c.setPod(pod);
  for (const p of policies) c.setPalisadePolicy(p);
  const ask = (pod: string, name: string) =>
    dnsAllows(c.result(pod), { address: dnsPod.ip, identity: c.podAt(dnsPod.ip)!.identity! }, 'UDP', name, (r) => c.dnsRestriction(r));
  return ask;
}

test('dns policy: an FQDN rule alone lets its pods resolve the names it matches, and nothing else', () => {
  const ask = compiler(palisade('x', 'fqdn', { endpointSelector: { matchLabels: { pod: 'a' } }, egress: [{ toFQDNs: [{ matchPattern: '*.example.com' }] }] }));
  assert.equal(ask('x/a', 'api.example.com'), true);
  assert.equal(ask('x/a', 'api.example.org'), false);
  assert.equal(ask('x/b', 'api.example.org'), false, 'x/b is not redirected: the proxy is no open resolver');
});

test('dns policy: rules.dns restricts; a plain allow to the server on 53 lets every name through', () => {
  const dnsRule = palisade('x', 'dns', {
    endpointSelector: {},
    egress: [{ toEndpoints: [{ matchLabels: { 'io.kubernetes.pod.namespace': 'kube-system' } }], toPorts: [{ ports: [{ port: '53', protocol: 'ANY' }], rules: { dns: [{ matchName: 'api.example.com' }] } }] }],
  });
  assert.equal(compiler(dnsRule)('x/b', 'api.example.com'), true);
  assert.equal(compiler(dnsRule)('x/b', 'www.example.com'), false);
  const plain = palisade('x', 'plain', { endpointSelector: {}, egress: [{ toEntities: ['cluster'], toPorts: [{ ports: [{ port: '53', protocol: 'UDP' }] }] }] });
  assert.equal(compiler(dnsRule, plain)('x/b', 'www.example.com'), true);
});

test('dns policy: a query no rule lets reach the server is refused; an address that is not a pod here has no say', () => {
  const egressOnly = palisade('x', 'web', { endpointSelector: {}, egress: [{ toEntities: ['world'], toPorts: [{ ports: [{ port: '443', protocol: 'TCP' }] }] }] });
  assert.equal(compiler(egressOnly)('x/b', 'api.example.com'), false);
  assert.equal(compiler(egressOnly)('nobody/here', 'api.example.com'), false);
});
