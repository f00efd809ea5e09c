import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import { classifyApplyObject, clusterPods, parseScenario, ScenarioError, usesDns, type KubeObject, type Step } from './format.ts';
import { cellAt } from './matrix.ts';

const EXAMPLES = new URL('../../../shared/scenarios/examples/', import.meta.url);

// What each example must parse into: the step types, and the port label of each probe.
const examples: { file: string; steps: string; cluster?: string[] }[] = [
  // default cluster, one apply then one numbered TCP probe
  { file: '01-egress-within-namespace.yaml', steps: 'apply probe:80/TCP' },
  // a named UDP port with a matching protocol, then numbered probes
  {
    file: '02-named-udp-port-from-namespace.yaml',
    steps: 'apply probe:81/UDP (serve-81-udp) probe:80/UDP probe:81/TCP',
  },
  // several probes over TCP and UDP
  { file: '03-egress-port-ranges.yaml', steps: 'apply probe:80/TCP probe:81/TCP probe:81/UDP' },
  // placeholders in an applied object are accepted as they are
  { file: '04-ingress-ipblock-except.yaml', steps: 'apply probe:80/TCP' },
  // a smaller cluster with a quoted 'y', label steps between probes
  {
    file: '05-labels-move-pods-in-and-out.yaml',
    steps: 'apply probe:80/TCP labelPod probe:80/TCP labelNamespace probe:80/TCP labelPod probe:80/TCP',
    cluster: ['x/a', 'x/b', 'y/a', 'y/b'],
  },
  // a replacing apply and a delete
  { file: '06-policy-types-default.yaml', steps: 'apply probe:81/TCP apply probe:81/TCP delete probe:81/TCP' },
];

const summary = (steps: Step[]) => steps.map((s) => (s.type === 'probe' ? `probe:${s.portLabel}` : s.type)).join(' ');

for (const row of examples) {
  const url = new URL(row.file, EXAMPLES);
  const skip = existsSync(url) ? false : `examples not found at ${EXAMPLES.pathname}`;
  test(`example ${row.file} parses`, { skip }, () => {
    const scenario = parseScenario(readFileSync(url, 'utf8'), row.file);
    assert.equal(summary(scenario.steps), row.steps);
    assert.deepEqual(clusterPods(scenario.cluster), row.cluster ?? ['x', 'y', 'z'].flatMap((n) => ['a', 'b', 'c'].map((p) => `${n}/${p}`)));
  });
}

test('example 01: the matrix reads rows as sources and columns as destinations', { skip: !existsSync(EXAMPLES) }, () => {
  const scenario = parseScenario(readFileSync(new URL('01-egress-within-namespace.yaml', EXAMPLES), 'utf8'), '01');
  const probe = scenario.steps[1];
  assert.equal(probe?.type, 'probe');
  if (probe?.type !== 'probe') return;
  assert.equal(cellAt(probe.expect, 'y/a', 'x/a'), 'X');
  assert.equal(cellAt(probe.expect, 'x/a', 'y/a'), '.');
});

// A scenario of the default cluster around the given steps (YAML, indented by two).
const HEAD = 'version: 1\nname: t\n';
const open9 = ['x', 'y', 'z'].flatMap((n) => ['a', 'b', 'c'].map((p) => `${n}/${p}`));
function matrix(pods: string[], rows: string[] = pods, header = ['-', ...pods]): string {
  return [header.join(' '), ...rows.map((r) => [r, ...pods.map(() => '.')].join(' '))].join('\n');
}
function probe(fields: string, expect = matrix(open9)): string {
  return `steps:\n  - probe:\n${fields}\n      expect: |\n${expect.replace(/^/gm, '        ')}\n`;
}

