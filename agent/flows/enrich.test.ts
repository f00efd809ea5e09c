import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DIRECTION, FLOW_FLAG, FLOW_TYPE, REASON, type FlowEvent } from '../../datapath/abi.ts';
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
