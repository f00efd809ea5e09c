import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { Endpoint } from './cni/handler.ts';
import { EndpointRegistry, staleReason, type LinkView } from './endpoints.ts';

const saved = (over: Partial<Endpoint> = {}): Endpoint => ({
  containerId: 'c1', ifName: 'eth0', hostIfName: 'pal0123456789a', ifindex: 7, ip: '10.200.1.5',
  podNamespace: 'x', podName: 'a', netns: '/var/run/netns/p1', ...over,
});

/** A node whose interfaces and pod namespaces are given by the row. */
function view(links: Record<string, { ifindex: number; kind?: string }>, peers: Record<string, number> = {}): LinkView {
  return {
    links: async () => new Map(Object.entries(links).map(([name, l]) => [name, { ifindex: l.ifindex, kind: l.kind }])),
    peerIndex: async (netns, ifName) => peers[`${netns}/${ifName}`],
  };
}

// Each row: the node as the agent finds it at start, and whether the saved endpoint survives.
const rows: Array<{ why: string; endpoint: Endpoint; node: LinkView; stale: RegExp | undefined }> = [
  { why: 'veth and peer as saved', endpoint: saved(), node: view({ pal0123456789a: { ifindex: 7, kind: 'veth' } }, { '/var/run/netns/p1/eth0': 7 }), stale: undefined },
  { why: 'veth renumbered, peer still pairs with it', endpoint: saved(), node: view({ pal0123456789a: { ifindex: 9, kind: 'veth' } }, { '/var/run/netns/p1/eth0': 9 }), stale: undefined },
  { why: 'interface gone (the reboot case), its ifindex held by another device', endpoint: saved(), node: view({ eth1: { ifindex: 7 } }), stale: /pal0123456789a does not exist/ },
  { why: 'the name is now a dummy device', endpoint: saved(), node: view({ pal0123456789a: { ifindex: 7, kind: 'dummy' } }), stale: /a dummy device, not a veth/ },
  { why: 'the saved netns is gone', endpoint: saved(), node: view({ pal0123456789a: { ifindex: 7, kind: 'veth' } }), stale: /no veth eth0 in \/var\/run\/netns\/p1/ },
  { why: 'the pod interface pairs with some other veth', endpoint: saved(), node: view({ pal0123456789a: { ifindex: 7, kind: 'veth' } }, { '/var/run/netns/p1/eth0': 12 }), stale: /pairs with ifindex 12/ },
  { why: 'older file without netns, same ifindex', endpoint: saved({ netns: undefined }), node: view({ pal0123456789a: { ifindex: 7, kind: 'veth' } }), stale: undefined },
  { why: 'older file without netns, other ifindex: cannot be checked', endpoint: saved({ netns: undefined }), node: view({ pal0123456789a: { ifindex: 8, kind: 'veth' } }), stale: /ifindex 8, not 7/ },
];
for (const row of rows) {
  test(`saved endpoint ${row.stale ? 'pruned' : 'kept'}: ${row.why}`, async () => {
    const reason = await staleReason(row.endpoint, await row.node.links(), row.node);
    if (row.stale) assert.match(reason ?? '(kept)', row.stale);
    else assert.equal(reason, undefined);
  });
}

test('prune removes stale files and rewrites a renumbered endpoint', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'pal-endpoints-test-'));
  try {
    const registry = await EndpointRegistry.open(dir);
    await registry.added(saved({ hostIfName: 'palaaaaaaaaaaa', containerId: 'gone' }));
    await registry.added(saved({ hostIfName: 'palbbbbbbbbbbb', containerId: 'moved', netns: '/var/run/netns/p2' }));
    const result = await registry.prune(view({ palbbbbbbbbbbb: { ifindex: 30, kind: 'veth' } }, { '/var/run/netns/p2/eth0': 30 }));
    assert.deepEqual(result.pruned.map((p) => p.endpoint.containerId), ['gone']);
    assert.deepEqual(result.renumbered.map((r) => [r.endpoint.ifindex, r.from]), [[30, 7]]);
    assert.deepEqual(await readdir(dir), ['palbbbbbbbbbbb.json']);
    const reopened = await EndpointRegistry.open(dir);
    assert.deepEqual(reopened.list().map((e) => e.ifindex), [30], 'the new ifindex is saved');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
