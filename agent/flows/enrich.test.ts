import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DIRECTION, FLOW_FLAG, FLOW_TYPE, REASON, type FlowEvent } from '../../datapath/abi.ts';
import { fnv1a32 } from '../../policy/ids.ts';
import { defaultRuleNumber, ruleId } from '../datapath-plan.ts';
import { enrichFlow, RuleIndex, type FlowContext } from './enrich.ts';

const rules = new RuleIndex();
rules.setPolicy({ namespace: 'db', name: 'allow-web' }, { ingress: 2, egress: 0 });
rules.setPolicy({ namespace: 'db', name: 'deny-all' }, { ingress: 0, egress: 0 });
const pods = new Map([
  ['10.200.1.5', { namespace: 'shop', name: 'web', labels: { app: 'web' } }],
  ['10.200.2.9', { namespace: 'db', name: 'pg', labels: { app: 'pg' } }],
]);
const context: FlowContext = {
  node: 'node-2',
  endpoint: (ifindex) => (ifindex === 7 ? 'db/pg' : undefined),
  owner: (ip) => (pods.has(ip) ? `${pods.get(ip)!.namespace}/${pods.get(ip)!.name}` : undefined),
  pod: (key) => [...pods.values()].find((p) => `${p.namespace}/${p.name}` === key),
  rules,
  isolatedBy: (pod, direction) => (pod === 'db/pg' && direction === 'ingress' ? [{ namespace: 'db', name: 'allow-web' }, { namespace: 'db', name: 'deny-all' }] : undefined),
};
const event = (over: Partial<FlowEvent>): FlowEvent => ({
  timeNs: 1_764_547_200_123_456_789n, packets: 1n, bytes: 60n, ifindex: 7, saddr: '10.200.1.5', daddr: '10.200.2.9', sport: 40000, dport: 80,
  srcIdentity: 300, dstIdentity: 400, ruleId: 0, natAddr: '0.0.0.0', natPort: 0, protocol: 6, direction: DIRECTION.INGRESS,
  type: FLOW_TYPE.NEW, reason: REASON.ALLOW_POLICY, tcpFlags: 0x02, flags: 0, ...over,
});

test('an allowed connection names the policy and rule whose number the datapath recorded, with both pods and their labels', () => {
  const flow = enrichFlow(event({ ruleId: ruleId({ namespace: 'db', name: 'allow-web', direction: 'ingress', index: 1 }) }), context);
  assert.equal(flow.time, '2025-12-01T00:00:00.123456789Z');
  assert.deepEqual([flow.type, flow.verdict, flow.reason, flow.direction, flow.protocol, flow.tcpFlags], ['new', 'forwarded', 'ALLOW_POLICY', 'ingress', 'TCP', ['SYN']]);
  assert.deepEqual(flow.source, { ip: '10.200.1.5', port: 40000, identity: 300, pod: { namespace: 'shop', name: 'web' }, labels: { app: 'web' } });
  assert.deepEqual(flow.endpoint, { namespace: 'db', name: 'pg' });
  assert.deepEqual(flow.policies, [{ kind: 'NetworkPolicy', namespace: 'db', name: 'allow-web' }]);
  assert.deepEqual(flow.rule, { kind: 'NetworkPolicy', namespace: 'db', name: 'allow-web', direction: 'ingress', index: 1 });
  assert.equal(flow.isolated, true);
});

test('a default deny names every policy that isolates the pod in that direction', () => {
  const flow = enrichFlow(event({ type: FLOW_TYPE.DROP, reason: REASON.DROP_POLICY, flags: FLOW_FLAG.DEFAULT_DENY | FLOW_FLAG.RUNNING_TOTAL, packets: 40n, ruleId: defaultRuleNumber({ namespace: 'db', name: 'allow-web' }, 'ingress') }), context, 3n);
  assert.deepEqual([flow.verdict, flow.defaultDeny, flow.packets], ['dropped', true, 3]);
  assert.deepEqual(flow.policies.map((p) => p.name), ['allow-web', 'deny-all']);
});

