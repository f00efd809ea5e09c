// A table of Palisade policy specs with the verdict the API page asks for,
// shared by the zod validator's unit test (palisade-policy.test.ts) and the
// end-to-end test that sends each one to a real API server with the generated
// CRDs (e2e/tests/palisade-policies.test.ts): both must reach the verdict
// below, naming the fields listed (the API server stops at the first stage
// that fails, schema then CEL, so it may name fewer; every field it names is
// one listed here).

export interface PolicyCase {
  name: string;
  spec: Record<string, unknown>;
  /** Field paths zod names, in order; empty: valid. */
  errors: string[];
  /** The API server accepts it: a check the operator alone makes (it then marks the policy Valid=False). */
  operatorOnly?: true;
}

const sel = { matchLabels: { app: 'billing' } };

export const POLICY_CASES: PolicyCase[] = [
  // ---- valid --------------------------------------------------------------------
  {
    name: 'the API page example: FQDN egress on TCP 443',
    spec: {
      endpointSelector: sel,
      egress: [{ toFQDNs: [{ matchName: 'api.stripe.com' }, { matchPattern: '*.s3.amazonaws.com' }], toPorts: [{ ports: [{ port: '443', protocol: 'TCP' }] }] }],
    },
    errors: [],
  },
  {
    name: 'a Cilium-style DNS rule with k8s: label sources',
    spec: {
      endpointSelector: {},
      egress: [
        {
          toEndpoints: [{ matchLabels: { 'k8s:io.kubernetes.pod.namespace': 'kube-system', 'k8s:k8s-app': 'kube-dns' } }],
          toPorts: [{ ports: [{ port: '53', protocol: 'UDP' }, { port: '53', protocol: 'TCP' }], rules: { dns: [{ matchPattern: '*' }] } }],
        },
      ],
    },
    errors: [],
  },
  {
    name: 'every peer kind, deny rules, a port range, ANY, port 0 and enableDefaultDeny',
    spec: {
      description: 'everything at once',
      endpointSelector: { matchExpressions: [{ key: 'tier', operator: 'In', values: ['web', 'api'] }, { key: 'canary', operator: 'DoesNotExist' }] },
      ingress: [
        { fromEndpoints: [{ matchLabels: { 'io.kubernetes.pod.namespace': 'monitoring' } }], toPorts: [{ ports: [{ port: '9090' }] }] },
        { fromEntities: ['cluster', 'host'] },
        { fromCIDR: ['192.168.0.0/16'], fromCIDRSet: [{ cidr: '10.0.0.0/8', except: ['10.1.0.0/16', '10.2.3.4/32'] }] },
        {},
      ],
      ingressDeny: [{ fromEntities: ['world'], toPorts: [{ ports: [{ port: '22', protocol: 'TCP' }] }] }],
      egress: [{ toEntities: ['kube-apiserver'] }, { toCIDR: ['0.0.0.0/0'], toPorts: [{ ports: [{ port: '8000', endPort: 8999, protocol: 'ANY' }, { port: '0', protocol: 'SCTP' }] }] }],
      egressDeny: [{ toFQDNs: [{ matchPattern: '**.ads.example.com' }] }, { toCIDRSet: [{ cidr: '169.254.169.254/32' }] }],
      enableDefaultDeny: { ingress: false, egress: true },
    },
    errors: [],
  },
  {
    name: 'empty lists, endPort equal to port, a name with a trailing dot and an underscore',
    spec: { endpointSelector: {}, ingress: [], egress: [{ toFQDNs: [{ matchName: '_dmarc.Example.COM.' }], toCIDR: [], toPorts: [{ ports: [{ port: '443', endPort: 443 }] }] }] },
    errors: [],
  },
  {
    name: 'host bits in a CIDR (cleared)',
    spec: { endpointSelector: {}, egress: [{ toCIDR: ['10.1.2.3/8'] }] },
    errors: [],
  },

  { name: 'a name of 253 characters and a trailing dot', spec: { endpointSelector: {}, egress: [{ toFQDNs: [{ matchName: `${['a'.repeat(63), 'b'.repeat(63), 'c'.repeat(63), 'd'.repeat(61)].join('.')}.` }] }] }, errors: [] },

  // ---- refused by the CRD schema and by zod ----------------------------------
  { name: 'no endpointSelector', spec: { egress: [{}] }, errors: ['spec.endpointSelector'] },
  { name: 'an unknown field', spec: { endpointSelector: {}, egress: [{ toPorts: [{ ports: [{ port: '443', bogus: true }] }] }] }, errors: ['spec.egress[0].toPorts[0].ports[0].bogus'] },
  { name: 'a Cilium field Palisade does not support', spec: { endpointSelector: {}, egress: [{ toServices: [{ k8sService: { serviceName: 'x' } }] }] }, errors: ['spec.egress[0].toServices'] },
  { name: 'HTTP rules', spec: { endpointSelector: {}, egress: [{ toPorts: [{ ports: [{ port: '80' }], rules: { http: [{ method: 'GET' }] } }] }] }, errors: ['spec.egress[0].toPorts[0].rules.dns', 'spec.egress[0].toPorts[0].rules.http'] },
  { name: 'a prefix length over 32', spec: { endpointSelector: {}, egress: [{ toCIDR: ['10.0.0.0/33'] }] }, errors: ['spec.egress[0].toCIDR[0]'] },
  { name: 'an address without a prefix length', spec: { endpointSelector: {}, ingress: [{ fromCIDR: ['10.0.0.1'] }] }, errors: ['spec.ingress[0].fromCIDR[0]'] },
  { name: 'an octet with a leading zero', spec: { endpointSelector: {}, ingress: [{ fromCIDR: ['10.0.0.01/32'] }] }, errors: ['spec.ingress[0].fromCIDR[0]'] },
  { name: 'a bad except', spec: { endpointSelector: {}, ingress: [{ fromCIDRSet: [{ cidr: '10.0.0.0/8', except: ['10.300.0.0/16'] }] }] }, errors: ['spec.ingress[0].fromCIDRSet[0].except[0]'] },
  { name: 'a CIDR set without cidr', spec: { endpointSelector: {}, ingress: [{ fromCIDRSet: [{ except: ['10.0.0.0/16'] }] }] }, errors: ['spec.ingress[0].fromCIDRSet[0].cidr'] },
  { name: 'a named port', spec: { endpointSelector: {}, egress: [{ toPorts: [{ ports: [{ port: 'https' }] }] }] }, errors: ['spec.egress[0].toPorts[0].ports[0].port'] },
  { name: 'port 65536', spec: { endpointSelector: {}, egress: [{ toPorts: [{ ports: [{ port: '65536' }] }] }] }, errors: ['spec.egress[0].toPorts[0].ports[0].port'] },
  { name: 'a port as a number', spec: { endpointSelector: {}, egress: [{ toPorts: [{ ports: [{ port: 443 }] }] }] }, errors: ['spec.egress[0].toPorts[0].ports[0].port'] },
  { name: 'endPort over 65535', spec: { endpointSelector: {}, egress: [{ toPorts: [{ ports: [{ port: '1', endPort: 70000 }] }] }] }, errors: ['spec.egress[0].toPorts[0].ports[0].endPort'] },
  { name: 'ICMP', spec: { endpointSelector: {}, egress: [{ toPorts: [{ ports: [{ port: '0', protocol: 'ICMP' }] }] }] }, errors: ['spec.egress[0].toPorts[0].ports[0].protocol'] },
  { name: 'toPorts without ports', spec: { endpointSelector: {}, egress: [{ toPorts: [{ ports: [] }] }] }, errors: ['spec.egress[0].toPorts[0].ports'] },
  { name: 'an unknown entity', spec: { endpointSelector: {}, ingress: [{ fromEntities: ['init'] }] }, errors: ['spec.ingress[0].fromEntities[0]'] },
  { name: 'an entity twice', spec: { endpointSelector: {}, ingress: [{ fromEntities: ['world', 'world'] }] }, errors: ['spec.ingress[0].fromEntities[1]'] },
  { name: 'a bad FQDN pattern: ** inside', spec: { endpointSelector: {}, egress: [{ toFQDNs: [{ matchPattern: 'a.**.example.com' }] }] }, errors: ['spec.egress[0].toFQDNs[0].matchPattern'] },
  { name: 'a bad FQDN pattern: a space', spec: { endpointSelector: {}, egress: [{ toFQDNs: [{ matchPattern: '*.exa mple.com' }] }] }, errors: ['spec.egress[0].toFQDNs[0].matchPattern'] },
  { name: 'a bad FQDN name: an empty label', spec: { endpointSelector: {}, egress: [{ toFQDNs: [{ matchName: 'example..com' }] }] }, errors: ['spec.egress[0].toFQDNs[0].matchName'] },
  { name: 'a bad FQDN name: a wildcard', spec: { endpointSelector: {}, egress: [{ toFQDNs: [{ matchName: '*.example.com' }] }] }, errors: ['spec.egress[0].toFQDNs[0].matchName'] },
  { name: 'a bad FQDN name: a label over 63 characters', spec: { endpointSelector: {}, egress: [{ toFQDNs: [{ matchName: `${'a'.repeat(64)}.com` }] }] }, errors: ['spec.egress[0].toFQDNs[0].matchName'] },
  { name: 'a bad operator', spec: { endpointSelector: { matchExpressions: [{ key: 'app', operator: 'Equals', values: ['x'] }] } }, errors: ['spec.endpointSelector.matchExpressions[0].operator'] },
  { name: 'a bad label value', spec: { endpointSelector: { matchLabels: { app: 'not ok' } } }, errors: ['spec.endpointSelector.matchLabels.app'] },
  { name: 'a bad expression key', spec: { endpointSelector: { matchExpressions: [{ key: 'a b', operator: 'Exists' }] } }, errors: ['spec.endpointSelector.matchExpressions[0].key'] },
  { name: 'too many ports', spec: { endpointSelector: {}, egress: [{ toPorts: [{ ports: Array.from({ length: 41 }, (_, i) => ({ port: String(i + 1) })) }] }] }, errors: ['spec.egress[0].toPorts[0].ports'] },

  // ---- refused by the CRD's CEL rules and by zod -------------------------------
  { name: 'endPort below port', spec: { endpointSelector: {}, egress: [{ toPorts: [{ ports: [{ port: '443', endPort: 80 }] }] }] }, errors: ['spec.egress[0].toPorts[0].ports[0].endPort'] },
  { name: 'endPort with port "0"', spec: { endpointSelector: {}, egress: [{ toPorts: [{ ports: [{ port: '0', endPort: 80 }] }] }] }, errors: ['spec.egress[0].toPorts[0].ports[0].endPort'] },
  { name: 'endPort without port', spec: { endpointSelector: {}, egress: [{ toPorts: [{ ports: [{ endPort: 80 }] }] }] }, errors: ['spec.egress[0].toPorts[0].ports[0].endPort'] },
  { name: 'DNS rules in an egress deny rule', spec: { endpointSelector: {}, egressDeny: [{ toPorts: [{ ports: [{ port: '53' }], rules: { dns: [{ matchName: 'example.com' }] } }] }] }, errors: ['spec.egressDeny[0].toPorts[0].rules'] },
  { name: 'DNS rules in an ingress deny rule', spec: { endpointSelector: {}, ingressDeny: [{ toPorts: [{ ports: [{ port: '53' }], rules: { dns: [{ matchName: 'example.com' }] } }] }] }, errors: ['spec.ingressDeny[0].toPorts[0].rules'] },
  { name: 'DNS rules in an ingress rule', spec: { endpointSelector: {}, ingress: [{ toPorts: [{ ports: [{ port: '53' }], rules: { dns: [{ matchName: 'example.com' }] } }] }] }, errors: ['spec.ingress[0].toPorts[0].rules'] },
  { name: 'DNS rules on port 443', spec: { endpointSelector: {}, egress: [{ toPorts: [{ ports: [{ port: '53' }, { port: '443' }], rules: { dns: [{ matchName: 'example.com' }] } }] }] }, errors: ['spec.egress[0].toPorts[0].rules'] },
  { name: 'DNS rules on SCTP', spec: { endpointSelector: {}, egress: [{ toPorts: [{ ports: [{ port: '53', protocol: 'SCTP' }], rules: { dns: [{ matchName: 'example.com' }] } }] }] }, errors: ['spec.egress[0].toPorts[0].rules'] },
  { name: 'matchName and matchPattern together', spec: { endpointSelector: {}, egress: [{ toFQDNs: [{ matchName: 'a.com', matchPattern: '*.a.com' }] }] }, errors: ['spec.egress[0].toFQDNs[0]'] },
  { name: 'an empty FQDN selector', spec: { endpointSelector: {}, egress: [{ toFQDNs: [{}] }] }, errors: ['spec.egress[0].toFQDNs[0]'] },
  { name: 'a name of 254 characters without a trailing dot', spec: { endpointSelector: {}, egress: [{ toFQDNs: [{ matchName: ['a'.repeat(63), 'b'.repeat(63), 'c'.repeat(63), 'd'.repeat(62)].join('.') }] }] }, errors: ['spec.egress[0].toFQDNs[0].matchName'] },
  { name: 'an IPv6 CIDR', spec: { endpointSelector: {}, egress: [{ toCIDR: ['fd00::/64'] }] }, errors: ['spec.egress[0].toCIDR[0]'] },
  { name: 'In without values', spec: { endpointSelector: { matchExpressions: [{ key: 'app', operator: 'In' }] } }, errors: ['spec.endpointSelector.matchExpressions[0].values'] },
  { name: 'Exists with values', spec: { endpointSelector: { matchExpressions: [{ key: 'app', operator: 'Exists', values: ['x'] }] } }, errors: ['spec.endpointSelector.matchExpressions[0].values'] },
  { name: 'a bad label key', spec: { endpointSelector: {}, ingress: [{ fromEndpoints: [{ matchLabels: { 'bad key': 'x' } }] }] }, errors: ['spec.ingress[0].fromEndpoints[0].matchLabels'] },
  { name: "Cilium's reserved: label source", spec: { endpointSelector: {}, ingress: [{ fromEndpoints: [{ matchLabels: { 'reserved:host': '' } }] }] }, errors: ['spec.ingress[0].fromEndpoints[0].matchLabels'] },

  // ---- refused by the operator alone -------------------------------------------
  { name: 'an except outside its cidr', spec: { endpointSelector: {}, egress: [{ toCIDRSet: [{ cidr: '10.0.0.0/8', except: ['11.0.0.0/16'] }] }] }, errors: ['spec.egress[0].toCIDRSet[0].except[0]'], operatorOnly: true },
  { name: 'an except equal to its cidr', spec: { endpointSelector: {}, ingress: [{ fromCIDRSet: [{ cidr: '10.0.0.0/8', except: ['10.0.0.0/8'] }] }] }, errors: ['spec.ingress[0].fromCIDRSet[0].except[0]'], operatorOnly: true },
];