// Each malformed file and the exact message it must give.
const malformed: { what: string; text: string; message: string | RegExp }[] = [
  // the version key is required
  { what: 'missing version', text: 'name: t\nsteps: [{delete: []}]\n', message: 'f.yaml: version: is missing (must be 1 or 2)' },
  // versions 1 and 2 exist
  { what: 'version 3', text: 'version: 3\nname: t\nsteps: [{delete: []}]\n', message: 'f.yaml: version: must be 1 or 2' },
  // version 2 keys in a version 1 file
  { what: 'explain in version 1', text: `${HEAD}steps:\n  - probe: {port: 80, expect: '-', explain: []}\n`, message: /explain, from and to need version: 2/ },
  { what: 'wait in version 1', text: `${HEAD}steps:\n  - wait: {seconds: 1}\n`, message: 'f.yaml: step 1 (wait): needs version: 2' },
  { what: 'setDNS in version 1', text: `${HEAD}steps:\n  - setDNS: {name: a.example.com, hosts: []}\n`, message: 'f.yaml: step 1 (setDNS): needs version: 2' },
  // external hosts are version 2
  { what: 'external in version 1', text: `${HEAD}cluster: {external: [{name: web, ip: 203.0.113.10}]}\nsteps: [{delete: []}]\n`, message: 'f.yaml: cluster.external and cluster.dns need version: 2' },
  // an explanation naming a pod outside the cluster, or a malformed policy
  { what: 'explain: unknown pod', text: `version: 2\nname: t\nsteps:\n  - probe: {port: 80, expect: '-', explain: [{from: q/a, to: x/b, verdict: dropped, at: ingress, by: [NetworkPolicy x/p]}]}\n`, message: /explain\[0\]: pod "q\/a" is not in the cluster/ },
  { what: 'explain: malformed policy', text: `version: 2\nname: t\nsteps:\n  - probe: {port: 80, expect: '-', explain: [{from: x/a, to: x/b, verdict: dropped, at: ingress, by: [x/p]}]}\n`, message: /is not a policy as KIND NAMESPACE\/NAME/ },
  // an empty file
  { what: 'empty file', text: '', message: 'f.yaml: must be a YAML mapping with version, name and steps' },
  // a file that is not YAML
  { what: 'bad YAML', text: 'version: 1\nname: [t\n', message: /^f\.yaml: invalid YAML: / },
  // a duplicate key is a YAML error, not a silent overwrite
  { what: 'duplicate key', text: `${HEAD}name: u\nsteps: [{delete: []}]\n`, message: /^f\.yaml: invalid YAML: .*unique/ },
  // a misspelt top-level key
  { what: 'unknown key', text: `${HEAD}step: []\n`, message: 'f.yaml: steps: Invalid input: expected array, received undefined; Unrecognized key: "step"' },
  // the name must be kebab-case
  { what: 'bad name', text: 'version: 1\nname: Deny_All\nsteps: [{delete: []}]\n', message: 'f.yaml: name: must be kebab-case' },
  // no steps at all
  { what: 'empty steps', text: `${HEAD}steps: []\n`, message: 'f.yaml: steps: needs at least one step' },
  // cluster names are DNS labels, with the issue path
  {
    what: 'bad namespace name',
    text: `${HEAD}cluster: {namespaces: [x, Y_1]}\nsteps: [{delete: []}]\n`,
    message: 'f.yaml: cluster.namespaces[1]: "Y_1" is not a DNS label',
  },
  // cluster names are unique
  {
    what: 'duplicate pod name',
    text: `${HEAD}cluster: {pods: [a, a]}\nsteps: [{delete: []}]\n`,
    message: 'f.yaml: cluster.pods: names must be unique',
  },
  // a step with two keys
  {
    what: 'two keys in a step',
    text: `${HEAD}steps:\n  - {delete: [], labelPod: {pod: x/a}}\n`,
    message: 'f.yaml: step 1: has 2 keys (delete, labelPod), expected exactly one of apply, delete, labelNamespace, labelPod, probe, wait, setDNS',
  },
  // an unknown step
  {
    what: 'unknown step',
    text: `${HEAD}steps:\n  - {sleep: 3}\n`,
    message: 'f.yaml: step 1: unknown step "sleep", expected exactly one of apply, delete, labelNamespace, labelPod, probe, wait, setDNS',
  },
  // a step that is not a mapping
  {
    what: 'step not a mapping',
    text: `${HEAD}steps:\n  - probe\n`,
    message: 'f.yaml: step 1: must be a mapping, expected exactly one of apply, delete, labelNamespace, labelPod, probe, wait, setDNS',
  },
  // a row with a missing cell; the step number counts from 1
  {
    what: 'short matrix row',
    text: `${HEAD}steps:\n  - delete: []\n${probe('      port: 80', matrix(open9).replace('x/a . .', 'x/a .')).slice('steps:\n'.length)}`,
    message: 'f.yaml: step 2 (probe): row "x/a" has 8 cells, expected 9',
  },
  // a cell other than . or X
  {
    what: 'bad cell',
    text: HEAD + probe('      port: 80', matrix(open9).replace('x/b . .', 'x/b . x')),
    message: 'f.yaml: step 1 (probe): row "x/b", column "x/b": cell "x" must be . or X',
  },
  // a pod missing from the rows
  {
    what: 'missing row',
    text: HEAD + probe('      port: 80', matrix(open9, open9.slice(0, 8))),
    message: 'f.yaml: step 1 (probe): rows: missing row for "z/c"',
  },
  // a header naming a pod outside the cluster
  {
    what: 'unknown pod in header',
    text: HEAD + probe('      port: 80', matrix(open9, open9, ['-', ...open9.slice(0, 8), 'w/a'])),
    message: 'f.yaml: step 1 (probe): header: column "w/a" is not a pod of the cluster',
  },
  // a port no test pod serves
  { what: 'port pods do not serve', text: HEAD + probe('      port: 443'), message: 'f.yaml: step 1 (probe): port 443/TCP: x/a does not serve it (a pod serves 80, 81 on TCP, UDP, SCTP)' },
  // a probe port name that no test pod has
  {
    what: 'unknown port name',
    text: HEAD + probe('      port: http'),
    message:
      'f.yaml: step 1 (probe): unknown port name "http", expected a number or one of serve-80-tcp, serve-80-udp, serve-80-sctp, serve-81-tcp, serve-81-udp, serve-81-sctp',
  },
  // a named port whose protocol contradicts the probe's
  {
    what: 'protocol mismatch',
    text: HEAD + probe('      port: serve-80-udp\n      protocol: TCP'),
    message: 'f.yaml: step 1 (probe): protocol TCP does not match port "serve-80-udp", which is UDP',
  },
  // a port number out of range
  { what: 'port 0', text: HEAD + probe('      port: 0'), message: 'f.yaml: step 1 (probe): port 0 is not in 1-65535' },
  // a protocol Kubernetes does not have, with the zod path inside the step
  {
    what: 'bad protocol',
    text: HEAD + probe('      port: 80\n      protocol: ICMP'),
    message: 'f.yaml: step 1 (probe): protocol: Invalid option: expected one of "TCP"|"UDP"|"SCTP"',
  },
  // labelPod of a pod outside the cluster
  {
    what: 'unknown pod',
    text: `${HEAD}steps:\n  - labelPod: {pod: x/d, labels: {role: db}}\n`,
    message:
      'f.yaml: step 1 (labelPod): pod "x/d" is not in the cluster (pods are N/P with N in x, y, z and P in a, b, c)',
  },
  // labelNamespace of a namespace outside the cluster
  {
    what: 'unknown namespace',
    text: `${HEAD}steps:\n  - labelNamespace: {namespace: w}\n`,
    message: 'f.yaml: step 1 (labelNamespace): namespace "w" is not in the cluster (x, y, z)',
  },
  // a label value Kubernetes would reject
  {
    what: 'bad label value',
    text: `${HEAD}steps:\n  - labelPod: {pod: x/a, labels: {role: 'a b'}}\n`,
    message: 'f.yaml: step 1 (labelPod): labels.role: "a b" is not a valid label value',
  },
  // an applied object without metadata.name
  {
    what: 'object without name',
    text: `${HEAD}steps:\n  - apply:\n      - {apiVersion: v1, kind: ConfigMap, metadata: {}}\n`,
    message: 'f.yaml: step 1 (apply): object 1: metadata.name: Invalid input: expected string, received undefined',
  },
  // a placeholder naming a pod outside the cluster
  {
    what: 'placeholder of unknown pod',
    text: `${HEAD}steps:\n  - apply:\n      - {apiVersion: v1, kind: ConfigMap, metadata: {name: m}, data: {ip: '\${podIP:w/a}'}}\n`,
    message: 'f.yaml: step 1 (apply): object 1 (ConfigMap m): placeholder ${podIP:w/a}: unknown pod "w/a"',
  },
  // a placeholder with a prefix length over 32
  {
    what: 'bad placeholder',
    text: `${HEAD}steps:\n  - apply:\n      - {apiVersion: v1, kind: ConfigMap, metadata: {name: m}, data: {ip: '\${podNet:x/a/33}'}}\n`,
    message: 'f.yaml: step 1 (apply): object 1 (ConfigMap m): placeholder ${podNet:x/a/33}: prefix length must be 0-32',
  },
  // an object in a namespace outside the cluster
  {
    what: 'object in unknown namespace',
    text: `${HEAD}steps:\n  - apply:\n      - {apiVersion: v1, kind: ConfigMap, metadata: {name: m, namespace: w}}\n`,
    message: 'f.yaml: step 1 (apply): object 1 (ConfigMap m): namespace "w" is not in the cluster (x, y, z)',
  },
  // an applied Pod must be one of the cluster's pods
  {
    what: 'applied Pod outside the cluster',
    text: `${HEAD}steps:\n  - apply:\n      - {apiVersion: v1, kind: Pod, metadata: {name: d, namespace: x}}\n`,
    message:
      'f.yaml: step 1 (apply): object 1 (Pod d): pod "x/d" is not in the cluster (pods are N/P with N in x, y, z and P in a, b, c)',
  },
  // a delete without a name
  {
    what: 'delete without name',
    text: `${HEAD}steps:\n  - delete: [{kind: NetworkPolicy, namespace: x}]\n`,
    message: 'f.yaml: step 1 (delete): [0].name: Invalid input: expected string, received undefined',
  },
];