test('a direction no policy isolates says so; a peer that is no pod is an entity; a Service connection names its frontend', () => {
  const flow = enrichFlow(event({ direction: DIRECTION.EGRESS, reason: REASON.PASS_UNSELECTED, saddr: '10.200.2.9', daddr: '8.8.8.8', dstIdentity: 2, flags: FLOW_FLAG.SERVICE, natAddr: '10.96.0.10', natPort: 53, protocol: 17, tcpFlags: 0 }), context);
  assert.deepEqual([flow.isolated, flow.policies, flow.rule], [false, [], undefined]);
  assert.deepEqual(flow.destination, { ip: '8.8.8.8', port: 80, identity: 2, entity: 'world' });
  assert.deepEqual(flow.service, { ip: '10.96.0.10', port: 53 });
  assert.equal(flow.tcpFlags, undefined);
});

// ---- Palisade's kinds: rules with a kind, deny rules (ADR 0010) ----

test('the rule index holds Palisade policies: allow and deny rules of both kinds, each its own number, removed with its policy', () => {
  const index = new RuleIndex();
  const pnp = { kind: 'PalisadeNetworkPolicy', namespace: 'db', name: 'guard' } as const;
  const pcnp = { kind: 'PalisadeClusterNetworkPolicy', namespace: '', name: 'baseline' } as const;
  index.setPolicy(pnp, { ingress: 1, egress: 0, ingressDeny: 2, egressDeny: 1 });
  index.setPolicy(pcnp, { ingress: 0, egress: 0, egressDeny: 1 });
  index.setPolicy({ namespace: 'db', name: 'guard' }, { ingress: 1, egress: 0 }); // a NetworkPolicy of the same name
  const deny1 = ruleId({ ...pnp, direction: 'ingress', index: 1, deny: true });
  assert.equal(deny1, fnv1a32('pnp:db/guard/ingressDeny/1'));
  assert.deepEqual(index.lookup(deny1), [{ ...pnp, direction: 'ingress', index: 1, deny: true }]);
  assert.deepEqual(index.lookup(ruleId({ ...pnp, direction: 'egress', index: 0, deny: true })), [{ ...pnp, direction: 'egress', index: 0, deny: true }]);
  assert.deepEqual(index.lookup(ruleId({ ...pcnp, direction: 'egress', index: 0, deny: true })), [{ ...pcnp, direction: 'egress', index: 0, deny: true }]);
  assert.equal(fnv1a32('pcnp:baseline/egressDeny/0'), ruleId({ ...pcnp, direction: 'egress', index: 0, deny: true }));
  // The allow rule of the Palisade policy and the NetworkPolicy's are different numbers.
  assert.deepEqual(index.lookup(ruleId({ ...pnp, direction: 'ingress', index: 0 })), [{ ...pnp, direction: 'ingress', index: 0 }]);
  assert.deepEqual(index.lookup(ruleId({ namespace: 'db', name: 'guard', direction: 'ingress', index: 0 })), [{ namespace: 'db', name: 'guard', direction: 'ingress', index: 0 }]);
  assert.equal(index.lookup(ruleId({ ...pnp, direction: 'ingress', index: 2, deny: true })).length, 0, 'no third deny rule');
  index.deletePolicy(pnp);
  assert.equal(index.lookup(deny1).length, 0);
  assert.equal(index.lookup(ruleId({ namespace: 'db', name: 'guard', direction: 'ingress', index: 0 })).length, 1, 'the NetworkPolicy of the same name stays');
});

