import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CniError } from './errors.ts';
import { parseInvocation } from './input.ts';
import { decodeRequest, encodeRequest } from './protocol.ts';

const config = JSON.stringify({ cniVersion: '1.1.0', name: 'palisade', type: 'palisade-cni' });
const add = { CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'abc', CNI_NETNS: '/var/run/netns/p', CNI_IFNAME: 'eth0' };

test('the wire format round-trips environment and config', () => {
  const request = { env: { ...add, CNI_ARGS: 'K8S_POD_NAME=a;K8S_POD_NAMESPACE=x' }, stdin: config };
  assert.deepEqual(decodeRequest(encodeRequest(request)), request);
});

test('CNI_ARGS become key/value pairs', () => {
  const inv = parseInvocation({ ...add, CNI_ARGS: 'IgnoreUnknown=1;K8S_POD_NAME=a' }, config);
  assert.deepEqual(inv.args, { IgnoreUnknown: '1', K8S_POD_NAME: 'a' });
});

// Each row: what is wrong with the invocation, and the CNI code that names it.
const rows: Array<{ why: string; env: Record<string, string>; stdin?: string; code: number; message: RegExp }> = [
  { why: 'unknown command', env: { ...add, CNI_COMMAND: 'FOO' }, code: 4, message: /CNI_COMMAND/ },
  { why: 'DEL without an interface name', env: { CNI_COMMAND: 'DEL', CNI_CONTAINERID: 'abc' }, code: 4, message: /CNI_IFNAME is required/ },
  { why: 'CHECK without a netns', env: { ...add, CNI_COMMAND: 'CHECK', CNI_NETNS: '' }, code: 4, message: /CNI_NETNS is required/ },
  { why: 'interface name with a slash', env: { ...add, CNI_IFNAME: 'a/b' }, code: 4, message: /CNI_IFNAME/ },
  { why: 'GC on a 1.0.0 config', env: { CNI_COMMAND: 'GC' }, stdin: JSON.stringify({ cniVersion: '1.0.0', name: 'p', type: 't' }), code: 1, message: /GC needs cniVersion 1\.1\.0/ },
  { why: 'malformed CNI_ARGS pair', env: { ...add, CNI_ARGS: 'novalue' }, code: 4, message: /CNI_ARGS entry "novalue"/ },
  { why: 'config type is not a string', env: add, stdin: JSON.stringify({ cniVersion: '1.1.0', name: 'p', type: 3 }), code: 7, message: /field "type"/ },
];
for (const row of rows) {
  test(`invocation rejected: ${row.why}`, () => {
    assert.throws(
      () => parseInvocation(row.env, row.stdin ?? config),
      (e: unknown) => e instanceof CniError && e.code === row.code && row.message.test(e.message),
    );
  });
}

test('DEL may come without a network namespace', () => {
  const inv = parseInvocation({ CNI_COMMAND: 'DEL', CNI_CONTAINERID: 'abc', CNI_IFNAME: 'eth0' }, config);
  assert.equal(inv.netns, '');
});
