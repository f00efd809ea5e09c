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

test('--max-entries-per-endpoint and --ct-max-per-endpoint: 65536 by default, a positive integer on request, anything else refused by name', () => {
  const defaults = parseAgentConfig(['--node', 'n']);
  assert.equal(defaults.maxEntriesPerEndpoint, 65_536);
  assert.equal(defaults.ctMaxPerEndpoint, 65_536);
  assert.equal(parseAgentConfig(['--node', 'n', '--ct-max-per-endpoint', '500']).ctMaxPerEndpoint, 500);
  assert.equal(parseAgentConfig(['--node', 'n', '--max-entries-per-endpoint', '40']).maxEntriesPerEndpoint, 40);
  assert.throws(() => parseAgentConfig(['--node', 'n', '--ct-max-per-endpoint', '0']), /--ct-max-per-endpoint/);
  assert.throws(() => parseAgentConfig(['--node', 'n', '--max-entries-per-endpoint', 'lots']), /--max-entries-per-endpoint/);
});

test('--prefilter: on by default, off on request, anything else refused; --prefilter-devices: a comma-separated list', () => {
  const defaults = parseAgentConfig(['--node', 'n']);
  assert.equal(defaults.prefilter, true);
  assert.equal(defaults.prefilterDevices, undefined);
  assert.equal(parseAgentConfig(['--node', 'n', '--prefilter', 'false']).prefilter, false);
  assert.throws(() => parseAgentConfig(['--node', 'n', '--prefilter', 'off']), /--prefilter/);
  assert.deepEqual(parseAgentConfig(['--node', 'n', '--prefilter-devices', 'eth0, bond0,']).prefilterDevices, ['eth0', 'bond0']);
});
