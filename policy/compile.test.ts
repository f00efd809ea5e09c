// Table tests of the NetworkPolicy semantics, one row per rule of the spec,
// on the scenario cluster (namespaces x, y, z labelled ns=<name>; pods a, b,
// c labelled pod=<name> at 10.0.<1..3>.<1..3>, serving the named ports
// serve-{80,81}-{tcp,udp,sctp}). Every row is checked twice: the compiled
// entries evaluated like the datapath, and the reference reading of the spec.
// Then structural tests of the output.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { compile } from './compile.ts';
import { evaluate } from './evaluate.ts';
import { allocateIdentities, compileCluster, compiledVerdicts, matrix, np, podKey, referenceVerdicts, scenarioCluster, type Cluster } from './fixtures.ts';
import { IDENTITY_INIT, identityKey, regionId, ruleRefString } from './ids.ts';
import { allowed } from './reference.ts';
import type { NetworkPolicyInput, PodInput, Protocol } from './types.ts';

type Probe = { protocol: Protocol; port: number; blocked: string[] };

interface Row {
  what: string;
  policies: NetworkPolicyInput[];
  probes: Probe[];
  /** Changes to the default cluster. */
  tweak?: (c: Cluster) => void;
}

const pod = (c: Cluster, key: string) => c.pods.find((p) => podKey(p) === key)!;
const TCP80 = (blocked: string[]): Probe => ({ protocol: 'TCP', port: 80, blocked });

/** `blocked` pairs `SRC>DST`, each side a pod `x/a`, a namespace `x/*` or `*`. */
function expected(blocked: string[]): (from: PodInput, to: PodInput) => boolean {
  const m = (pattern: string, p: PodInput) => pattern === '*' || pattern === podKey(p) || (pattern.endsWith('/*') && pattern.slice(0, -2) === p.namespace);
  return (from, to) => !blocked.some((b) => {
    const [s, d] = b.split('>');
    return m(s!, from) && m(d!, to);
  });
}

