// The Enforced condition and the selected-endpoint count (pure): which pods
// are endpoints, what a policy selects (its namespace, pseudo-labels,
// namespace relabels, pods moving), the version the nodes must realize, and
// each verdict: Enforced, NoEndpoints, Pending, NoAgent, Invalid.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { palisadePolicyIR } from '../policy/palisade-ir.ts';
import { validatePalisadePolicy, type PalisadePolicySpec } from '../policy/palisade-policy.ts';
import type { LabelSelector, PalisadePolicyKind } from '../policy/types.ts';
import {
  agentState,
  EndpointIndex,
  endpointFacts,
  enforcementVerdict,
  parseVersion,
  policySelection,
  SelectionCache,
  selectionOf,
  targetVersion,
  type AgentState,
  type EnforcementInput,
  type PodLike,
  type Selected,
} from './policy-enforcement.ts';

const PNP = 'PalisadeNetworkPolicy';
const PCNP = 'PalisadeClusterNetworkPolicy';

const pod = (namespace: string, labels: Record<string, string>, node = 'n1', more: { phase?: string; ip?: string | null; hostNetwork?: boolean } = {}): PodLike => ({
  metadata: { namespace, labels },
  spec: { nodeName: node, ...(more.hostNetwork ? { hostNetwork: true } : {}) },
  status: { phase: more.phase ?? 'Running', ...(more.ip === null ? {} : { podIP: more.ip ?? '10.0.0.1' }) },
});

test('endpoints: pods on a node with an address, not terminal, not host-network', () => {
  assert.deepEqual(endpointFacts(pod('a', { app: 'x' })), { namespace: 'a', labels: { app: 'x' }, node: 'n1' });
  assert.equal(endpointFacts(pod('a', {}, 'n1', { ip: null })), undefined, 'no address yet');
  assert.equal(endpointFacts({ ...pod('a', {}), spec: {} }), undefined, 'not scheduled');
  assert.equal(endpointFacts(pod('a', {}, 'n1', { phase: 'Succeeded' })), undefined);
  assert.equal(endpointFacts(pod('a', {}, 'n1', { phase: 'Failed' })), undefined);
  assert.equal(endpointFacts(pod('a', {}, 'n1', { hostNetwork: true })), undefined);
  assert.ok(endpointFacts(pod('a', {}, 'n1', { phase: 'Pending' })), 'an address is enough (containers still starting)');
  assert.ok(endpointFacts({ metadata: { namespace: 'a' }, spec: { nodeName: 'n1' }, status: { podIPs: [{ ip: '10.0.0.9' }] } }), 'podIPs alone');
});

const spec = (endpointSelector: LabelSelector): PalisadePolicySpec => {
  const v = validatePalisadePolicy({ spec: { endpointSelector } });
  assert.ok(v.ok, JSON.stringify(v));
  return v.spec;
};
const selection = (kind: PalisadePolicyKind, namespace: string, endpointSelector: LabelSelector) => policySelection(kind, namespace, spec(endpointSelector).endpointSelector)!;

function cluster(): EndpointIndex {
  const index = new EndpointIndex();
  index.setNamespace('shop', { team: 'web' });
  index.setNamespace('pay', { team: 'money' });
  // 'lab' has pods but the namespace has not been seen yet: its name alone.
  const pods: Array<[string, string, Record<string, string>, string]> = [
    ['shop', 'web-1', { app: 'web' }, 'n1'],
    ['shop', 'web-2', { app: 'web' }, 'n2'],
    ['shop', 'web-3', { app: 'web' }, 'n2'],
    ['shop', 'db-1', { app: 'db' }, 'n3'],
    ['pay', 'web-1', { app: 'web' }, 'n3'],
    ['pay', 'api-1', { app: 'api', tier: 'front' }, 'n1'],
    ['lab', 'web-1', { app: 'web' }, 'n4'],
  ];
  for (const [ns, name, labels, node] of pods) assert.equal(index.setPod(`${ns}/${name}`, endpointFacts(pod(ns, labels, node))), true);
  return index;
}
const nodes = (s: Selected) => Object.fromEntries([...s.nodes].sort(([a], [b]) => a.localeCompare(b)));