for (const row of malformed) {
  test(`malformed: ${row.what}`, () => {
    assert.throws(
      () => parseScenario(row.text, 'f.yaml'),
      (error: unknown) => {
        assert.ok(error instanceof ScenarioError);
        if (typeof row.message === 'string') assert.equal(error.message, row.message);
        else assert.match(error.message, row.message);
        return true;
      },
    );
  });
}

test('a ScenarioError keeps its parts and its cause', () => {
  const error = (() => {
    try {
      parseScenario(HEAD + probe('      port: 80', 'nonsense'), 'f.yaml');
    } catch (e) {
      return e;
    }
  })();
  assert.ok(error instanceof ScenarioError);
  assert.equal(error.file, 'f.yaml');
  assert.deepEqual(error.step, { index: 1, type: 'probe' });
  assert.ok(error.cause instanceof Error);
});

// Valid probe headers and what they resolve to.
const probes: { what: string; fields: string; port: number; protocol: string; portLabel: string }[] = [
  // a number without protocol is TCP
  { what: 'number alone', fields: '      port: 81', port: 81, protocol: 'TCP', portLabel: '81/TCP' },
  // a number with a protocol
  { what: 'number with SCTP', fields: '      port: 80\n      protocol: SCTP', port: 80, protocol: 'SCTP', portLabel: '80/SCTP' },
  // a name alone gives the protocol
  { what: 'name alone', fields: '      port: serve-80-sctp', port: 80, protocol: 'SCTP', portLabel: '80/SCTP (serve-80-sctp)' },
  // a name with the matching protocol
  {
    what: 'name with its protocol',
    fields: '      port: serve-81-udp\n      protocol: UDP',
    port: 81,
    protocol: 'UDP',
    portLabel: '81/UDP (serve-81-udp)',
  },
  // a quoted number is the number
  { what: 'quoted number', fields: "      port: '80'", port: 80, protocol: 'TCP', portLabel: '80/TCP' },
];