const rows: Row[] = [
  { what: 'no policy: everything is allowed', policies: [], probes: [TCP80([])] },
  {
    what: 'policyTypes [Ingress] and no ingress rules: all ingress to the selected pods is denied',
    policies: [np('x', 'deny', { podSelector: {}, policyTypes: ['Ingress'] })],
    probes: [TCP80(['*>x/*']), { protocol: 'UDP', port: 81, blocked: ['*>x/*'] }],
  },
  {
    what: 'policyTypes omitted and no rules: an Ingress policy (deny all ingress)',
    policies: [np('x', 'deny', { podSelector: {} })],
    probes: [TCP80(['*>x/*'])],
  },
  {
    what: 'policyTypes omitted with egress rules: Ingress and Egress (no ingress rules: ingress denied)',
    policies: [np('y', 'a-to-z', { podSelector: { matchLabels: { pod: 'a' } }, egress: [{ to: [{ namespaceSelector: { matchLabels: { ns: 'z' } } }] }] })],
    probes: [TCP80(['y/a>x/*', 'y/a>y/*', '*>y/a'])],
  },
  {
    what: 'policyTypes [Egress] with ingress rules: the ingress rules are ignored, ingress stays open',
    policies: [np('x', 'egress-only', { podSelector: {}, policyTypes: ['Egress'], ingress: [{ from: [{ podSelector: { matchLabels: { pod: 'b' } } }] }], egress: [{}] })],
    probes: [TCP80([])],
  },
  {
    what: 'policyTypes [Egress] and no egress rules: all egress of the selected pods is denied',
    policies: [np('x', 'no-egress', { podSelector: { matchLabels: { pod: 'a' } }, policyTypes: ['Egress'] })],
    probes: [TCP80(['x/a>*'])],
  },
  {
    what: 'ingress: [{}] (one empty rule) allows everything to the selected pods',
    policies: [np('x', 'allow-all', { podSelector: {}, ingress: [{}] })],
    probes: [TCP80([]), { protocol: 'SCTP', port: 81, blocked: [] }],
  },
  {
    what: 'egress: [{}] allows everything from the selected pods',
    policies: [np('x', 'allow-all', { podSelector: {}, policyTypes: ['Egress'], egress: [{}] })],
    probes: [TCP80([])],
  },
  {
    what: 'from: [] with ports: every peer, only on those ports',
    policies: [np('x', 'port-80', { podSelector: {}, ingress: [{ from: [], ports: [{ port: 80 }] }] })],
    probes: [TCP80([]), { protocol: 'TCP', port: 81, blocked: ['*>x/*'] }],
  },
  {
    what: 'to missing with ports: every destination, only on those ports',
    policies: [np('x', 'port-80', { podSelector: { matchLabels: { pod: 'b' } }, policyTypes: ['Egress'], egress: [{ ports: [{ port: 80 }] }] })],
    probes: [TCP80([]), { protocol: 'TCP', port: 81, blocked: ['x/b>*'] }],
  },
  {
    what: 'podSelector alone: pods of the policy’s namespace only',
    policies: [np('x', 'from-x', { podSelector: { matchLabels: { pod: 'a' } }, ingress: [{ from: [{ podSelector: {} }] }] })],
    probes: [TCP80(['y/*>x/a', 'z/*>x/a'])],
  },
  {
    what: 'namespaceSelector alone: every pod of the matching namespaces',
    policies: [np('x', 'from-y', { podSelector: { matchLabels: { pod: 'a' } }, ingress: [{ from: [{ namespaceSelector: { matchLabels: { ns: 'y' } } }] }] })],
    probes: [TCP80(['x/*>x/a', 'z/*>x/a'])],
  },
  {
    what: 'namespaceSelector and podSelector in one peer: both must match (AND)',
    policies: [
      np('x', 'from-y-b', {
        podSelector: { matchLabels: { pod: 'a' } },
        ingress: [{ from: [{ namespaceSelector: { matchLabels: { ns: 'y' } }, podSelector: { matchLabels: { pod: 'b' } } }] }],
      }),
    ],
    probes: [TCP80(['x/*>x/a', 'z/*>x/a', 'y/a>x/a', 'y/c>x/a'])],
  },
  {
    what: 'two peers in one rule: either matches (OR)',
    policies: [
      np('x', 'from-y-or-b', {
        podSelector: { matchLabels: { pod: 'a' } },
        ingress: [{ from: [{ namespaceSelector: { matchLabels: { ns: 'y' } } }, { podSelector: { matchLabels: { pod: 'b' } } }] }],
      }),
    ],
    probes: [TCP80(['x/c>x/a', 'z/*>x/a'])],
  },
  {
    what: 'empty namespaceSelector: pods of every namespace',
    policies: [np('x', 'from-all-ns', { podSelector: { matchLabels: { pod: 'a' } }, ingress: [{ from: [{ namespaceSelector: {} }] }] })],
    probes: [TCP80([])],
  },
  {
    what: 'empty namespaceSelector with a podSelector: those pods in every namespace',
    policies: [np('x', 'c-from-all-ns', { podSelector: { matchLabels: { pod: 'a' } }, ingress: [{ from: [{ namespaceSelector: {}, podSelector: { matchLabels: { pod: 'c' } } }] }] })],
    probes: [TCP80(['x/b>x/a', 'y/a>x/a', 'y/b>x/a', 'z/a>x/a', 'z/b>x/a'])],
  },
  {
    what: 'matchExpressions on the namespace name label (set by the API server)',
    policies: [
      np('x', 'from-y-z', {
        podSelector: { matchLabels: { pod: 'a' } },
        ingress: [{ from: [{ namespaceSelector: { matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'In', values: ['y', 'z'] }] } }] }],
      }),
    ],
    probes: [TCP80(['x/*>x/a'])],
  },
  {
    what: 'NotIn matches pods without the key; In does not',
    tweak: (c) => {
      pod(c, 'x/b').labels = { pod: 'b', role: 'db' };
      pod(c, 'x/c').labels = { pod: 'c', role: 'web' };
    },
    policies: [
      np('x', 'not-db', { podSelector: { matchLabels: { pod: 'a' } }, ingress: [{ from: [{ podSelector: { matchExpressions: [{ key: 'role', operator: 'NotIn', values: ['db'] }] } }] }] }),
      np('y', 'only-web', { podSelector: { matchLabels: { pod: 'a' } }, ingress: [{ from: [{ namespaceSelector: {}, podSelector: { matchExpressions: [{ key: 'role', operator: 'In', values: ['web', 'db'] }] } }] }] }),
    ],
    probes: [TCP80(['x/b>x/a', 'y/*>x/a', 'z/*>x/a', 'x/a>y/a', 'y/*>y/a', 'z/*>y/a'])],
  },
  {
    what: 'Exists and DoesNotExist',
    tweak: (c) => {
      pod(c, 'x/b').labels = { pod: 'b', role: 'db' };
    },
    policies: [
      np('x', 'has-role', { podSelector: { matchLabels: { pod: 'a' } }, ingress: [{ from: [{ podSelector: { matchExpressions: [{ key: 'role', operator: 'Exists' }] } }] }] }),
      np('x', 'c-from-no-role', { podSelector: { matchLabels: { pod: 'c' } }, ingress: [{ from: [{ podSelector: { matchExpressions: [{ key: 'role', operator: 'DoesNotExist' }] } }] }] }),
    ],
    probes: [TCP80(['x/c>x/a', 'y/*>x/a', 'z/*>x/a', 'x/b>x/c', 'y/*>x/c', 'z/*>x/c'])],
  },
  {
    what: 'ports are ORed; a port without protocol is TCP',
    policies: [np('x', 'ports', { podSelector: { matchLabels: { pod: 'a' } }, ingress: [{ ports: [{ port: 80 }, { port: 81, protocol: 'UDP' }] }] })],
    probes: [
      TCP80([]),
      { protocol: 'TCP', port: 81, blocked: ['*>x/a'] },
      { protocol: 'UDP', port: 81, blocked: [] },
      { protocol: 'UDP', port: 80, blocked: ['*>x/a'] },
    ],
  },
  {
    what: 'a rule matches when its peer AND its port match; rules are unioned',
    policies: [
      np('x', 'two-rules', {
        podSelector: { matchLabels: { pod: 'a' } },
        ingress: [
          { from: [{ namespaceSelector: { matchLabels: { ns: 'y' } } }], ports: [{ port: 80 }] },
          { from: [{ namespaceSelector: { matchLabels: { ns: 'z' } } }], ports: [{ port: 81 }] },
        ],
      }),
    ],
    probes: [TCP80(['x/*>x/a', 'z/*>x/a']), { protocol: 'TCP', port: 81, blocked: ['x/*>x/a', 'y/*>x/a'] }],
  },
  {
    what: 'several policies selecting one pod: the union of what they allow',
    policies: [
      np('x', 'from-y', { podSelector: { matchLabels: { pod: 'a' } }, ingress: [{ from: [{ namespaceSelector: { matchLabels: { ns: 'y' } } }] }] }),
      np('x', 'from-z', { podSelector: {}, ingress: [{ from: [{ namespaceSelector: { matchLabels: { ns: 'z' } } }] }] }),
    ],
    probes: [TCP80(['x/*>x/*', 'y/*>x/b', 'y/*>x/c'])],
  },
  {
    what: 'a policy never selects pods of another namespace',
    policies: [np('y', 'deny-a', { podSelector: { matchLabels: { pod: 'a' } }, policyTypes: ['Ingress'] })],
    probes: [TCP80(['*>y/a'])],
  },
  {
    what: 'protocol without port: every port of that protocol',
    policies: [np('x', 'udp', { podSelector: {}, ingress: [{ ports: [{ protocol: 'UDP' }] }] })],
    probes: [{ protocol: 'UDP', port: 80, blocked: [] }, { protocol: 'UDP', port: 81, blocked: [] }, TCP80(['*>x/*'])],
  },
  {
    what: 'endPort: an inclusive range',
    policies: [np('x', 'range', { podSelector: {}, ingress: [{ ports: [{ port: 79, endPort: 80 }] }] })],
    probes: [TCP80([]), { protocol: 'TCP', port: 79, blocked: [] }, { protocol: 'TCP', port: 81, blocked: ['*>x/*'] }],
  },
  {
    what: 'SCTP ports',
    policies: [np('x', 'sctp', { podSelector: {}, ingress: [{ ports: [{ protocol: 'SCTP', port: 80 }] }] })],
    probes: [{ protocol: 'SCTP', port: 80, blocked: [] }, { protocol: 'SCTP', port: 81, blocked: ['*>x/*'] }, TCP80(['*>x/*'])],
  },
  {
    what: 'ingress named port: resolved on the selected pod',
    tweak: (c) => {
      // x/b serves its "serve-81-tcp" on 80.
      pod(c, 'x/b').containerPorts = [{ name: 'serve-81-tcp', containerPort: 80, protocol: 'TCP' }];
    },
    policies: [np('x', 'named', { podSelector: {}, ingress: [{ ports: [{ port: 'serve-81-tcp' }] }] })],
    probes: [TCP80(['*>x/a', '*>x/c']), { protocol: 'TCP', port: 81, blocked: ['*>x/b'] }],
  },
  {
    what: 'named port of another protocol than the rule’s (TCP by default) matches nothing',
    policies: [np('x', 'named-udp-as-tcp', { podSelector: {}, ingress: [{ ports: [{ port: 'serve-80-udp' }] }] })],
    probes: [TCP80(['*>x/*']), { protocol: 'UDP', port: 80, blocked: ['*>x/*'] }],
  },
  {
    what: 'named port with its protocol',
    policies: [np('x', 'named-udp', { podSelector: {}, ingress: [{ ports: [{ port: 'serve-80-udp', protocol: 'UDP' }] }] })],
    probes: [{ protocol: 'UDP', port: 80, blocked: [] }, TCP80(['*>x/*'])],
  },
  {
    what: 'egress named port: resolved on each destination pod',
    tweak: (c) => {
      pod(c, 'y/b').containerPorts = [{ name: 'serve-81-tcp', containerPort: 80, protocol: 'TCP' }];
    },
    policies: [np('x', 'named-egress', { podSelector: { matchLabels: { pod: 'a' } }, policyTypes: ['Egress'], egress: [{ to: [{ namespaceSelector: {} }], ports: [{ port: 'serve-81-tcp' }] }] })],
    probes: [TCP80(['x/a>x/*', 'x/a>y/a', 'x/a>y/c', 'x/a>z/*']), { protocol: 'TCP', port: 81, blocked: ['x/a>y/b'] }],
  },
  {
    what: 'egress named port to every destination (no `to`)',
    policies: [np('x', 'named-egress-all', { podSelector: { matchLabels: { pod: 'a' } }, policyTypes: ['Egress'], egress: [{ ports: [{ port: 'serve-81-udp', protocol: 'UDP' }] }] })],
    probes: [{ protocol: 'UDP', port: 81, blocked: [] }, { protocol: 'UDP', port: 80, blocked: ['x/a>*'] }],
  },
  {
    what: 'egress named port to an ipBlock: the pods inside the block that have it',
    policies: [
      np('x', 'named-ipblock', {
        podSelector: { matchLabels: { pod: 'a' } },
        policyTypes: ['Egress'],
        egress: [{ to: [{ ipBlock: { cidr: '10.0.0.0/16', except: ['10.0.3.0/24'] } }], ports: [{ port: 'serve-80-tcp' }] }],
      }),
    ],
    probes: [TCP80(['x/a>z/*']), { protocol: 'TCP', port: 81, blocked: ['x/a>*'] }],
  },
  {
    what: 'ipBlock with except matches pod IPs (ingress)',
    policies: [np('x', 'cidr', { podSelector: { matchLabels: { pod: 'a' } }, ingress: [{ from: [{ ipBlock: { cidr: '10.0.0.0/16', except: ['10.0.2.0/24'] } }] }] })],
    probes: [TCP80(['y/*>x/a'])],
  },
  {
    what: 'ipBlock matches pod IPs (egress)',
    policies: [np('x', 'cidr', { podSelector: { matchLabels: { pod: 'a' } }, policyTypes: ['Egress'], egress: [{ to: [{ ipBlock: { cidr: '10.0.2.0/24' } }] }] })],
    probes: [TCP80(['x/a>x/*', 'x/a>z/*'])],
  },
  {
    what: 'ipBlocks are ORed: an address excepted by one is admitted by another',
    policies: [
      np('x', 'cidrs', {
        podSelector: { matchLabels: { pod: 'a' } },
        ingress: [{ from: [{ ipBlock: { cidr: '10.0.0.0/16', except: ['10.0.2.0/24'] } }, { ipBlock: { cidr: '10.0.2.2/32' } }] }],
      }),
    ],
    probes: [TCP80(['y/a>x/a', 'y/c>x/a'])],
  },
  {
    what: 'ipBlock and a selector peer in one rule: ORed',
    policies: [
      np('x', 'cidr-or-selector', {
        podSelector: { matchLabels: { pod: 'a' } },
        ingress: [{ from: [{ ipBlock: { cidr: '10.0.3.0/24', except: ['10.0.3.1/32'] } }, { namespaceSelector: { matchLabels: { ns: 'z' } }, podSelector: { matchLabels: { pod: 'a' } } }] }],
      }),
    ],
    probes: [TCP80(['x/*>x/a', 'y/*>x/a'])],
  },
  {
    what: 'a connection needs the egress of its source and the ingress of its destination',
    policies: [
      np('x', 'a-no-egress', { podSelector: { matchLabels: { pod: 'a' } }, policyTypes: ['Egress'] }),
      np('y', 'b-from-x-a', { podSelector: { matchLabels: { pod: 'b' } }, ingress: [{ from: [{ namespaceSelector: { matchLabels: { ns: 'x' } }, podSelector: { matchLabels: { pod: 'a' } } }] }] }),
    ],
    probes: [TCP80(['x/a>*', '*>y/b'])],
  },
];

