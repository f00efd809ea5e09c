import assert from 'node:assert/strict';
import { test } from 'node:test';
import { batchLine, ipBatch, SELF } from './iproute.ts';
import { validNetnsPath } from './pod-link.ts';

// Each row: a token, and whether it may appear in an `ip -batch` line.
const tokens: Array<[string, boolean, string]> = [
  ['eth0', true, 'an interface name'],
  ['/var/run/netns/cni-1f2e', true, 'a netns path'],
  ['10.200.1.5/32', true, 'a prefix'],
  ['0a:1b:2c:3d:4e:5f', true, 'a MAC address'],
  ['a b', false, 'whitespace splits the token'],
  ['a\nlink del eth0', false, 'a newline starts a second command'],
  ['eth#0', false, '"#" starts a comment'],
  ['"x"', false, 'quotes group tokens'],
  ["'x'", false, 'single quotes too'],
  ['a\\b', false, 'a backslash escapes'],
  ['', false, 'an empty token vanishes'],
];
for (const [token, ok, why] of tokens) {
  test(`batchLine ${ok ? 'takes' : 'refuses'} ${JSON.stringify(token)}: ${why}`, () => {
    if (ok) assert.equal(batchLine('link', 'show', token), `link show ${token}`);
    else assert.throws(() => batchLine('link', 'show', token), TypeError);
  });
}

test('ipBatch refuses a command with a line break before running anything', async () => {
  await assert.rejects(ipBatch(SELF, ['link set lo up\nlink del eth0']), /refusing ip -batch command/);
});

// Each row: a netns path, and whether Palisade hands it to iproute2.
const paths: Array<[string, boolean, string]> = [
  ['/var/run/netns/cni-3f6b1a2c-44d1-8e1b-ffb2-0c2b6b7c9d10', true, 'containerd'],
  ['/proc/4242/ns/net', true, 'a process'],
  ['/run/netns/netns-3f6b1a2c', true, 'podman'],
  ['var/run/netns/x', false, 'relative'],
  ['/var/run/netns/x\ny', false, 'a newline'],
  ['/var/run/netns/a b', false, 'a space'],
  ['/var/run/netns/x#y', false, 'a comment character'],
  [`/${'a'.repeat(1023)}`, true, '1024 characters'],
  [`/${'a'.repeat(1024)}`, false, '1025 characters'],
];
for (const [path, ok, why] of paths) {
  test(`validNetnsPath ${ok ? 'accepts' : 'refuses'}: ${why}`, () => {
    assert.equal(validNetnsPath(path), ok);
  });
}