test('a drop by a deny rule names the Palisade policy and its deny rule, and is no default deny', () => {
  const guard = { kind: 'PalisadeNetworkPolicy', namespace: 'db', name: 'guard' } as const;
  const baseline = { kind: 'PalisadeClusterNetworkPolicy', namespace: '', name: 'baseline' } as const;
  const index = new RuleIndex();
  index.setPolicy({ namespace: 'db', name: 'allow-web' }, { ingress: 2, egress: 0 });
  index.setPolicy(guard, { ingress: 0, egress: 0, ingressDeny: 1 });
  index.setPolicy(baseline, { ingress: 0, egress: 0, ingressDeny: 1 });
  const withDeny: FlowContext = { ...context, rules: index, deniedBy: (pod, direction) => (pod === 'db/pg' && direction === 'ingress' ? [guard, baseline] : undefined) };
  const denied = enrichFlow(event({ type: FLOW_TYPE.DROP, reason: REASON.DROP_POLICY_DENY, ruleId: ruleId({ ...guard, direction: 'ingress', index: 0, deny: true }) }), withDeny);
  assert.deepEqual([denied.verdict, denied.reason, denied.defaultDeny], ['dropped', 'DROP_POLICY_DENY', undefined]);
  assert.deepEqual(denied.rule, { kind: 'PalisadeNetworkPolicy', namespace: 'db', name: 'guard', direction: 'ingress', index: 0, deny: true });
  assert.deepEqual(denied.policies, [{ kind: 'PalisadeNetworkPolicy', namespace: 'db', name: 'guard' }]);
  // A cluster-wide policy has no namespace; a connection revoked by a deny rule names it too.
  const revoked = enrichFlow(event({ type: FLOW_TYPE.DROP, reason: REASON.DROP_REVOKED, ruleId: ruleId({ ...baseline, direction: 'ingress', index: 0, deny: true }) }), withDeny);
  assert.deepEqual(revoked.rule, { kind: 'PalisadeClusterNetworkPolicy', name: 'baseline', direction: 'ingress', index: 0, deny: true });
  // The XDP prefilter's drop (ADR 0013) names the deny rule that put its source there.
  const prefiltered = enrichFlow(event({ type: FLOW_TYPE.DROP, reason: REASON.DROP_PREFILTER, ruleId: ruleId({ ...baseline, direction: 'ingress', index: 0, deny: true }) }), withDeny);
  assert.deepEqual([prefiltered.verdict, prefiltered.reason, prefiltered.defaultDeny, prefiltered.endpoint], ['dropped', 'DROP_PREFILTER', undefined, { namespace: 'db', name: 'pg' }]);
  assert.deepEqual(prefiltered.rule, { kind: 'PalisadeClusterNetworkPolicy', name: 'baseline', direction: 'ingress', index: 0, deny: true });
  // A deny rule's number never passes for an allow rule, nor the reverse.
  const allowed = enrichFlow(event({ ruleId: ruleId({ ...guard, direction: 'ingress', index: 0, deny: true }) }), withDeny);
  assert.equal(allowed.rule, undefined);
  // A deny rule of a policy that does not select the pod is not the one.
  const elsewhere: FlowContext = { ...withDeny, deniedBy: () => [baseline] };
  assert.equal(enrichFlow(event({ type: FLOW_TYPE.DROP, reason: REASON.DROP_POLICY_DENY, ruleId: ruleId({ ...guard, direction: 'ingress', index: 0, deny: true }) }), elsewhere).rule, undefined);
});

test('peers that are no pod: the API server on this node or another is that node, elsewhere kube-apiserver; an unallocated pod is init', () => {
  const entity = (dstIdentity: number) => enrichFlow(event({ direction: DIRECTION.EGRESS, saddr: '10.200.2.9', daddr: '172.30.0.11', dstIdentity }), context).destination.entity;
  assert.deepEqual([1, 8, 6, 9, 7, 5, 2].map(entity), ['host', 'host', 'remote-node', 'remote-node', 'kube-apiserver', 'init', 'world']);
});

test('a connection allowed by a Palisade policy that allows without isolating names that policy and rule', () => {
  const own = { kind: 'PalisadeNetworkPolicy' as const, namespace: 'db', name: 'allow-own' };
  const local = new RuleIndex();
  local.setPolicy({ namespace: 'db', name: 'deny-all' }, { ingress: 0, egress: 0 });
  local.setPolicy(own, { ingress: 1, egress: 0 });
  const ctx: FlowContext = {
    ...context,
    rules: local,
    isolatedBy: () => [{ namespace: 'db', name: 'deny-all' }],
    allowedBy: () => [{ namespace: 'db', name: 'deny-all' }, own],
  };
  const flow = enrichFlow(event({ ruleId: ruleId({ ...own, direction: 'ingress', index: 0 }) }), ctx);
  assert.deepEqual(flow.policies, [{ kind: 'PalisadeNetworkPolicy', namespace: 'db', name: 'allow-own' }]);
  assert.equal(flow.rule?.index, 0);
  // Without allowedBy (only the isolating policies known), the rule of a non-isolating policy is not trusted: no name.
  const { allowedBy: _, ...older } = ctx;
  assert.deepEqual(enrichFlow(event({ ruleId: ruleId({ ...own, direction: 'ingress', index: 0 }) }), older).policies, []);
});