for (const row of rows) {
  test(`semantics: ${row.what}`, () => {
    const cluster = scenarioCluster();
    row.tweak?.(cluster);
    const compiled = compileCluster(cluster, row.policies);
    assert.deepEqual(compiled.problems, []);
    for (const probe of row.probes) {
      const want = matrix(cluster.pods, expected(probe.blocked));
      const label = `${probe.protocol}/${probe.port}`;
      assert.equal(matrix(cluster.pods, compiledVerdicts(compiled, probe.protocol, probe.port)), want, `compiled, ${label}`);
      assert.equal(matrix(cluster.pods, referenceVerdicts(cluster, row.policies, probe.protocol, probe.port)), want, `reference, ${label}`);
    }
  });
}

// ---- addresses that are not pods ----

const OUTSIDE = '192.168.1.1';

// Each row: the policies of x/a, and whether OUTSIDE may reach x/a (ingress) and x/a may reach OUTSIDE (egress).
const outsideRows: { what: string; policies: NetworkPolicyInput[]; ingress: boolean; egress: boolean }[] = [
  // ingress: [{}] allows every source, pods or not
  { what: 'empty rule', policies: [np('x', 'p', { podSelector: {}, policyTypes: ['Ingress', 'Egress'], ingress: [{}], egress: [{}] })], ingress: true, egress: true },
  // selectors never match addresses that are not pods, even the empty namespaceSelector
  {
    what: 'selectors',
    policies: [np('x', 'p', { podSelector: {}, policyTypes: ['Ingress', 'Egress'], ingress: [{ from: [{ namespaceSelector: {} }] }], egress: [{ to: [{ namespaceSelector: {} }] }] })],
    ingress: false,
    egress: false,
  },
  // an ipBlock matches them
  {
    what: 'ipBlock',
    policies: [np('x', 'p', { podSelector: {}, policyTypes: ['Ingress', 'Egress'], ingress: [{ from: [{ ipBlock: { cidr: '192.168.0.0/16' } }] }], egress: [{ to: [{ ipBlock: { cidr: '0.0.0.0/0', except: ['192.168.1.0/24'] } }] }] })],
    ingress: true,
    egress: false,
  },
  // a named port never matches an address that is not a pod (nothing to resolve it on) in egress
  { what: 'egress named port', policies: [np('x', 'p', { podSelector: {}, policyTypes: ['Egress'], egress: [{ ports: [{ port: 'serve-80-tcp' }] }] })], ingress: true, egress: false },
  // ingress named ports resolve on the pod itself: any source
  { what: 'ingress named port', policies: [np('x', 'p', { podSelector: {}, ingress: [{ ports: [{ port: 'serve-80-tcp' }] }] })], ingress: true, egress: true },
];

