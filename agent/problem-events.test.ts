import assert from 'node:assert/strict';
import { test } from 'node:test';
import { planEvents } from './problem-events.ts';

test('a problem goes on its pod, naming the node', () => {
  assert.deepEqual(planEvents([{ endpoint: 'x/big', message: 'its policy needs 70000 entries, more than the 65536 one endpoint may have; all its traffic is denied' }], 'n2'), [
    { kind: 'Pod', namespace: 'x', name: 'big', reason: 'EndpointFailClosed', message: 'node n2: its policy needs 70000 entries, more than the 65536 one endpoint may have; all its traffic is denied' },
  ]);
});