test('a PalisadeNetworkPolicy selects pods of its own namespace only; a cluster policy every namespace; counts per node', () => {
  const index = cluster();
  assert.equal(index.endpoints, 7);
  const web = index.select(selection(PNP, 'shop', { matchLabels: { app: 'web' } }));
  assert.deepEqual({ endpoints: web.endpoints, nodes: nodes(web) }, { endpoints: 3, nodes: { n1: 1, n2: 2 } });
  assert.equal(index.select(selection(PNP, 'empty', {})).endpoints, 0, 'a namespace without pods');
  const all = index.select(selection(PCNP, '', { matchLabels: { app: 'web' } }));
  assert.deepEqual({ endpoints: all.endpoints, nodes: nodes(all) }, { endpoints: 5, nodes: { n1: 1, n2: 2, n3: 1, n4: 1 } });
  assert.equal(index.select(selection(PCNP, '', {})).endpoints, 7);
});

test('pseudo-labels select by namespace: its name (also of a namespace not seen yet) and its labels', () => {
  const index = cluster();
  assert.equal(index.select(selection(PCNP, '', { matchLabels: { 'io.kubernetes.pod.namespace': 'lab' } })).endpoints, 1);
  assert.equal(index.select(selection(PCNP, '', { matchLabels: { 'k8s:io.kubernetes.pod.namespace': 'pay', app: 'web' } })).endpoints, 1, 'k8s: source dropped');
  assert.equal(index.select(selection(PCNP, '', { matchLabels: { 'io.cilium.k8s.namespace.labels.team': 'web' } })).endpoints, 4);
  assert.equal(
    index.select(selection(PCNP, '', { matchExpressions: [{ key: 'io.kubernetes.pod.namespace', operator: 'NotIn', values: ['shop'] }] })).endpoints,
    3,
  );
  // A namespaced policy naming another namespace selects nothing (its own namespace still applies).
  assert.equal(index.select(selection(PNP, 'shop', { matchLabels: { 'io.kubernetes.pod.namespace': 'pay' } })).endpoints, 0);
  assert.equal(index.select(selection(PNP, 'shop', { matchLabels: { 'io.kubernetes.pod.namespace': 'shop' } })).endpoints, 4);
});

test('the index follows pods relabelled, moved, finished and deleted, and namespaces relabelled', () => {
  const index = cluster();
  const web = selection(PCNP, '', { matchLabels: { app: 'web' } });
  const team = selection(PCNP, '', { matchLabels: { 'io.cilium.k8s.namespace.labels.team': 'web' } });
  assert.equal(index.setPod('shop/web-1', endpointFacts(pod('shop', { app: 'web' }, 'n1'))), false, 'an unchanged pod (a status update) changes nothing');
  assert.equal(index.setPod('shop/web-1', endpointFacts(pod('shop', { app: 'old' }, 'n1'))), true);
  assert.equal(index.select(web).endpoints, 4);
  assert.equal(index.setPod('shop/web-2', endpointFacts(pod('shop', { app: 'web' }, 'n5'))), true, 'moved (same name, another node)');
  assert.deepEqual(nodes(index.select(web)), { n2: 1, n3: 1, n4: 1, n5: 1 });
  assert.equal(index.setPod('shop/web-3', endpointFacts(pod('shop', { app: 'web' }, 'n2', { phase: 'Succeeded' }))), true, 'finished');
  assert.deepEqual(nodes(index.select(web)), { n3: 1, n4: 1, n5: 1 });
  assert.equal(index.deletePod('shop/web-3'), false, 'already gone from the index');
  assert.equal(index.deletePod('lab/web-1'), true);
  assert.equal(index.select(web).endpoints, 2);
  assert.equal(index.endpoints, 5);
  assert.equal(index.select(team).endpoints, 3);
  assert.equal(index.setNamespace('pay', { team: 'web' }), true, 'relabel of a namespace with endpoints');
  assert.equal(index.select(team).endpoints, 5);
  assert.equal(index.setNamespace('pay', { team: 'web' }), false, 'same labels');
  assert.equal(index.setNamespace('nobody', { team: 'web' }), false, 'a namespace without endpoints');
  assert.equal(index.setNamespace('pay', undefined), true, 'deleted: its name alone');
  assert.equal(index.select(team).endpoints, 3);
  for (const key of ['shop/web-1', 'shop/web-2', 'shop/db-1', 'pay/web-1', 'pay/api-1']) index.deletePod(key);
  assert.equal(index.endpoints, 0);
  assert.equal(index.select(selection(PCNP, '', {})).endpoints, 0);
});