for (const row of outsideRows) {
  test(`addresses outside the cluster: ${row.what}`, () => {
    const cluster = scenarioCluster();
    const compiled = compileCluster(cluster, row.policies);
    const xa = pod(cluster, 'x/a');
    const c = (src: string, dst: string) => evaluate(compiled, { src, dst, protocol: 'TCP', port: 80 }).allowed;
    const r = (from: { pod: PodInput } | { ip: string }, to: { pod: PodInput } | { ip: string }) => allowed(row.policies, cluster.pods, cluster.namespaces, from, to, 'TCP', 80);
    assert.equal(c(OUTSIDE, xa.ip!), row.ingress, 'compiled ingress');
    assert.equal(r({ ip: OUTSIDE }, { pod: xa }), row.ingress, 'reference ingress');
    assert.equal(c(xa.ip!, OUTSIDE), row.egress, 'compiled egress');
    assert.equal(r({ pod: xa }, { ip: OUTSIDE }), row.egress, 'reference egress');
  });
}

// ---- the output itself ----

test('output: an empty rule is one ANY entry; unselected directions are undefined', () => {
  const cluster = scenarioCluster(['x'], ['a']);
  const out = compileCluster(cluster, [np('x', 'all', { podSelector: {}, ingress: [{}] })]);
  const e = out.endpoints.get('x/a')!;
  assert.equal(e.egress, undefined);
  assert.deepEqual(e.ingress?.isolatedBy, [{ namespace: 'x', name: 'all' }]);
  assert.deepEqual(e.ingress?.entries, [{ peer: { kind: 'any' }, protocol: 'ANY', port: 'any', rule: { namespace: 'x', name: 'all', direction: 'ingress', index: 0 } }]);
  assert.deepEqual(e.ingress?.cidrRegions, []);
  assert.equal(ruleRefString(e.ingress!.entries[0]!.rule), 'x/all/ingress/0');
});

