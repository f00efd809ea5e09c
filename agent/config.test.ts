// The agent's command line: defaults, and the flags issue 7 added.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseAgentConfig } from './config.ts';

test('--host-reaches-pods: true by default (kubelet probes), false on request, anything else refused', () => {
  assert.equal(parseAgentConfig(['--node', 'n']).hostReachesPods, true);
  assert.equal(parseAgentConfig(['--node', 'n', '--host-reaches-pods', 'true']).hostReachesPods, true);
  assert.equal(parseAgentConfig(['--node', 'n', '--host-reaches-pods', 'false']).hostReachesPods, false);
  assert.throws(() => parseAgentConfig(['--node', 'n', '--host-reaches-pods', 'no']), /--host-reaches-pods/);
});