for (const row of probes) {
  test(`probe port: ${row.what}`, () => {
    const [step] = parseScenario(HEAD + probe(row.fields), 'f.yaml').steps;
    assert.equal(step?.type, 'probe');
    if (step?.type !== 'probe') return;
    assert.deepEqual([step.port, step.protocol, step.portLabel], [row.port, row.protocol, row.portLabel]);
  });
}

test("YAML 1.2: unquoted y and n are namespace names, not booleans", () => {
  const text = `${HEAD}cluster: {namespaces: [y, n], pods: [a]}\nsteps:\n  - labelNamespace: {namespace: y}\n`;
  assert.deepEqual(parseScenario(text, 'f.yaml').cluster.namespaces, ['y', 'n']);
});

test('matrix rows in any order follow the header order', () => {
  const text = `${HEAD}cluster: {namespaces: [x], pods: [a, b]}\nsteps:\n  - probe:\n      port: 80\n      expect: |\n        -   x/b x/a\n        x/a X   .\n        x/b .   .\n`;
  const [step] = parseScenario(text, 'f.yaml').steps;
  assert.ok(step?.type === 'probe');
  assert.deepEqual([step.expect.rows, step.expect.cols], [['x/b', 'x/a'], ['x/b', 'x/a']]);
  assert.deepEqual(step.expect.cells, [['.', '.'], ['X', '.']]);
  assert.equal(cellAt(step.expect, 'x/a', 'x/b'), 'X');
});

