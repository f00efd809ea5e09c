// Palisade's kinds in the compiler, case by case: what the flows and the
// agent rely on beyond the verdicts the property tests check.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Compiler, compile } from './compile.ts';
import { evaluate, matchingRules } from './evaluate.ts';
import { parseAddress } from './cidr.ts';
import { allocateIdentities, scenarioCluster } from './fixtures.ts';
import { FQDN_BIT, ruleRefString } from './ids.ts';
import { validatePalisadePolicy } from './palisade-policy.ts';
import type { PalisadePolicyInput } from './types.ts';

function palisade(kind: PalisadePolicyInput['kind'], namespace: string, name: string, spec: unknown): PalisadePolicyInput {
  const v = validatePalisadePolicy({ apiVersion: 'palisade.io/v1alpha1', kind, metadata: { name, ...(namespace ? { namespace } : {}) }, spec });
  if (!v.ok) throw new Error(v.errors.join('; '));
  return { kind, namespace, name, spec: v.spec };
}

const cluster = scenarioCluster();
const identities = allocateIdentities(cluster);
const [xa, xb] = cluster.pods;

test('palisade: a cluster-wide deny wins over a NetworkPolicy allow, and the verdict names the deny rule', () => {
  const allow = { namespace: 'x', name: 'allow-all', spec: { podSelector: {}, ingress: [{}] } };
  const deny = palisade('PalisadeClusterNetworkPolicy', '', 'no-80', {
    endpointSelector: { matchLabels: { 'io.kubernetes.pod.namespace': 'x' } },
    ingressDeny: [{ fromEndpoints: [{}], toPorts: [{ ports: [{ port: '80', protocol: 'TCP' }] }] }],
  });
  const out = compile({ ...cluster, identities, policies: [allow], palisadePolicies: [deny] });
  const v80 = evaluate(out, { src: xa!.ip!, dst: xb!.ip!, protocol: 'TCP', port: 80 });
  assert.equal(v80.allowed, false);
  assert.equal(v80.ingress?.verdict.decision, 'deny');
  assert.equal(ruleRefString((v80.ingress!.verdict as { rule: Parameters<typeof ruleRefString>[0] }).rule), 'pcnp:no-80/ingressDeny/0');
  assert.equal(evaluate(out, { src: xa!.ip!, dst: xb!.ip!, protocol: 'TCP', port: 81 }).allowed, true, 'the allow still holds elsewhere');
});

test('palisade: a deny rule applies where nothing isolates the pod (enableDefaultDeny false)', () => {
  const deny = palisade('PalisadeNetworkPolicy', 'x', 'deny-b', {
    endpointSelector: {},
    egressDeny: [{ toEndpoints: [{ matchLabels: { pod: 'b' } }] }],
    enableDefaultDeny: { egress: false },
  });
  const out = compile({ ...cluster, identities, policies: [], palisadePolicies: [deny] });
  const e = out.endpoints.get('x/a')!;
  assert.equal(e.egress, undefined, 'not isolated');
  assert.ok(e.egressDeny);
  assert.equal(evaluate(out, { src: xa!.ip!, dst: xb!.ip!, protocol: 'UDP', port: 53 }).allowed, false);
  assert.equal(evaluate(out, { src: xa!.ip!, dst: cluster.pods[2]!.ip!, protocol: 'UDP', port: 53 }).allowed, true);
});

test('palisade: a learned address of a known name costs one ipcache entry and changes no endpoint', () => {
  const c = new Compiler();
  for (const ns of cluster.namespaces) c.setNamespace(ns);
  c.setIdentities(identities);
  for (const pod of cluster.pods) c.setPod(pod);
  c.setPalisadePolicy(palisade('PalisadeNetworkPolicy', 'x', 'to-api', { endpointSelector: {}, egress: [{ toFQDNs: [{ matchPattern: '*.example.com' }] }] }));
  c.setDnsName('api.example.com', ['203.0.113.10']);
  let { generation } = c.endpointsChangedSince(0);
  const id = c.ipcache().get('203.0.113.10')!;
  assert.ok(id >= FQDN_BIT, 'a learned address has an FQDN identity');
  c.setDnsName('www.example.com', ['203.0.113.11']);
  const next = c.endpointsChangedSince(generation);
  assert.deepEqual(next.changed, [], 'same selector set: no policy entry changes');
  assert.equal(c.ipcache().get('203.0.113.11'), id);
  generation = next.generation;
  const out = c.snapshot();
  assert.equal(evaluate(out, { src: xa!.ip!, dst: '203.0.113.11', protocol: 'TCP', port: 443 }).allowed, true);
  assert.equal(evaluate(out, { src: xa!.ip!, dst: '203.0.113.12', protocol: 'TCP', port: 443 }).allowed, false);
  assert.deepEqual(c.dnsNamesOf('203.0.113.11'), ['www.example.com']);
  // Expired: the address is world again, and refused.
  c.setDnsName('www.example.com', []);
  assert.equal(c.ipcache().has('203.0.113.11'), false);
  assert.equal(evaluate(c.snapshot(), { src: xa!.ip!, dst: '203.0.113.11', protocol: 'TCP', port: 443 }).allowed, false);
});