test('output: isolatedBy sorted, entries sorted by rule then peer, protocol, port, without duplicates', () => {
  const cluster = scenarioCluster(['x', 'y'], ['a', 'b']);
  const ids = allocateIdentities(cluster);
  const out = compileCluster(cluster, [
    np('x', 'z-second', { podSelector: {}, ingress: [{ from: [{ namespaceSelector: {} }], ports: [{ port: 81 }, { port: 80 }, { port: 80 }] }] }),
    np('x', 'a-first', { podSelector: {}, ingress: [{ from: [{ podSelector: {} }, { podSelector: { matchLabels: { pod: 'a' } } }] }] }),
  ]);
  const ing = out.endpoints.get('x/a')!.ingress!;
  assert.deepEqual(ing.isolatedBy.map((p) => p.name), ['a-first', 'z-second']);
  const id = (k: string) => ids.get(identityKey({ 'kubernetes.io/metadata.name': k.split('/')[0]!, ns: k.split('/')[0]! }, { pod: k.split('/')[1]! }))!;
  const row = (e: (typeof ing.entries)[number]) => `${e.rule.name} ${e.peer.kind === 'identity' ? e.peer.identity : e.peer.kind} ${e.protocol} ${e.port === 'any' ? 'any' : `${e.port.from}-${e.port.to}`}`;
  const xs = ['x/a', 'x/b'].map(id).sort((a, b) => a - b);
  const all = ['x/a', 'x/b', 'y/a', 'y/b'].map(id).sort((a, b) => a - b);
  assert.deepEqual(ing.entries.map(row), [
    ...xs.map((i) => `a-first ${i} ANY any`),
    ...all.flatMap((i) => [`z-second ${i} TCP 80-80`, `z-second ${i} TCP 81-81`]),
  ]);
});

