// Validation of NetworkPolicy objects: what the API server refuses, what
// Palisade refuses, and the leniency the API server has (normalized).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { validateNetworkPolicy, type IssueCode } from './validate.ts';

const META = { name: 'p', namespace: 'x' };
const obj = (spec: unknown, metadata: unknown = META) => ({ apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata, spec });
const ingressPort = (port: unknown) => obj({ podSelector: {}, ingress: [{ ports: [port] }] });
const ingressPeer = (peer: unknown) => obj({ podSelector: {}, ingress: [{ from: [peer] }] });
const selector = (sel: unknown) => obj({ podSelector: sel });

// Each invalid object and the issues it must give, [code, path].
const invalid: { what: string; input: unknown; issues: [IssueCode, string][] }[] = [
  // not an object
  { what: 'null', input: null, issues: [['FieldValueTypeInvalid', '']] },
  // namespace and name are required
  { what: 'no metadata.namespace', input: obj({ podSelector: {} }, { name: 'p' }), issues: [['FieldValueRequired', 'metadata.namespace']] },
  // names follow the API's formats
  { what: 'bad names', input: obj({ podSelector: {} }, { name: 'P_1', namespace: 'X.y' }), issues: [['FieldValueInvalid', 'metadata.name'], ['FieldValueInvalid', 'metadata.namespace']] },
  // only networking.k8s.io/v1 NetworkPolicy
  { what: 'other kind', input: { ...obj({ podSelector: {} }), kind: 'Pod' }, issues: [['FieldValueNotSupported', 'kind']] },
  { what: 'other version', input: { ...obj({ podSelector: {} }), apiVersion: 'networking.k8s.io/v1beta1' }, issues: [['FieldValueNotSupported', 'apiVersion']] },
  // In and NotIn need values
  { what: 'In without values', input: selector({ matchExpressions: [{ key: 'a', operator: 'In' }] }), issues: [['FieldValueRequired', 'spec.podSelector.matchExpressions[0].values']] },
  { what: 'NotIn with empty values', input: selector({ matchExpressions: [{ key: 'a', operator: 'NotIn', values: [] }] }), issues: [['FieldValueRequired', 'spec.podSelector.matchExpressions[0].values']] },
  // Exists and DoesNotExist must not have values
  { what: 'Exists with values', input: selector({ matchExpressions: [{ key: 'a', operator: 'Exists', values: ['x'] }] }), issues: [['FieldValueForbidden', 'spec.podSelector.matchExpressions[0].values']] },
  { what: 'DoesNotExist with values', input: selector({ matchExpressions: [{ key: 'a', operator: 'DoesNotExist', values: ['x'] }] }), issues: [['FieldValueForbidden', 'spec.podSelector.matchExpressions[0].values']] },
  // unknown operators (they are case-sensitive)
  { what: 'unknown operator', input: selector({ matchExpressions: [{ key: 'a', operator: 'in', values: ['x'] }] }), issues: [['FieldValueInvalid', 'spec.podSelector.matchExpressions[0].operator']] },
  // label keys and values have formats
  { what: 'bad label key', input: selector({ matchLabels: { 'a b': 'x' } }), issues: [['FieldValueInvalid', 'spec.podSelector.matchLabels[a b]']] },
  { what: 'bad key prefix', input: selector({ matchExpressions: [{ key: 'Example.com/a', operator: 'Exists' }] }), issues: [['FieldValueInvalid', 'spec.podSelector.matchExpressions[0].key']] },
  { what: 'bad label value', input: selector({ matchLabels: { a: '-x' } }), issues: [['FieldValueInvalid', 'spec.podSelector.matchLabels[a]']] },
  { what: 'bad expression value', input: selector({ matchExpressions: [{ key: 'a', operator: 'In', values: ['x'.repeat(64)] }] }), issues: [['FieldValueInvalid', 'spec.podSelector.matchExpressions[0].values[0]']] },
  // a peer must say something, and ipBlock stands alone
  { what: 'empty peer', input: ingressPeer({}), issues: [['FieldValueRequired', 'spec.ingress[0].from[0]']] },
  { what: 'ipBlock with a selector', input: ingressPeer({ ipBlock: { cidr: '10.0.0.0/8' }, podSelector: {} }), issues: [['FieldValueForbidden', 'spec.ingress[0].from[0]']] },
  // CIDRs must parse
  { what: 'cidr not a CIDR', input: ingressPeer({ ipBlock: { cidr: '10.0.0.0' } }), issues: [['FieldValueInvalid', 'spec.ingress[0].from[0].ipBlock.cidr']] },
  { what: 'cidr prefix too long', input: ingressPeer({ ipBlock: { cidr: '10.0.0.0/33' } }), issues: [['FieldValueInvalid', 'spec.ingress[0].from[0].ipBlock.cidr']] },
  { what: 'cidr octet too big', input: ingressPeer({ ipBlock: { cidr: '10.0.0.256/32' } }), issues: [['FieldValueInvalid', 'spec.ingress[0].from[0].ipBlock.cidr']] },
  { what: 'empty cidr', input: ingressPeer({ ipBlock: { cidr: '' } }), issues: [['FieldValueRequired', 'spec.ingress[0].from[0].ipBlock.cidr']] },
  { what: 'bad except', input: ingressPeer({ ipBlock: { cidr: '10.0.0.0/8', except: ['10.1.0.0/x'] } }), issues: [['FieldValueInvalid', 'spec.ingress[0].from[0].ipBlock.except[0]']] },
  // excepts strictly inside the cidr
  { what: 'except outside', input: ingressPeer({ ipBlock: { cidr: '10.0.0.0/8', except: ['11.0.0.0/16'] } }), issues: [['FieldValueInvalid', 'spec.ingress[0].from[0].ipBlock.except[0]']] },
  { what: 'except equal', input: ingressPeer({ ipBlock: { cidr: '10.0.0.0/8', except: ['10.0.0.0/8'] } }), issues: [['FieldValueInvalid', 'spec.ingress[0].from[0].ipBlock.except[0]']] },
  { what: 'except wider', input: ingressPeer({ ipBlock: { cidr: '10.1.0.0/16', except: ['10.0.0.0/8'] } }), issues: [['FieldValueInvalid', 'spec.ingress[0].from[0].ipBlock.except[0]']] },
  { what: 'except of another family', input: ingressPeer({ ipBlock: { cidr: '10.0.0.0/8', except: ['fd00::/64'] } }), issues: [['FieldValueInvalid', 'spec.ingress[0].from[0].ipBlock.except[0]']] },
  // what Palisade refuses: IPv4-mapped IPv6 prefixes
  { what: 'IPv4-mapped IPv6', input: ingressPeer({ ipBlock: { cidr: '::ffff:10.0.0.0/104' } }), issues: [['PalisadeUnsupported', 'spec.ingress[0].from[0].ipBlock.cidr']] },
  // ports
  { what: 'port 0', input: ingressPort({ port: 0 }), issues: [['FieldValueInvalid', 'spec.ingress[0].ports[0].port']] },
  { what: 'port 65536', input: ingressPort({ port: 65536 }), issues: [['FieldValueInvalid', 'spec.ingress[0].ports[0].port']] },
  { what: 'port not an integer', input: ingressPort({ port: 80.5 }), issues: [['FieldValueTypeInvalid', 'spec.ingress[0].ports[0].port']] },
  { what: 'port of another type', input: ingressPort({ port: true }), issues: [['FieldValueTypeInvalid', 'spec.ingress[0].ports[0].port']] },
  { what: 'endPort below port', input: ingressPort({ port: 81, endPort: 80 }), issues: [['FieldValueInvalid', 'spec.ingress[0].ports[0].endPort']] },
  { what: 'endPort out of range', input: ingressPort({ port: 81, endPort: 70000 }), issues: [['FieldValueInvalid', 'spec.ingress[0].ports[0].endPort']] },
  { what: 'endPort without port', input: ingressPort({ endPort: 80 }), issues: [['FieldValueInvalid', 'spec.ingress[0].ports[0].endPort']] },
  { what: 'endPort with a named port', input: ingressPort({ port: 'http', endPort: 80 }), issues: [['FieldValueInvalid', 'spec.ingress[0].ports[0].endPort']] },
  // named ports are IANA_SVC_NAME: lowercase, a letter, at most 15, no '--', no hyphen at the ends
  { what: 'named port uppercase', input: ingressPort({ port: 'HTTP' }), issues: [['FieldValueInvalid', 'spec.ingress[0].ports[0].port'], ['FieldValueInvalid', 'spec.ingress[0].ports[0].port']] },
  { what: 'named port digits only (a string)', input: ingressPort({ port: '80' }), issues: [['FieldValueInvalid', 'spec.ingress[0].ports[0].port']] },
  { what: 'named port too long', input: ingressPort({ port: 'a'.repeat(16) }), issues: [['FieldValueInvalid', 'spec.ingress[0].ports[0].port']] },
  { what: 'named port double hyphen', input: ingressPort({ port: 'a--b' }), issues: [['FieldValueInvalid', 'spec.ingress[0].ports[0].port']] },
  { what: 'named port trailing hyphen', input: ingressPort({ port: 'ab-' }), issues: [['FieldValueInvalid', 'spec.ingress[0].ports[0].port']] },
  // protocols are TCP, UDP, SCTP, case-sensitive
  { what: 'unknown protocol', input: ingressPort({ protocol: 'ICMP' }), issues: [['FieldValueNotSupported', 'spec.ingress[0].ports[0].protocol']] },
  { what: 'lowercase protocol', input: ingressPort({ protocol: 'tcp', port: 80 }), issues: [['FieldValueNotSupported', 'spec.ingress[0].ports[0].protocol']] },
  // policyTypes: Ingress and Egress, at most two
  { what: 'unknown policyType', input: obj({ podSelector: {}, policyTypes: ['ingress'] }), issues: [['FieldValueNotSupported', 'spec.policyTypes[0]']] },
  { what: 'three policyTypes', input: obj({ podSelector: {}, policyTypes: ['Ingress', 'Egress', 'Ingress'] }), issues: [['FieldValueInvalid', 'spec.policyTypes']] },
  // egress peers and ports are validated the same way
  { what: 'egress peer', input: obj({ podSelector: {}, egress: [{ to: [{ ipBlock: { cidr: 'x' } }], ports: [{ port: -1 }] }] }), issues: [['FieldValueInvalid', 'spec.egress[0].to[0].ipBlock.cidr'], ['FieldValueInvalid', 'spec.egress[0].ports[0].port']] },
  // wrong shapes
  { what: 'ingress not a list', input: obj({ podSelector: {}, ingress: {} }), issues: [['FieldValueTypeInvalid', 'spec.ingress']] },
];

