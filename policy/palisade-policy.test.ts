// The zod validator of Palisade's policy kinds: the shared table of cases
// (the end-to-end test sends the same table to a real API server), the
// messages a user reads, and the normalized spec the compiler will read.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { POLICY_CASES } from './palisade-policy-cases.ts';
import { FQDN_NAME_RE, FQDN_PATTERN_RE, validatePalisadePolicy, type PalisadePolicySpec } from './palisade-policy.ts';

const object = (spec: unknown, kind = 'PalisadeNetworkPolicy') => ({ apiVersion: 'palisade.io/v1alpha1', kind, metadata: { name: 'p', namespace: 'x' }, spec });

const errorsOf = (spec: unknown) => {
  const r = validatePalisadePolicy(object(spec));
  return r.ok ? [] : r.errors;
};
const valid = (spec: unknown): PalisadePolicySpec => {
  const r = validatePalisadePolicy(object(spec));
  assert.ok(r.ok, r.ok ? '' : r.errors.join('\n'));
  return r.spec;
};

test('the table of cases: each verdict, naming each field', () => {
  for (const c of POLICY_CASES) {
    const r = validatePalisadePolicy(object(c.spec));
    const paths = r.ok ? [] : [...new Set(r.issues.map((i) => i.path))];
    assert.deepEqual(paths, c.errors, `${c.name}: ${r.ok ? 'valid' : r.errors.join('; ')}`);
  }
});

test('both kinds validate alike; the object\'s apiVersion and kind are checked; status and any metadata pass', () => {
  const spec = { endpointSelector: {} };
  assert.ok(validatePalisadePolicy(object(spec, 'PalisadeClusterNetworkPolicy')).ok);
  assert.ok(validatePalisadePolicy({ spec, metadata: { name: 'p', managedFields: [{}], uid: 'u' }, status: { anything: 1 } }).ok);
  const r = validatePalisadePolicy({ ...object(spec), apiVersion: 'cilium.io/v2', kind: 'CiliumNetworkPolicy' });
  assert.ok(!r.ok);
  assert.deepEqual(r.errors, [
    'apiVersion: Unsupported value: "cilium.io/v2": supported value: "palisade.io/v1alpha1"',
    'kind: Unsupported value: "CiliumNetworkPolicy": supported values: "PalisadeNetworkPolicy", "PalisadeClusterNetworkPolicy"',
  ]);
  assert.deepEqual(validatePalisadePolicy({}).ok ? [] : (validatePalisadePolicy({}) as { errors: string[] }).errors, ['spec: Required value']);
  assert.deepEqual(validatePalisadePolicy(null).ok, false);
});

test('messages say what is wrong, and name the field', () => {
  assert.deepEqual(errorsOf({ endpointSelector: {}, egress: [{ toPorts: [{ ports: [{ port: '443', bogus: 1 }] }] }], bogus: 2 }), [
    'spec.egress[0].toPorts[0].ports[0].bogus: unknown field: not part of the Palisade policy API',
    'spec.bogus: unknown field: not part of the Palisade policy API',
  ]);
  assert.deepEqual(errorsOf({ endpointSelector: {}, egress: [{ toServices: [] }], nodeSelector: {} }), [
    'spec.egress[0].toServices: unknown field: toServices is not supported: egress to a Service is judged against its backends, so select them',
    'spec.nodeSelector: unknown field: node policies are not supported: use endpointSelector',
  ]);
  assert.deepEqual(errorsOf({ endpointSelector: {}, egress: [{ toCIDR: ['fd00::/64', '2001:db8::1/128', '10.0.0.0/33'] }] }), [
    'spec.egress[0].toCIDR[0]: IPv6 is not supported: Palisade enforces IPv4 only',
    'spec.egress[0].toCIDR[1]: IPv6 is not supported: Palisade enforces IPv4 only',
    'spec.egress[0].toCIDR[2]: must be an IPv4 CIDR: an address and a prefix length, such as 10.0.0.0/8',
  ]);
  assert.deepEqual(errorsOf({ endpointSelector: {}, egress: [{ toPorts: [{ ports: [{ port: '443', endPort: 80 }, { port: 'https' }] }] }] }), [
    'spec.egress[0].toPorts[0].ports[0].endPort: endPort must be greater than or equal to port',
    'spec.egress[0].toPorts[0].ports[1].port: must be a port number from "0" (every port) to "65535", written as a string; named ports are not supported',
  ]);
  assert.deepEqual(errorsOf({ endpointSelector: {}, egressDeny: [{ toFQDNs: [{ matchName: 'x.com' }], toPorts: [{ ports: [{ port: '53' }], rules: { dns: [{ matchPattern: '*' }] } }] }] }), [
    'spec.egressDeny[0].toPorts[0].rules: DNS rules are not allowed in deny rules',
  ]);
  assert.deepEqual(errorsOf({ endpointSelector: {}, egress: [{ toFQDNs: [{ matchPattern: '**' }] }] }), [
    "spec.egress[0].toFQDNs[0].matchPattern: must be a DNS name pattern: '*' alone, or labels of letters, digits, '-', '_' and '*' (never two '*' in a row), optionally after a leading '**.'",
  ]);
  assert.deepEqual(errorsOf({ endpointSelector: { matchLabels: { 'reserved:host': '' } } }), [
    `spec.endpointSelector.matchLabels: key "reserved:host": must be a label key, [prefix/]name: a DNS subdomain prefix and a name of alphanumerics, '-', '_' or '.' (up to 63, starting and ending with an alphanumeric), optionally after Cilium's 'k8s:' or 'any:' source; Cilium's reserved labels are entities here: use fromEntities or toEntities`,
  ]);
  assert.deepEqual(errorsOf({ endpointSelector: {}, ingress: [{ fromEntities: ['world', 'health'] }] }), [
    'spec.ingress[0].fromEntities[1]: Unsupported value: "health": supported values: "all", "world", "cluster", "host", "remote-node", "kube-apiserver"',
  ]);
  assert.deepEqual(errorsOf({ endpointSelector: {}, egress: [{ toCIDRSet: [{ cidr: '10.0.0.0/8', except: ['10.1.0.0/16', '192.168.0.0/16'] }] }] }), [
    'spec.egress[0].toCIDRSet[0].except[1]: must be a strict subset of cidr 10.0.0.0/8',
  ]);
});