test('output: an identity without a number is reported and allows nothing (fail closed); the endpoint is still compiled', () => {
  const cluster = scenarioCluster(['x'], ['a', 'b']);
  const ids = allocateIdentities(cluster);
  const bKey = identityKey({ 'kubernetes.io/metadata.name': 'x', ns: 'x' }, { pod: 'b' });
  ids.delete(bKey);
  const policies = [np('x', 'p', { podSelector: {}, ingress: [{ from: [{ podSelector: {} }] }] })];
  const out = compileCluster(cluster, policies, ids);
  assert.deepEqual(out.missingIdentities, [bKey]);
  const b = out.endpoints.get('x/b')!;
  assert.equal(b.identity, undefined);
  assert.equal(b.identityKey, bKey);
  assert.ok(b.ingress, 'x/b is still isolated by its policy');
  const [xa, xb] = cluster.pods;
  assert.equal(evaluate(out, { src: xb!.ip!, dst: xa!.ip!, protocol: 'TCP', port: 80 }).allowed, false);
  assert.equal(evaluate(out, { src: xa!.ip!, dst: xb!.ip!, protocol: 'TCP', port: 80 }).allowed, true);
  assert.equal(out.ipcache.get(xb!.ip!), IDENTITY_INIT, 'matched by no selector, never world');
});

test('output: with a node, only its pods with an IP are endpoints; all pods are peers', () => {
  const cluster = scenarioCluster(['x', 'y'], ['a', 'b']);
  cluster.pods.push({ namespace: 'x', name: 'pending', labels: { pod: 'pending' }, node: 'node-1', containerPorts: [] });
  const out = compile({
    policies: [np('x', 'p', { podSelector: {}, ingress: [{ from: [{ namespaceSelector: {} }] }] })],
    pods: cluster.pods,
    namespaces: cluster.namespaces,
    identities: allocateIdentities(cluster),
    node: 'node-1',
  });
  assert.deepEqual([...out.endpoints.keys()], ['x/a', 'y/a']);
  // y/b (node-2) is a peer of x/a, and every pod with an IP is in the ipcache.
  assert.equal(out.endpoints.get('x/a')!.ingress!.entries.length, 5);
  assert.equal(out.ipcache.size, 4);
});