test('the selection cache, recomputing only namespaces changed since it last looked, equals selecting from scratch after every change', () => {
  let seed = 7;
  const random = (n: number) => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0), (seed >>> 16) % n);
  const index = new EndpointIndex();
  const cache = new SelectionCache(index);
  const namespaces = ['a', 'b', 'c', 'd'];
  const selections = [
    selection(PNP, 'a', {}),
    selection(PNP, 'b', { matchLabels: { app: 'x' } }),
    selection(PCNP, '', {}),
    selection(PCNP, '', { matchLabels: { app: 'y' } }),
    selection(PCNP, '', { matchLabels: { 'io.cilium.k8s.namespace.labels.team': 't1' } }),
    selection(PCNP, '', { matchExpressions: [{ key: 'io.kubernetes.pod.namespace', operator: 'NotIn', values: ['a'] }, { key: 'app', operator: 'Exists' }] }),
  ];
  const same = (s: Selected) => ({ endpoints: s.endpoints, nodes: nodes(s) });
  for (let step = 0; step < 400; step++) {
    const ns = namespaces[random(4)]!;
    const what = random(10);
    if (what < 6) index.setPod(`${ns}/p${random(12)}`, endpointFacts(pod(ns, random(3) ? { app: ['x', 'y', 'z'][random(3)]! } : {}, `n${random(4)}`, { phase: random(8) ? 'Running' : 'Failed' })));
    else if (what < 8) index.deletePod(`${ns}/p${random(12)}`);
    else index.setNamespace(ns, random(3) ? { team: `t${random(2)}` } : undefined);
    // Not every policy is looked at after every change (a sync coalesces several).
    selections.forEach((sel, i) => {
      if (random(3) === 0) assert.deepEqual(same(cache.select(`p${i}`, sel)), same(index.select(sel)), `step ${step}, selection ${i}`);
    });
  }
  // A policy whose selector changes (a new generation) starts over; a forgotten one too.
  assert.deepEqual(same(cache.select('p0', selections[2]!)), same(index.select(selections[2]!)));
  cache.forget('p0');
  assert.deepEqual(same(cache.select('p0', selections[0]!)), same(index.select(selections[0]!)));
});

test('selection agrees with the compiler\'s reading of endpointSelector (palisadePolicyIR), pod by pod', () => {
  const namespaces: Record<string, Record<string, string>> = { shop: { team: 'web', env: 'prod' }, pay: { team: 'money', env: 'prod' }, lab: {} };
  const pods = [
    ['shop', { app: 'web' }], ['shop', { app: 'db', tier: 'back' }], ['pay', { app: 'web', tier: 'front' }], ['pay', {}], ['lab', { app: 'web', tier: 'back' }],
  ] as const;
  const selectors: LabelSelector[] = [
    {},
    { matchLabels: { app: 'web' } },
    { matchExpressions: [{ key: 'tier', operator: 'Exists' }] },
    { matchExpressions: [{ key: 'tier', operator: 'NotIn', values: ['back'] }] },
    { matchLabels: { 'io.cilium.k8s.namespace.labels.env': 'prod' } },
    { matchExpressions: [{ key: 'io.cilium.k8s.namespace.labels.team', operator: 'DoesNotExist' }] },
    { matchLabels: { 'io.kubernetes.pod.namespace': 'pay', app: 'web' } },
  ];
  const index = new EndpointIndex();
  for (const [name, labels] of Object.entries(namespaces)) index.setNamespace(name, labels);
  pods.forEach(([ns, labels], i) => index.setPod(`${ns}/p${i}`, endpointFacts(pod(ns, labels, `n${i}`))));
  for (const kind of [PNP, PCNP] as const) {
    for (const own of Object.keys(namespaces)) {
      for (const sel of selectors) {
        const ir = palisadePolicyIR({ kind, namespace: own, name: 'p', spec: spec(sel) });
        const expected = pods.filter(([ns, labels]) =>
          (ir.clusterWide || ns === own) && ir.podSelector.matches(labels) && (ir.nsSelector?.matches({ ...namespaces[ns], 'kubernetes.io/metadata.name': ns }) ?? true)).length;
        assert.equal(index.select(selection(kind, own, sel)).endpoints, expected, `${kind} in ${own}: ${JSON.stringify(sel)}`);
      }
    }
  }
});