const cluster = { namespaces: ['x', 'y'], pods: ['a', 'b'], external: [] };
const obj = (kind: string, metadata: Record<string, unknown>): KubeObject =>
  ({ apiVersion: 'v1', kind, metadata }) as KubeObject;

// How applied objects are routed.
const routes: { what: string; object: KubeObject; expected: unknown }[] = [
  // a Namespace sets the namespace's labels
  {
    what: 'Namespace',
    object: obj('Namespace', { name: 'y', labels: { team: 'blue' } }),
    expected: { type: 'labelNamespace', namespace: 'y', labels: { team: 'blue' } },
  },
  // a Pod sets the pod's labels; no labels means none of its own
  {
    what: 'Pod without labels',
    object: obj('Pod', { name: 'b', namespace: 'x' }),
    expected: { type: 'labelPod', pod: 'x/b', namespace: 'x', name: 'b', labels: {} },
  },
  // anything else goes to the API as it is
  {
    what: 'NetworkPolicy',
    object: obj('NetworkPolicy', { name: 'p', namespace: 'x' }),
    expected: { type: 'object', object: obj('NetworkPolicy', { name: 'p', namespace: 'x' }) },
  },
];

for (const row of routes) {
  test(`classifyApplyObject: ${row.what}`, () => {
    assert.deepEqual(classifyApplyObject(row.object, cluster), row.expected);
  });
}

// Applied Namespace and Pod objects that cannot be routed.
const badRoutes: { what: string; object: KubeObject; message: string }[] = [
  // a Pod needs a namespace to name a pod of the cluster
  { what: 'Pod without namespace', object: obj('Pod', { name: 'a' }), message: 'a Pod needs metadata.namespace' },
  // a Namespace outside the cluster
  {
    what: 'unknown Namespace',
    object: obj('Namespace', { name: 'w' }),
    message: 'namespace "w" is not in the cluster (x, y)',
  },
  // labels are checked like a label step's
  {
    what: 'Pod with a non-string label',
    object: obj('Pod', { name: 'a', namespace: 'x', labels: { tier: 1 } }),
    message: 'metadata.labels: tier: Invalid input: expected string, received number',
  },
];

for (const row of badRoutes) {
  test(`classifyApplyObject rejects: ${row.what}`, () => {
    assert.throws(() => classifyApplyObject(row.object, cluster), { message: row.message });
  });
}

// Version 2: hosts outside the cluster (`external`), `${hostIP:NAME}`, probes with `from` and `to`.
const V2 = 'version: 2\nname: t\n';
const WORLD = `${V2}cluster:\n  namespaces: [x]\n  pods: [a, b]\n  external:\n    - {name: web, ip: 203.0.113.10}\n    - {name: db, ip: 198.51.100.20}\n`;
const v2probe = (fields: string, expect: string) => `${WORLD}steps:\n  - probe:\n${fields}\n      expect: |\n${expect.replace(/^/gm, '        ')}\n`;

test('external hosts, ${hostIP:NAME} and a probe from and to them parse', () => {
  const text = `${WORLD}steps:
  - apply:
      - apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: {name: p, namespace: x}
        spec: {podSelector: {}, egress: [{to: [{ipBlock: {cidr: '\${hostIP:web}/32'}}]}]}
  - probe:
      port: 81
      protocol: UDP
      from: [x/a, world/db]
      to: [world/web, x/a]
      expect: |
        -        world/web x/a
        world/db .         X
        x/a      .         .
`;
  const scenario = parseScenario(text, 'f.yaml');
  assert.deepEqual(scenario.cluster.external, [{ name: 'web', ip: '203.0.113.10' }, { name: 'db', ip: '198.51.100.20' }]);
  const step = scenario.steps[1];
  assert.ok(step?.type === 'probe');
  assert.deepEqual([step.expect.rows, step.expect.cols], [['world/db', 'x/a'], ['world/web', 'x/a']]);
  assert.equal(cellAt(step.expect, 'world/db', 'x/a'), 'X');
  assert.equal(step.portLabel, '81/UDP');
});

test('a probe to external hosts only may use 443, on TCP and UDP', () => {
  const scenario = parseScenario(v2probe('      port: 443\n      from: [x/a, x/b]\n      to: [world/web]', '- world/web\nx/a .\nx/b X'), 'f.yaml');
  assert.equal(scenario.steps[0]?.type === 'probe' && scenario.steps[0].portLabel, '443/TCP');
});