for (const row of invalid) {
  test(`invalid: ${row.what}`, () => {
    const r = validateNetworkPolicy(row.input);
    assert.equal(r.ok, false);
    if (r.ok) return;
    assert.deepEqual(
      r.issues.map((i) => [i.code, i.path]),
      row.issues,
    );
    for (const i of r.issues) assert.ok(i.message.length > 0);
  });
}

// Each valid object and the policy it gives (normalized).
const valid: { what: string; input: unknown; spec: unknown }[] = [
  // the smallest policy
  { what: 'empty pod selector', input: obj({ podSelector: {} }), spec: { podSelector: {} } },
  // the API server defaults spec and podSelector to {}; null reads as absent
  { what: 'no spec', input: { metadata: META }, spec: { podSelector: {} } },
  { what: 'nulls', input: obj({ podSelector: null, ingress: null, egress: [{ to: null, ports: null }] }), spec: { podSelector: {}, egress: [{}] } },
  // host bits are accepted and cleared; IPv6 is normalized (RFC 5952)
  {
    what: 'CIDRs normalized',
    input: ingressPeer({ ipBlock: { cidr: '10.1.2.3/8', except: ['10.1.2.3/16'] } }),
    spec: { podSelector: {}, ingress: [{ from: [{ ipBlock: { cidr: '10.0.0.0/8', except: ['10.1.0.0/16'] } }] }] },
  },
  { what: 'IPv6', input: ingressPeer({ ipBlock: { cidr: 'FD00:0:0:0::1/64', except: ['fd00::8000:0:0:0/65'] } }), spec: { podSelector: {}, ingress: [{ from: [{ ipBlock: { cidr: 'fd00::/64', except: ['fd00::8000:0:0:0/65'] } }] }] } },
  // leading zeros in IPv4 octets read as decimal, like the API server's parser
  { what: 'leading zeros', input: ingressPeer({ ipBlock: { cidr: '010.000.0.0/8' } }), spec: { podSelector: {}, ingress: [{ from: [{ ipBlock: { cidr: '10.0.0.0/8' } }] }] } },
  // every field at once; unknown fields are dropped
  {
    what: 'everything',
    input: {
      ...obj({
        podSelector: { matchLabels: { 'app.kubernetes.io/name': 'web' }, matchExpressions: [{ key: 'tier', operator: 'NotIn', values: ['db'] }] },
        policyTypes: ['Ingress', 'Egress'],
        ingress: [{ from: [{ namespaceSelector: {}, podSelector: { matchExpressions: [{ key: 'a', operator: 'Exists' }] } }], ports: [{ port: 'http' }, { protocol: 'UDP', port: 53 }] }],
        egress: [{ ports: [{ protocol: 'SCTP', port: 1000, endPort: 2000 }, { protocol: 'TCP' }] }],
        somethingNew: true,
      }),
      status: {},
    },
    spec: {
      podSelector: { matchLabels: { 'app.kubernetes.io/name': 'web' }, matchExpressions: [{ key: 'tier', operator: 'NotIn', values: ['db'] }] },
      policyTypes: ['Ingress', 'Egress'],
      ingress: [{ from: [{ namespaceSelector: {}, podSelector: { matchExpressions: [{ key: 'a', operator: 'Exists' }] } }], ports: [{ port: 'http' }, { protocol: 'UDP', port: 53 }] }],
      egress: [{ ports: [{ protocol: 'SCTP', port: 1000, endPort: 2000 }, { protocol: 'TCP' }] }],
    },
  },
  // endPort equal to port is a range of one
  { what: 'endPort equal', input: ingressPort({ port: 80, endPort: 80 }), spec: { podSelector: {}, ingress: [{ ports: [{ port: 80, endPort: 80 }] }] } },
  // an empty label value is a valid value
  { what: 'empty label value', input: selector({ matchLabels: { a: '' } }), spec: { podSelector: { matchLabels: { a: '' } } } },
];

for (const row of valid) {
  test(`valid: ${row.what}`, () => {
    const r = validateNetworkPolicy(row.input);
    assert.deepEqual(r, { ok: true, policy: { namespace: 'x', name: 'p', spec: row.spec } });
  });
}

test('every issue of an object is reported at once (where the shape allows)', () => {
  const r = validateNetworkPolicy(obj({ podSelector: {}, ingress: [{ from: [{}], ports: [{ port: 0 }, { protocol: 'ICMP' }] }] }));
  assert.equal(r.ok, false);
  if (!r.ok) assert.equal(r.issues.length, 3);
});
