import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Flow } from './flow.ts';
import { CriteriaError, flowFilter } from './flow-filter.ts';

const flow = (over: Partial<Flow> = {}): Flow => ({
  time: '2026-12-01T00:00:00.000000000Z', node: 'node-1', type: 'drop', verdict: 'dropped', reason: 'DROP_POLICY', direction: 'ingress',
  protocol: 'TCP', packets: 1, bytes: 60, isolated: true, defaultDeny: true,
  source: { ip: '10.200.1.5', port: 40000, identity: 300, pod: { namespace: 'shop', name: 'web' }, labels: { app: 'web', tier: 'front' } },
  destination: { ip: '10.200.2.9', port: 80, identity: 400, pod: { namespace: 'db', name: 'pg' }, labels: { app: 'pg' } },
  policies: [{ kind: 'NetworkPolicy', namespace: 'db', name: 'deny-all' }],
  ...over,
});

test('each criterion narrows; a list inside one widens', () => {
  const f = flow();
  const yes = (c: Parameters<typeof flowFilter>[0]) => assert.equal(flowFilter(c)(f), true, JSON.stringify(c));
  const no = (c: Parameters<typeof flowFilter>[0]) => assert.equal(flowFilter(c)(f), false, JSON.stringify(c));
  yes({});
  yes({ namespaces: ['shop'] });
  yes({ namespaces: ['db', 'other'] });
  no({ namespaces: ['other'] });
  yes({ pods: ['db/pg'] });
  yes({ fromPods: ['shop/web'] });
  no({ fromPods: ['db/pg'] });
  no({ toPods: ['shop/web'] });
  yes({ labels: ['app=web', 'tier'] });
  no({ labels: ['app=web', 'tier=back'] });
  yes({ identities: [400] });
  yes({ ips: ['10.200.2.0/24'] });
  no({ ips: ['10.200.3.0/24'] });
  yes({ ips: ['10.200.1.5'] });
  yes({ ports: [80] });
  no({ ports: [81] });
  yes({ protocols: ['tcp'] });
  no({ protocols: ['UDP'] });
  yes({ verdicts: ['dropped'] });
  no({ verdicts: ['forwarded'] });
  yes({ reasons: ['drop_policy'] });
  yes({ policies: ['db/deny-all'] });
  yes({ policies: ['NetworkPolicy db/deny-all'] });
  no({ policies: ['NetworkPolicy shop/deny-all'] });
  yes({ nodes: ['node-1'] });
  no({ nodes: ['node-1'], verdicts: ['forwarded'] });
  yes({ types: ['drop', 'new'] });
});

test('a flow of no pod of the namespace is not visible to a namespace-scoped reader', () => {
  const outside = flow({ source: { ip: '8.8.8.8', identity: 2, entity: 'world' }, destination: { ip: '10.200.2.9', identity: 400, pod: { namespace: 'db', name: 'pg' } } });
  assert.equal(flowFilter({ namespaces: ['shop'] })(outside), false);
  assert.equal(flowFilter({ namespaces: ['db'] })(outside), true);
});

test('malformed criteria are errors that name them', () => {
  assert.throws(() => flowFilter({ ips: ['10.0.0.0/33'] }), (e: Error) => e instanceof CriteriaError && /10\.0\.0\.0\/33/.test(e.message));
  assert.throws(() => flowFilter({ ips: ['banana'] }), /banana/);
  assert.throws(() => flowFilter({ labels: ['a=b=c'] }), /a=b=c/);
  assert.throws(() => flowFilter({ pods: ['noslash'] }), /noslash/);
  assert.throws(() => flowFilter({ ports: [0] }), /port/);
});
