import assert from 'node:assert/strict';
import { test } from 'node:test';
import { planEvents } from './problem-events.ts';

test('problems of one policy make one event on the policy, naming the node and every pod concerned', () => {
  const message = 'x/wide/ingress/0 allows ports 1-5000, wider than 4096 (but not all ports); not enforced: denied';
  const events = planEvents(
    [
      { endpoint: 'x/b', policy: 'x/wide', message },
      { endpoint: 'x/a', policy: 'x/wide', message },
      { endpoint: 'y/c', policy: 'y/other', message: 'y/other/egress/1 allows ports 10-9000, wider than 4096 (but not all ports); not enforced: denied' },
    ],
    'node-1',
  );
  assert.deepEqual(events, [
    { kind: 'NetworkPolicy', namespace: 'x', name: 'wide', reason: 'PolicyNotEnforced', message: `${message}, for 2 pods on node node-1: x/a, x/b` },
    {
      kind: 'NetworkPolicy',
      namespace: 'y',
      name: 'other',
      reason: 'PolicyNotEnforced',
      message: 'y/other/egress/1 allows ports 10-9000, wider than 4096 (but not all ports); not enforced: denied, for 1 pod on node node-1: y/c',
    },
  ]);
});

test('a problem no policy is at fault for goes on the pod', () => {
  assert.deepEqual(planEvents([{ endpoint: 'x/big', message: 'its policy needs 9 policy entries, more than the maps hold; all its traffic is denied' }], 'n2'), [
    { kind: 'Pod', namespace: 'x', name: 'big', reason: 'EndpointFailClosed', message: 'node n2: its policy needs 9 policy entries, more than the maps hold; all its traffic is denied' },
  ]);
});

test('a long list of pods is cut after ten, with the rest counted', () => {
  const problems = Array.from({ length: 13 }, (_, i) => ({ endpoint: `x/p${String(i).padStart(2, '0')}`, policy: 'x/wide', message: 'm' }));
  const [event] = planEvents(problems, 'n');
  assert.equal(event!.message, 'm, for 13 pods on node n: x/p00, x/p01, x/p02, x/p03, x/p04, x/p05, x/p06, x/p07, x/p08, x/p09 and 3 more');
});