test('a version 2 probe without from and to is every pod to every pod, external hosts left out', () => {
  const scenario = parseScenario(v2probe('      port: 80', '- x/a x/b\nx/a . .\nx/b . .'), 'f.yaml');
  const step = scenario.steps[0];
  assert.ok(step?.type === 'probe');
  assert.deepEqual([step.expect.rows, step.expect.cols], [['x/a', 'x/b'], ['x/a', 'x/b']]);
});

// Version 2 files that cannot run, and the exact message naming the file and the step.
const badV2: { what: string; text: string; message: string }[] = [
  // an address outside the documentation ranges (a pod's, the underlay's, anyone's)
  {
    what: 'address outside the documentation ranges',
    text: `${V2}cluster: {external: [{name: web, ip: 10.0.0.1}]}\nsteps: [{delete: []}]\n`,
    message: 'f.yaml: cluster.external[0].ip: 10.0.0.1 (host "web") is not an address in the documentation ranges 192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24',
  },
  // not an address at all
  {
    what: 'not an address',
    text: `${V2}cluster: {external: [{name: web, ip: 203.0.113.300}]}\nsteps: [{delete: []}]\n`,
    message: 'f.yaml: cluster.external[0].ip: 203.0.113.300 (host "web") is not an address in the documentation ranges 192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24',
  },
  // two hosts of one name
  {
    what: 'duplicate host name',
    text: `${V2}cluster: {external: [{name: web, ip: 203.0.113.10}, {name: web, ip: 203.0.113.11}]}\nsteps: [{delete: []}]\n`,
    message: 'f.yaml: cluster.external[1].name: external host "web" is given twice',
  },
  // two hosts of one address
  {
    what: 'duplicate host address',
    text: `${V2}cluster: {external: [{name: web, ip: 203.0.113.10}, {name: db, ip: 203.0.113.10}]}\nsteps: [{delete: []}]\n`,
    message: 'f.yaml: cluster.external[1].ip: 203.0.113.10 is already external host "web"\'s',
  },
  // a host name that is no DNS label
  {
    what: 'bad host name',
    text: `${V2}cluster: {external: [{name: Web_1, ip: 203.0.113.10}]}\nsteps: [{delete: []}]\n`,
    message: 'f.yaml: cluster.external[0].name: "Web_1" is not a DNS label',
  },
  // a misspelt key of a host
  {
    what: 'unknown host key',
    text: `${V2}cluster: {external: [{name: web, address: 203.0.113.10}]}\nsteps: [{delete: []}]\n`,
    message: 'f.yaml: cluster.external[0].ip: Invalid input: expected string, received undefined; cluster.external[0]: Unrecognized key: "address"',
  },
  // a namespace `world/NAME` could be read as
  {
    what: 'namespace named world',
    text: `${V2}cluster: {namespaces: [x, world], external: [{name: web, ip: 203.0.113.10}]}\nsteps: [{delete: []}]\n`,
    message: 'f.yaml: cluster.namespaces: no namespace may be named "world" in a cluster with external hosts (they are written world/NAME)',
  },
  // a probe to a host the cluster does not have
  {
    what: 'unknown external host',
    text: v2probe('      port: 80\n      to: [world/api]', '- world/api\nx/a .\nx/b .'),
    message: 'f.yaml: step 1 (probe): to: "world/api" is not an external host of the cluster (world/web, world/db)',
  },
  // a source that is neither pod nor host
  {
    what: 'unknown source',
    text: v2probe('      port: 80\n      from: [q/a]', '- x/a x/b\nq/a . .'),
    message: 'f.yaml: step 1 (probe): from: "q/a" is neither a pod of the cluster (N/P with N in x and P in a, b) nor an external host (world/NAME)',
  },
  // an end listed twice
  {
    what: 'destination twice',
    text: v2probe('      port: 80\n      to: [world/web, world/web]', '- world/web\nx/a .\nx/b .'),
    message: 'f.yaml: step 1 (probe): to: "world/web" is listed twice',
  },
  // a name that is no DNS name
  {
    what: 'a malformed name as destination',
    text: v2probe('      port: 80\n      to: [api..example.com]', '- api..example.com\nx/a .\nx/b .'),
    message: 'f.yaml: step 1 (probe): to: "api..example.com" is not a DNS name (two labels or more of letters, digits and hyphens, e.g. api.example.com; no trailing dot)',
  },
  // a name stands for external hosts: their ports only
  {
    what: 'a name on a port only pods serve',
    text: v2probe('      port: 80\n      protocol: SCTP\n      to: [api.example.com]', '- api.example.com\nx/a .\nx/b .'),
    message: 'f.yaml: step 1 (probe): port 80/SCTP: api.example.com does not serve it (a name stands for external hosts, which serve 80, 81, 443 on TCP, UDP)',
  },
  // names given by cluster.dns: hosts of the cluster, each once; names once; a TTL in seconds
  {
    what: 'dns: unknown host',
    text: `${WORLD}  dns: [{name: api.example.com, hosts: [api]}]\nsteps: [{delete: []}]\n`,
    message: 'f.yaml: cluster.dns[0]: api.example.com: "api" is not an external host of the cluster (web, db)',
  },
  {
    what: 'dns: host twice',
    text: `${WORLD}  dns: [{name: api.example.com, hosts: [web, web]}]\nsteps: [{delete: []}]\n`,
    message: 'f.yaml: cluster.dns[0]: api.example.com: host "web" is listed twice',
  },
  {
    what: 'dns: no host',
    text: `${WORLD}  dns: [{name: api.example.com, hosts: []}]\nsteps: [{delete: []}]\n`,
    message: 'f.yaml: cluster.dns[0]: api.example.com: has no host (leave a name that does not resolve out)',
  },
  {
    what: 'dns: name twice (names are case-insensitive)',
    text: `${WORLD}  dns: [{name: api.example.com, hosts: [web]}, {name: API.example.com, hosts: [db]}]\nsteps: [{delete: []}]\n`,
    message: 'f.yaml: cluster.dns[1]: name "api.example.com" is given twice',
  },
  {
    what: 'dns: a wildcard is no name',
    text: `${WORLD}  dns: [{name: '*.example.com', hosts: [web]}]\nsteps: [{delete: []}]\n`,
    message: 'f.yaml: cluster.dns[0]: "*.example.com" is not a DNS name (two labels or more of letters, digits and hyphens, e.g. api.example.com; no trailing dot)',
  },
  {
    what: 'dns: a TTL that is not whole seconds',
    text: `${WORLD}  dns: [{name: api.example.com, hosts: [web], ttl: 1.5}]\nsteps: [{delete: []}]\n`,
    message: 'f.yaml: cluster.dns[0]: ttl: Invalid input: expected int, received number',
  },
  {
    what: 'dns: a misspelt key',
    text: `${WORLD}  dns: [{name: api.example.com, host: [web]}]\nsteps: [{delete: []}]\n`,
    message: 'f.yaml: cluster.dns[0]: hosts: Invalid input: expected array, received undefined; Unrecognized key: "host"',
  },
  // setDNS: the same checks, and `hosts: []` is allowed (it removes the name)
  {
    what: 'setDNS: unknown host',
    text: `${WORLD}steps: [{setDNS: {name: api.example.com, hosts: [api]}}]\n`,
    message: 'f.yaml: step 1 (setDNS): api.example.com: "api" is not an external host of the cluster (web, db)',
  },
  {
    what: 'setDNS: negative TTL',
    text: `${WORLD}steps: [{setDNS: {name: api.example.com, hosts: [web], ttl: -1}}]\n`,
    message: 'f.yaml: step 1 (setDNS): ttl: Too small: expected number to be >=0',
  },
  // a name is never a source
  {
    what: 'a name as source',
    text: v2probe('      port: 80\n      from: [api.example.com]', '- x/a x/b\napi.example.com . .'),
    message: 'f.yaml: step 1 (probe): from: "api.example.com" is a name: only pods and external hosts can be sources',
  },
  // an empty list of destinations
  {
    what: 'empty to',
    text: v2probe('      port: 80\n      to: []', '- x/a\nx/a .'),
    message: 'f.yaml: step 1 (probe): to: Too small: expected array to have >=1 items',
  },
  // a pod does not serve 443
  {
    what: '443 to a pod',
    text: v2probe('      port: 443\n      to: [world/web, x/b]', '- world/web x/b\nx/a . .\nx/b . .'),
    message: 'f.yaml: step 1 (probe): port 443/TCP: x/b does not serve it (a pod serves 80, 81 on TCP, UDP, SCTP)',
  },
  // external hosts serve TCP and UDP only
  {
    what: 'SCTP to an external host',
    text: v2probe('      port: 80\n      protocol: SCTP\n      to: [world/web]', '- world/web\nx/a .\nx/b .'),
    message: 'f.yaml: step 1 (probe): port 80/SCTP: world/web does not serve it (an external host serves 80, 81, 443 on TCP, UDP)',
  },
  // a port external hosts do not serve
  {
    what: 'port 8080 to an external host',
    text: v2probe('      port: 8080\n      to: [world/web]', '- world/web\nx/a .\nx/b .'),
    message: 'f.yaml: step 1 (probe): port 8080/TCP: world/web does not serve it (an external host serves 80, 81, 443 on TCP, UDP)',
  },
  // the matrix must name the probe's destinations, not every pod
  {
    what: 'matrix of every pod despite to',
    text: v2probe('      port: 80\n      to: [world/web]', '- x/a x/b\nx/a . .\nx/b . .'),
    message: 'f.yaml: step 1 (probe): header: column "x/a" is not a pod of the cluster or an external host of the probe',
  },
  // a placeholder naming a host the cluster does not have
  {
    what: 'placeholder of unknown host',
    text: `${WORLD}steps:\n  - apply:\n      - {apiVersion: v1, kind: ConfigMap, metadata: {name: m}, data: {ip: '\${hostIP:api}'}}\n`,
    message: 'f.yaml: step 1 (apply): object 1 (ConfigMap m): placeholder ${hostIP:api}: unknown external host "api" (the cluster has web, db)',
  },
];

