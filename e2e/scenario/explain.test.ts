import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Flow } from '../../lib/flow.ts';
import { explainFailure } from './explain.ts';

const flow = (over: Partial<Flow>): Flow => ({
  time: '2026-12-01T00:00:00.000000000Z', node: 'n', type: 'new', verdict: 'forwarded', reason: 'ALLOW_POLICY', direction: 'ingress', protocol: 'TCP',
  packets: 1, bytes: 60, isolated: true, policies: [],
  source: { ip: '10.0.0.1', port: 40000, identity: 300, pod: { namespace: 'y', name: 'a' } },
  destination: { ip: '10.0.0.2', port: 80, identity: 400, pod: { namespace: 'x', name: 'b' } },
  ...over,
});
const np = (ns: string, name: string) => ({ kind: 'NetworkPolicy', namespace: ns, name });

test('a drop is explained by a flow at that hook naming exactly the listed policies', () => {
  const e = { from: 'y/a', to: 'x/b', verdict: 'dropped' as const, at: 'ingress' as const, by: ['NetworkPolicy x/b-from-a', 'NetworkPolicy x/deny-all'] };
  const drop = flow({ type: 'drop', verdict: 'dropped', reason: 'DROP_POLICY', defaultDeny: true, policies: [np('x', 'deny-all'), np('x', 'b-from-a')] });
  assert.equal(explainFailure(e, [drop]), undefined);
  assert.match(explainFailure(e, [{ ...drop, policies: [np('x', 'deny-all')] }])!, /no flow says dropped at ingress/);
  assert.match(explainFailure(e, [{ ...drop, direction: 'egress' }])!, /seen: drop dropped at egress/);
  assert.match(explainFailure(e, [{ ...drop, source: { ...drop.source, pod: { namespace: 'z', name: 'a' } } }])!, /no flow of this connection/);
});

test('a forwarded connection needs, per direction, an allowing policy among those listed, or for [] no isolation', () => {
  const e = { from: 'y/a', to: 'x/b', verdict: 'forwarded' as const, egress: [], ingress: ['NetworkPolicy x/b-from-a'] };
  const egress = flow({ direction: 'egress', reason: 'PASS_UNSELECTED', isolated: false });
  const ingress = flow({ policies: [np('x', 'b-from-a')] });
  assert.equal(explainFailure(e, [egress, ingress]), undefined);
  assert.match(explainFailure(e, [ingress])!, /forwarded at egress by no policy isolating it/);
  assert.match(explainFailure(e, [egress, { ...ingress, policies: [np('x', 'other')] }])!, /forwarded at ingress by one of \[NetworkPolicy x\/b-from-a\]/);
  assert.match(explainFailure(e, [{ ...egress, isolated: true }, ingress])!, /at egress/, 'isolated but allowed is not "no policy"');
});