test('output: CIDR regions: every prefix of the rules, excepts as holes, rules per most specific prefix', () => {
  const cluster = scenarioCluster(['x'], ['a']);
  const out = compileCluster(cluster, [
    np('x', 'p', {
      podSelector: {},
      ingress: [
        { from: [{ ipBlock: { cidr: '10.0.0.0/8', except: ['10.1.0.0/16'] } }], ports: [{ port: 80 }] },
        { from: [{ ipBlock: { cidr: '10.1.2.0/24' } }, { ipBlock: { cidr: 'fd00::1/64' } }], ports: [{ port: 81 }] },
      ],
    }),
  ]);
  const regions = out.endpoints.get('x/a')!.ingress!.cidrRegions;
  const view = regions.map((r) => `${r.prefix} ${r.family} ${r.entries.map((e) => `${e.rule.index}:${(e.port as { from: number }).from}`).join(',')}`);
  assert.deepEqual(view, ['10.0.0.0/8 4 0:80', '10.1.0.0/16 4 ', '10.1.2.0/24 4 1:81', 'fd00::/64 6 1:81']);
  for (const r of regions) {
    assert.equal(r.regionId, regionId(r.prefix));
    assert.ok(r.regionId >= 2 ** 31 && r.regionId < 2 ** 32);
    assert.ok(r.entries.every((e) => e.peer.kind === 'region' && e.peer.regionId === r.regionId));
  }
  const allowedFrom = (src: string, port: number) => evaluate(out, { src, dst: '10.0.1.1', protocol: 'TCP', port }).allowed;
  // Row by row: an address, a port, the verdict.
  for (const [src, port, want] of [
    ['10.9.9.9', 80, true], // in 10/8
    ['10.1.9.9', 80, false], // in the except hole
    ['10.1.2.3', 80, false], // in the hole, in 10.1.2.0/24 which allows 81 only
    ['10.1.2.3', 81, true],
    ['10.9.9.9', 81, false],
    ['fd00::5', 81, true],
    ['fd01::5', 81, false],
  ] as const) {
    assert.equal(allowedFrom(src, port), want, `${src} port ${port}`);
  }
});

test('output: two prefixes of one endpoint with the same region id: that direction fails closed, reported', () => {
  // Found by search: FNV-1a collides on these two texts (31 bits).
  const [p1, p2] = ['10.0.107.237/32', '10.2.219.40/32'];
  assert.equal(regionId(p1), regionId(p2));
  const cluster = scenarioCluster(['x'], ['a', 'b']);
  const out = compileCluster(cluster, [
    np('x', 'p', { podSelector: { matchLabels: { pod: 'a' } }, ingress: [{ from: [{ ipBlock: { cidr: p1 } }, { ipBlock: { cidr: p2 } }, { podSelector: {} }] }] }),
  ]);
  const ing = out.endpoints.get('x/a')!.ingress!;
  assert.deepEqual([ing.entries, ing.cidrRegions], [[], []]);
  assert.deepEqual(
    out.problems.map((p) => [p.code, p.endpoint]),
    [['RegionIdCollision', 'x/a']],
  );
});

test('output: entryCount: a summary per peer class, then per protocol all-ports or distinct ports', () => {
  const cluster = scenarioCluster(['x'], ['a']);
  const out = compileCluster(cluster, [
    np('x', 'p', {
      podSelector: {},
      ingress: [
        // ANY class: TCP 80, 81-85 (6 ports, 80 once) and every UDP port: 1 + 6 + 1
        { ports: [{ port: 80 }, { port: 81, endPort: 85 }, { port: 80 }, { protocol: 'UDP' }] },
        // x/a's identity: everything: 1
        { from: [{ podSelector: {} }] },
        // a region: SCTP 1000-1999 and 1500-2499: 1 + 1500
        { from: [{ ipBlock: { cidr: '192.168.0.0/16' } }], ports: [{ protocol: 'SCTP', port: 1000, endPort: 1999 }, { protocol: 'SCTP', port: 1500, endPort: 2499 }] },
      ],
    }),
  ]);
  assert.deepEqual(out.endpoints.get('x/a')!.ingress!.entryCount, { policy: 8 + 1 + 1501, cidr: 1 });
  assert.deepEqual(out.entryCount, { policy: 1510, cidr: 1 });
});