test('palisade: an FQDN rule allows DNS to the cluster DNS servers by itself, named as its implicit DNS rule', () => {
  const dnsPod = { namespace: 'kube-system', name: 'dns', labels: { 'k8s-app': 'kube-dns' }, ip: '10.0.9.53', node: 'node-1', containerPorts: [] };
  const all = { namespaces: [...cluster.namespaces, { name: 'kube-system', labels: {} }], pods: [...cluster.pods, dnsPod] };
  const p = palisade('PalisadeNetworkPolicy', 'x', 'to-api', { endpointSelector: {}, egress: [{ toFQDNs: [{ matchName: 'api.example.com' }] }] });
  const out = compile({ ...all, identities: allocateIdentities(all), policies: [], palisadePolicies: [p] });
  const udp = evaluate(out, { src: xa!.ip!, dst: dnsPod.ip, protocol: 'UDP', port: 53 });
  assert.equal(udp.allowed, true);
  assert.equal(ruleRefString((udp.egress!.verdict as { rule: Parameters<typeof ruleRefString>[0] }).rule), 'pnp:x/to-api/egress/0/dns');
  assert.equal(evaluate(out, { src: xa!.ip!, dst: dnsPod.ip, protocol: 'TCP', port: 80 }).allowed, false);
});

test('palisade: pods selected by FQDN or DNS rules go through the DNS proxy; the names each rule lets them resolve', () => {
  const dnsPod = { namespace: 'kube-system', name: 'dns', labels: { 'k8s-app': 'kube-dns' }, ip: '10.0.9.53', node: 'node-1', containerPorts: [] };
  const all = { namespaces: [...cluster.namespaces, { name: 'kube-system', labels: {} }], pods: [...cluster.pods, dnsPod] };
  const c = new Compiler();
  for (const ns of all.namespaces) c.setNamespace(ns);
  c.setIdentities(allocateIdentities(all));
  for (const pod of all.pods) c.setPod(pod);
  c.setPalisadePolicy(palisade('PalisadeNetworkPolicy', 'x', 'fqdn', { endpointSelector: { matchLabels: { pod: 'a' } }, egress: [{ toFQDNs: [{ matchPattern: '*.example.com' }] }] }));
  c.setPalisadePolicy(
    palisade('PalisadeNetworkPolicy', 'y', 'dns-only', {
      endpointSelector: {},
      egress: [{ toEndpoints: [{ matchLabels: { 'io.kubernetes.pod.namespace': 'kube-system' } }], toPorts: [{ ports: [{ port: '53', protocol: 'ANY' }], rules: { dns: [{ matchName: 'api.example.com' }] } }] }],
    }),
  );
  assert.deepEqual(c.result('x/a')!.dns, { redirect: true });
  assert.equal(c.result('x/b')!.dns, undefined, 'not selected');
  assert.deepEqual(c.result('y/b')!.dns, { redirect: true, failClosed: true }, 'a DNS rule alone also needs the proxy, and must not be bypassed');
  assert.deepEqual(c.dnsRestriction({ kind: 'PalisadeNetworkPolicy', namespace: 'x', name: 'fqdn', direction: 'egress', index: 0, implicitDns: true }), [{ matchPattern: '*.example.com' }]);
  assert.deepEqual(c.dnsRestriction({ kind: 'PalisadeNetworkPolicy', namespace: 'y', name: 'dns-only', direction: 'egress', index: 0 }), [{ matchName: 'api.example.com' }]);
  assert.equal(c.dnsNameWanted('www.example.com'), true);
  assert.equal(c.dnsNameWanted('www.example.org'), false);
  const dnsIdentity = c.ipcache().get(dnsPod.ip)!;
  const rules = matchingRules(c.result('y/b')!.egress!, { address: parseAddress(dnsPod.ip)!, identity: dnsIdentity }, 'UDP', 53);
  assert.deepEqual(rules.map(ruleRefString), ['pnp:y/dns-only/egress/0']);
  c.deletePalisadePolicy('PalisadeNetworkPolicy', 'y', 'dns-only');
  assert.equal(c.result('y/b')!.dns, undefined);
  assert.equal(c.dnsRestriction({ kind: 'PalisadeNetworkPolicy', namespace: 'y', name: 'dns-only', direction: 'egress', index: 0 }), undefined);
});