test('FQDN names and patterns: what the API page allows', () => {
  const name = new RegExp(FQDN_NAME_RE);
  const pattern = new RegExp(FQDN_PATTERN_RE);
  for (const n of ['example.com', 'Example.COM.', 'a', 'xn--bcher-kva.example', '_srv._tcp.example.com', '1.2.3.4.in-addr.arpa']) assert.ok(name.test(n), n);
  for (const n of ['', '.', '.example.com', 'example..com', '-a.com', 'a-.com', 'a b.com', '*.com', 'bücher.example', 'a..']) assert.ok(!name.test(n), n);
  for (const p of ['*', '*.example.com', '**.example.com', 'api-*.example.com', '*.*.example.com', 'a*b*c.example.com', 'example.com.', '**.*.com']) assert.ok(pattern.test(p), p);
  for (const p of ['', '**', '***.com', 'a**b.com', 'a.**.com', 'a.com.**', '.example.com', 'example..com', '* .com', '**example.com']) assert.ok(!pattern.test(p), p);
});

test('the normalized spec: defaults, lowercase names, cleared host bits, numbers, k8s: sources dropped, empty lists gone', () => {
  const spec = valid({
    endpointSelector: { matchLabels: { 'k8s:app': 'billing', 'any:tier': 'web' }, matchExpressions: [{ key: 'k8s:env', operator: 'NotIn', values: ['dev'] }] },
    egress: [
      { toFQDNs: [{ matchName: 'API.Stripe.com.' }, { matchPattern: '*.S3.amazonaws.com' }], toPorts: [{ ports: [{ port: '443', protocol: 'TCP' }, { port: '8000', endPort: 8100 }, {}] }] },
      { toEndpoints: [], toCIDR: ['10.1.2.3/8'], toCIDRSet: [{ cidr: '192.168.1.1/16', except: [] }] },
      { toPorts: [{ ports: [{ port: '53' }], rules: { dns: [{ matchPattern: '*.Example.com' }] } }] },
    ],
    ingress: [{}],
    description: 'd',
  });
  assert.deepEqual(spec, {
    endpointSelector: { matchLabels: { app: 'billing', tier: 'web' }, matchExpressions: [{ key: 'env', operator: 'NotIn', values: ['dev'] }] },
    ingress: [{}],
    ingressDeny: [],
    egress: [
      {
        toFQDNs: [{ matchName: 'api.stripe.com' }, { matchPattern: '*.s3.amazonaws.com' }],
        toPorts: [{ ports: [{ port: 443, protocol: 'TCP' }, { port: 8000, endPort: 8100, protocol: 'ANY' }, { port: 0, protocol: 'ANY' }] }],
      },
      { toCIDR: ['10.0.0.0/8'], toCIDRSet: [{ cidr: '192.168.0.0/16' }] },
      { toPorts: [{ ports: [{ port: 53, protocol: 'ANY' }], rules: { dns: [{ matchPattern: '*.example.com' }] } }] },
    ],
    egressDeny: [],
    enableDefaultDeny: { ingress: true, egress: true },
    description: 'd',
  });
});

test('enableDefaultDeny: by default, true in each direction with rules, allow or deny; as written otherwise', () => {
  assert.deepEqual(valid({ endpointSelector: {} }).enableDefaultDeny, { ingress: false, egress: false });
  assert.deepEqual(valid({ endpointSelector: {}, ingressDeny: [{ fromEntities: ['world'] }] }).enableDefaultDeny, { ingress: true, egress: false });
  assert.deepEqual(valid({ endpointSelector: {}, egressDeny: [{ toEntities: ['world'] }] }).enableDefaultDeny, { ingress: false, egress: true });
  assert.deepEqual(valid({ endpointSelector: {}, ingress: [] }).enableDefaultDeny, { ingress: false, egress: false }, 'an empty list is no rules');
  assert.deepEqual(valid({ endpointSelector: {}, ingress: [{}], enableDefaultDeny: { ingress: false } }).enableDefaultDeny, { ingress: false, egress: false });
  assert.deepEqual(valid({ endpointSelector: {}, enableDefaultDeny: { egress: true } }).enableDefaultDeny, { ingress: false, egress: true });
});

test('k8s:app and app in one selector both hold, as written', () => {
  assert.deepEqual(valid({ endpointSelector: { matchLabels: { 'k8s:app': 'a', app: 'b' } } }).endpointSelector, {
    matchLabels: { app: 'a' },
    matchExpressions: [{ key: 'app', operator: 'In', values: ['b'] }],
  });
  assert.deepEqual(valid({ endpointSelector: { matchLabels: { 'k8s:app': 'a', app: 'a' } } }).endpointSelector, { matchLabels: { app: 'a' } });
});