test('an invalid policy is counted by its endpointSelector when that alone is valid', () => {
  const bad = { endpointSelector: { matchLabels: { app: 'web' } }, egress: [{ toCIDRSet: [{ cidr: '10.0.0.0/8', except: ['11.0.0.0/16'] }] }] };
  const v = validatePalisadePolicy({ spec: bad });
  assert.equal(v.ok, false);
  const s = selectionOf(PNP, 'shop', bad, v)!;
  assert.equal(cluster().select(s).endpoints, 3);
  const worse = { endpointSelector: { matchExpressions: [{ key: 'app', operator: 'Near' }] } };
  assert.equal(selectionOf(PNP, 'shop', worse, validatePalisadePolicy({ spec: worse })), undefined);
  assert.equal(selectionOf(PNP, 'shop', 'nonsense', validatePalisadePolicy({ spec: 'nonsense' })), undefined);
  const good = { endpointSelector: {} };
  assert.equal(cluster().select(selectionOf(PCNP, undefined, good, validatePalisadePolicy({ spec: good }))!).endpoints, 7);
});

test('the version to realize is where the generation was first seen: our own status writes do not move it', () => {
  const seen = new Map<string, { generation: number; version: string }>();
  assert.equal(targetVersion(seen, 'u', 1, '100'), '100');
  assert.equal(targetVersion(seen, 'u', 1, '105'), '100', 'a status write');
  assert.equal(targetVersion(seen, 'u', 2, '110'), '110', 'a spec change');
  assert.equal(targetVersion(seen, 'v', 1, '111'), '111');
  assert.equal(parseVersion('18446744073709551617'), 18446744073709551617n, 'beyond 2^64');
  assert.equal(parseVersion('12a'), undefined);
  assert.equal(parseVersion(undefined), undefined);
});

const agent = (realized: Record<string, string>, ready = true): AgentState => ({ ready, realized });
const selected = (perNode: Record<string, number>): Selected => ({
  endpoints: Object.values(perNode).reduce((a, b) => a + b, 0),
  nodes: new Map(Object.entries(perNode)),
});
const verdict = (over: Partial<EnforcementInput>) =>
  enforcementVerdict({ kind: PNP, version: '100', valid: true, selected: selected({ n1: 2, n2: 1 }), agents: new Map(), ...over });

test('Enforced: every node running a selected endpoint has a Ready agent that realized the version (compared as integers)', () => {
  const v = verdict({ agents: new Map([['n1', agent({ [PNP]: '100' })], ['n2', agent({ [PNP]: '250', Pod: '3' })], ['n9', agent({}, false)]]) });
  assert.deepEqual(v, {
    selectedEndpoints: 3,
    status: 'True',
    reason: 'Enforced',
    message: 'every node that runs one of its 3 selected endpoints (2 nodes) has realized resourceVersion 100',
    settled: true,
  });
  // "99" > "100" as strings; 99 < 100 as numbers.
  const lexical = verdict({ agents: new Map([['n1', agent({ [PNP]: '99' })], ['n2', agent({ [PNP]: '1000' })]]) });
  assert.equal(lexical.status, 'False');
  assert.equal(lexical.reason, 'Pending');
});

test('NoEndpoints: True, saying it selects none; also for a valid policy whose selector selects nothing', () => {
  const v = verdict({ selected: selected({}) });
  assert.deepEqual(v, {
    selectedEndpoints: 0,
    status: 'True',
    reason: 'NoEndpoints',
    message: 'nothing to enforce: it selects no endpoint (no running pod with an address matches it)',
    settled: true,
  });
  const none = verdict({ selected: undefined });
  assert.equal(none.status, 'True');
  assert.equal(none.reason, 'NoEndpoints');
  assert.equal(none.selectedEndpoints, 0);
});