test('output: named egress ports resolve per pod: pods of one identity with different numbers for a name are each reachable on their own only', () => {
  const cluster = scenarioCluster(['x', 'y'], ['a', 'b', 'c']);
  // y/a and y/b share an identity (same labels) but serve "web" on different ports; y/c agrees with nobody (no "web").
  for (const name of ['y/a', 'y/b', 'y/c']) pod(cluster, name).labels = { app: 'web' };
  pod(cluster, 'y/a').containerPorts = [{ name: 'web', containerPort: 8080, protocol: 'TCP' }];
  pod(cluster, 'y/b').containerPorts = [{ name: 'web', containerPort: 9090, protocol: 'TCP' }];
  pod(cluster, 'y/c').containerPorts = [];
  const policies = [np('x', 'p', { podSelector: { matchLabels: { pod: 'a' } }, policyTypes: ['Egress'], egress: [{ to: [{ namespaceSelector: {} }], ports: [{ port: 'web' }] }] })];
  const out = compileCluster(cluster, policies);
  const xa = pod(cluster, 'x/a');
  // The reference (per pod) and the compiled policy agree on every destination and port.
  for (const to of ['y/a', 'y/b', 'y/c']) {
    for (const port of [8080, 9090]) {
      const dst = pod(cluster, to);
      const expected = allowed(policies, cluster.pods, cluster.namespaces, { pod: xa }, { pod: dst }, 'TCP', port);
      assert.equal(evaluate(out, { src: xa.ip!, dst: dst.ip!, protocol: 'TCP', port }).allowed, expected, `x/a -> ${to}:${port}`);
    }
  }
  assert.equal(evaluate(out, { src: xa.ip!, dst: pod(cluster, 'y/a').ip!, protocol: 'TCP', port: 9090 }).allowed, false);
  // The identity's pods disagree: one /32 region per pod with its own port, no identity entry for the name.
  const egress = out.endpoints.get('x/a')!.egress!;
  assert.deepEqual(egress.entries, []);
  assert.deepEqual(
    egress.cidrRegions.map((r) => [r.prefix, r.entries.map((e) => (e.port === 'any' ? 'any' : e.port.from))]),
    [[`${pod(cluster, 'y/a').ip}/32`, [8080]], [`${pod(cluster, 'y/b').ip}/32`, [9090]]],
  );
});

test('output: named egress ports: when all pods of an identity agree, one identity entry as before (no regions)', () => {
  const cluster = scenarioCluster(['x', 'y'], ['a', 'b']);
  for (const name of ['y/a', 'y/b']) {
    pod(cluster, name).labels = { app: 'web' };
    pod(cluster, name).containerPorts = [{ name: 'web', containerPort: 8080, protocol: 'TCP' }];
  }
  const policies = [np('x', 'p', { podSelector: { matchLabels: { pod: 'a' } }, policyTypes: ['Egress'], egress: [{ to: [{ namespaceSelector: {} }], ports: [{ port: 'web' }] }] })];
  const egress = compileCluster(cluster, policies).endpoints.get('x/a')!.egress!;
  assert.deepEqual(egress.entries.map((e) => [e.peer.kind, e.port === 'any' ? 'any' : e.port.from]), [['identity', 8080]]);
  assert.deepEqual(egress.cidrRegions, []);
  assert.deepEqual(egress.entryCount, { policy: 2, cidr: 0 });
});

test('output: the verdict names the rule that allowed, or the policies that isolate', () => {
  const cluster = scenarioCluster(['x', 'y'], ['a']);
  const out = compileCluster(cluster, [np('x', 'p', { podSelector: {}, ingress: [{ from: [{ namespaceSelector: { matchLabels: { ns: 'y' } } }], ports: [{ port: 80 }] }] })]);
  const [xa, ya] = cluster.pods;
  const ok = evaluate(out, { src: ya!.ip!, dst: xa!.ip!, protocol: 'TCP', port: 80 });
  assert.deepEqual(ok.ingress?.verdict, { decision: 'allow', rule: { namespace: 'x', name: 'p', direction: 'ingress', index: 0 }, via: 'identity' });
  assert.deepEqual(ok.egress?.verdict, { decision: 'unselected' });
  const no = evaluate(out, { src: ya!.ip!, dst: xa!.ip!, protocol: 'TCP', port: 81 });
  assert.deepEqual(no.ingress?.verdict, { decision: 'deny', isolatedBy: [{ namespace: 'x', name: 'p' }] });
  assert.equal(no.allowed, false);
});

test('identityKey does not depend on label order; namespaces without the name label get it', () => {
  assert.equal(identityKey({ b: '2', a: '1' }, { y: '1', x: '2' }), identityKey({ a: '1', b: '2' }, { x: '2', y: '1' }));
  assert.notEqual(identityKey({ a: '1' }, { x: '1' }), identityKey({ x: '1' }, { a: '1' }));
  const out = compile({
    policies: [],
    pods: [{ namespace: 'q', name: 'p', labels: { app: 'a' }, ip: '10.9.0.1', containerPorts: [] }],
    namespaces: [{ name: 'q', labels: { team: 't' } }],
    identities: new Map(),
  });
  assert.deepEqual(out.missingIdentities, [identityKey({ team: 't', 'kubernetes.io/metadata.name': 'q' }, { app: 'a' })]);
});
