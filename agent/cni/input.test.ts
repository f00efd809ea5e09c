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
  // Decode errors are the runtime's to fix: code 6, never 11 (which invites retries).
  { why: 'empty stdin', env: add, stdin: '', code: 6, message: /stdin is empty/ },
  { why: 'stdin of whitespace only', env: add, stdin: ' \n', code: 6, message: /stdin is empty/ },
  { why: 'stdin not JSON', env: add, stdin: 'hello', code: 6, message: /not valid JSON/ },
  { why: 'config is a JSON array, not an object', env: add, stdin: '[]', code: 7, message: /\(root\)/ },
  // Every field has a length limit; the message names the field but does not echo 100,000 characters.
  { why: '100,000-character container ID', env: { ...add, CNI_CONTAINERID: 'a'.repeat(100_000) }, code: 4, message: /^CNI_CONTAINERID "a{64}…" \(100000 characters\) is longer than 256 characters$/ },
  { why: 'container ID with a newline', env: { ...add, CNI_CONTAINERID: 'abc\ndef' }, code: 4, message: /CNI_CONTAINERID "abc\\ndef"/ },
  // IFNAMSIZ is 16 with the NUL: 15 characters at most.
  { why: '16-character interface name', env: { ...add, CNI_IFNAME: 'a'.repeat(16) }, code: 4, message: /CNI_IFNAME .*15/ },
  { why: 'interface name "."', env: { ...add, CNI_IFNAME: '.' }, code: 4, message: /CNI_IFNAME/ },
  { why: 'interface name with a space', env: { ...add, CNI_IFNAME: 'eth 0' }, code: 4, message: /CNI_IFNAME/ },
  { why: 'interface name with a colon (alias syntax)', env: { ...add, CNI_IFNAME: 'eth0:1' }, code: 4, message: /CNI_IFNAME/ },
  { why: 'interface name with "#" (a comment in ip -batch)', env: { ...add, CNI_IFNAME: 'eth#0' }, code: 4, message: /CNI_IFNAME/ },
  { why: 'interface name with a control character', env: { ...add, CNI_IFNAME: 'eth\u00070' }, code: 4, message: /CNI_IFNAME/ },
  // The netns path ends up in an `ip -batch` line: one newline would add a command.
  { why: 'netns path with a newline', env: { ...add, CNI_NETNS: '/var/run/netns/p\nlink del eth0' }, code: 4, message: /CNI_NETNS "\/var\/run\/netns\/p\\nlink del eth0" must be/ },
  { why: 'relative netns path', env: { ...add, CNI_NETNS: 'var/run/netns/p' }, code: 4, message: /CNI_NETNS .*absolute/ },
  { why: 'netns path with a space', env: { ...add, CNI_NETNS: '/var/run/netns/a b' }, code: 4, message: /CNI_NETNS/ },
  { why: 'netns path longer than 1024 characters', env: { ...add, CNI_NETNS: `/${'a'.repeat(1024)}` }, code: 4, message: /CNI_NETNS .*1024/ },
  { why: 'DEL with a bad netns path (optional there, checked when given)', env: { CNI_COMMAND: 'DEL', CNI_CONTAINERID: 'abc', CNI_IFNAME: 'eth0', CNI_NETNS: '/x\ny' }, code: 4, message: /CNI_NETNS/ },
  // Kubernetes names: a namespace is a DNS-1123 label, a pod name a DNS-1123 subdomain.
  { why: 'pod namespace with upper case', env: { ...add, CNI_ARGS: 'K8S_POD_NAMESPACE=Default;K8S_POD_NAME=a' }, code: 4, message: /K8S_POD_NAMESPACE "Default"/ },
  { why: 'pod namespace of 64 characters', env: { ...add, CNI_ARGS: `K8S_POD_NAMESPACE=${'a'.repeat(64)}` }, code: 4, message: /K8S_POD_NAMESPACE .*63/ },
  { why: 'pod name with a slash', env: { ...add, CNI_ARGS: 'K8S_POD_NAMESPACE=x;K8S_POD_NAME=a/b' }, code: 4, message: /K8S_POD_NAME "a\/b"/ },
  { why: 'pod name of 254 characters', env: { ...add, CNI_ARGS: `K8S_POD_NAME=${'a'.repeat(254)}` }, code: 4, message: /K8S_POD_NAME .*253/ },
  { why: 'infra container ID that is not a container ID', env: { ...add, CNI_ARGS: 'K8S_POD_INFRA_CONTAINER_ID=-x' }, code: 4, message: /K8S_POD_INFRA_CONTAINER_ID/ },
  { why: 'CNI_ARGS longer than 4096 characters', env: { ...add, CNI_ARGS: `X=${'a'.repeat(4096)}` }, code: 4, message: /CNI_ARGS .*4096/ },
  { why: 'CNI_ARGS key with a space', env: { ...add, CNI_ARGS: 'A B=1' }, code: 4, message: /CNI_ARGS key "A B"/ },
  { why: 'CNI_PATH longer than 4096 characters', env: { ...add, CNI_PATH: `/${'a'.repeat(4096)}` }, code: 4, message: /CNI_PATH .*4096/ },
  // Config fields are bounded too.
  { why: 'network name with a slash', env: add, stdin: JSON.stringify({ cniVersion: '1.1.0', name: 'a/b', type: 't' }), code: 7, message: /field "name"/ },
  { why: 'relative agentSocket', env: add, stdin: JSON.stringify({ cniVersion: '1.1.0', name: 'p', type: 't', agentSocket: 'cni.sock' }), code: 7, message: /field "agentSocket"/ },
  { why: 'agentSocket longer than a unix socket path', env: add, stdin: JSON.stringify({ cniVersion: '1.1.0', name: 'p', type: 't', agentSocket: `/${'a'.repeat(108)}` }), code: 7, message: /field "agentSocket"/ },
  { why: 'GC attachment with a bad container ID', env: { CNI_COMMAND: 'GC' }, stdin: JSON.stringify({ cniVersion: '1.1.0', name: 'p', type: 't', 'cni.dev/valid-attachments': [{ containerID: 'a b', ifname: 'eth0' }] }), code: 7, message: /field "cni.dev\/valid-attachments.0.containerID"/ },
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

// Each row: a value at the edge of its limit that must still be accepted.
const accepted: Array<{ why: string; env: Record<string, string> }> = [
  { why: 'container ID of 256 characters', env: { ...add, CNI_CONTAINERID: 'a'.repeat(256) } },
  { why: 'interface name of 15 characters', env: { ...add, CNI_IFNAME: 'a'.repeat(15) } },
  { why: 'containerd netns path', env: { ...add, CNI_NETNS: '/var/run/netns/cni-3f6b1a2c-44d1-8e1b-ffb2-0c2b6b7c9d10' } },
  { why: 'netns of a process', env: { ...add, CNI_NETNS: '/proc/4242/ns/net' } },
  { why: 'Kubernetes names at their limits', env: { ...add, CNI_ARGS: `K8S_POD_NAMESPACE=${'a'.repeat(63)};K8S_POD_NAME=${'a'.repeat(61)}.b-c.d` } },
];
for (const row of accepted) {
  test(`invocation accepted: ${row.why}`, () => {
    parseInvocation(row.env, config);
  });
}