test('Pending: names the nodes that lag and why (older version, not Ready, nothing of the kind yet), other kinds do not count', () => {
  const v = verdict({
    kind: PCNP,
    selected: selected({ n1: 1, n2: 1, n3: 1, n4: 1 }),
    agents: new Map([
      ['n1', agent({ [PCNP]: '99', [PNP]: '500' })],
      ['n2', agent({ [PCNP]: '500' }, false)],
      ['n3', agent({ [PNP]: '500' })],
      ['n4', agent({ [PCNP]: '100' })],
    ]),
  });
  assert.equal(v.status, 'False');
  assert.equal(v.reason, 'Pending');
  assert.equal(v.settled, false);
  assert.equal(
    v.message,
    'resourceVersion 100 not yet realized on 3 of the 4 nodes that run its 4 selected endpoints: n1 (has not realized it yet), n2 (agent not Ready), n3 (has realized no PalisadeClusterNetworkPolicy yet)',
  );
  const garbled = verdict({ agents: new Map([['n1', agent({ [PNP]: 'abc' })], ['n2', agent({ [PNP]: '100' })]]) });
  assert.match(garbled.message, /n1 \(has realized no PalisadeNetworkPolicy yet\)/, 'a version that is no integer counts as none');
});

test('NoAgent: a node without a PalisadeNode, named first; laggards too; at most three named, sorted, the rest counted', () => {
  const perNode = Object.fromEntries(['n5', 'n1', 'n4', 'n2', 'n3', 'n6'].map((n) => [n, 1]));
  const v = verdict({ selected: selected(perNode), agents: new Map([['n6', agent({ [PNP]: '50' })], ['n3', agent({ [PNP]: '100' })]]) });
  assert.equal(v.status, 'False');
  assert.equal(v.reason, 'NoAgent');
  assert.equal(
    v.message,
    'no Palisade agent on 4 of the 6 nodes that run its 6 selected endpoints: n1 (no PalisadeNode), n2 (no PalisadeNode), n4 (no PalisadeNode) and 1 more; ' +
      'resourceVersion 100 not yet realized on 1 of the 6 nodes that run its 6 selected endpoints: n6 (has not realized it yet)',
  );
  assert.equal(verdict({ selected: selected({ x: 1 }) }).message, 'no Palisade agent on 1 of the 1 node that runs its 1 selected endpoint: x (no PalisadeNode)');
});

test('Invalid: False whatever the nodes did, saying it is enforced fail-closed, with where its realization stands', () => {
  const realized = new Map([['n1', agent({ [PNP]: '100' })], ['n2', agent({ [PNP]: '100' })]]);
  const done = verdict({ valid: false, agents: realized });
  assert.deepEqual(
    { status: done.status, reason: done.reason, selectedEndpoints: done.selectedEndpoints, settled: done.settled },
    { status: 'False', reason: 'Invalid', selectedEndpoints: 3, settled: true },
  );
  assert.equal(
    done.message,
    'the spec is invalid (see Valid): agents enforce it fail-closed for the endpoints it selects (isolated both ways, nothing allowed), not as written; every node that runs one of its 3 selected endpoints (2 nodes) has realized resourceVersion 100',
  );
  const pending = verdict({ valid: false, agents: new Map([['n1', agent({ [PNP]: '100' })]]) });
  assert.equal(pending.reason, 'Invalid');
  assert.equal(pending.settled, false);
  assert.match(pending.message, /; no Palisade agent on 1 of the 2 nodes that run its 3 selected endpoints: n2 \(no PalisadeNode\)$/);
  assert.match(verdict({ valid: false, selected: selected({}) }).message, /; it selects no endpoint/);
  const unknown = verdict({ valid: false, selected: undefined });
  assert.equal(unknown.selectedEndpoints, 0, 'selects nothing, as the agent reads it');
  assert.match(unknown.message, /its endpointSelector is invalid too, so it selects no pod$/);
});

test('agentState reads Ready and realized from a PalisadeNode', () => {
  assert.deepEqual(agentState({ metadata: { name: 'n1' }, status: { realized: { Pod: '5' }, conditions: [{ type: 'Ready', status: 'True' }] } }), { ready: true, realized: { Pod: '5' } });
  assert.deepEqual(agentState({ metadata: { name: 'n1' }, status: { conditions: [{ type: 'Ready', status: 'False' }] } }), { ready: false, realized: {} });
  assert.deepEqual(agentState({ metadata: { name: 'n1' } }), { ready: false, realized: {} }, 'registered, nothing reported yet');
});