for (const row of badV2) {
  test(`version 2 refused: ${row.what}`, () => {
    assert.throws(() => parseScenario(row.text, 'f.yaml'), (error: unknown) => {
      assert.ok(error instanceof ScenarioError);
      assert.equal(error.message, row.message);
      return true;
    });
  });
}

test('names: cluster.dns (TTL 30 by default), setDNS, wait, and probes to names', () => {
  const text = `${WORLD}  dns:\n    - {name: API.example.com, hosts: [web]}\n    - {name: cdn.example.com, hosts: [web, db], ttl: 2}\nsteps:
  - setDNS: {name: api.example.com, hosts: [db], ttl: 5}
  - setDNS: {name: cdn.example.com, hosts: []}
  - wait: {seconds: 3}
  - probe:
      port: 443
      from: [x/a, world/web]
      to: [api.example.com, other.example.org, world/db]
      expect: |
        -         api.example.com other.example.org world/db
        x/a       .               X                 .
        world/web X               X                 .
`;
  const scenario = parseScenario(text, 'f.yaml');
  assert.deepEqual(scenario.cluster.dns, [{ name: 'api.example.com', hosts: ['web'], ttl: 30 }, { name: 'cdn.example.com', hosts: ['web', 'db'], ttl: 2 }]);
  assert.deepEqual(scenario.steps.slice(0, 3), [
    { type: 'setDNS', name: 'api.example.com', hosts: ['db'], ttl: 5 },
    { type: 'setDNS', name: 'cdn.example.com', hosts: [], ttl: 30 },
    { type: 'wait', seconds: 3 },
  ]);
  const probe = scenario.steps[3];
  assert.ok(probe?.type === 'probe');
  assert.deepEqual(probe.expect.cols, ['api.example.com', 'other.example.org', 'world/db']);
  assert.equal(cellAt(probe.expect, 'x/a', 'api.example.com'), '.');
  assert.equal(usesDns(scenario), true);
  assert.equal(usesDns(parseScenario(v2probe('      port: 80\n      to: [world/web]', '- world/web\nx/a .\nx/b .'), 'f.yaml')), false);
  // A probe to a name alone needs the DNS server too (the name does not resolve).
  assert.equal(usesDns(parseScenario(v2probe('      port: 80\n      to: [a.example.com]', '- a.example.com\nx/a X\nx/b X'), 'f.yaml')), true);
});

const NEXT = new URL('../../../shared/scenarios/next/', import.meta.url);
test('shared next/08-fqdn-egress parses: a name, external hosts, from and to', { skip: !existsSync(new URL('08-fqdn-egress.yaml', NEXT)) }, () => {
  const scenario = parseScenario(readFileSync(new URL('08-fqdn-egress.yaml', NEXT), 'utf8'), '08-fqdn-egress.yaml');
  assert.deepEqual(scenario.cluster.dns, [{ name: 'api.example.com', hosts: ['web'], ttl: 60 }]);
  assert.equal(scenario.steps[1]?.type === 'probe' && scenario.steps[1].expect.cols[0], 'api.example.com');
});
