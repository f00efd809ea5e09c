// An agent restart under FQDN traffic (issue 10 item 5): while a pod selected
// by an FQDN policy looks names up and connects to their addresses, 20 times
// a second for 15 s, its node's agent is stopped and started again with the
// same state directory and pins (the learned names are restored before its
// first sync, and its proxy takes the queries back). Every lookup and
// connection must succeed: the target is no failure at all. One name has a
// 2 s TTL, so its address expires and is learned again many times, also
// across the restart.
//
// Stopped with SIGTERM to the agent alone (as a container runtime stops a
// pod's main process), the agent ends the DNS proxy's lease first: queries go
// straight to the DNS server until the next agent's proxy holds it, and
// nothing fails. Stopped as the harness stops its processes (SIGTERM to the
// process group), the datapath loader, a child in that group, ignores the
// signal and serves the agent until it closes: the lease is ended the same
// way (it once died at once, and the lease ran on with no proxy). A
// connection held open past its name's TTL survives a restart that lasts
// longer than the TTL: the new agent restores an expired address that an
// open connection still uses (conntrack).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { CustomObjectsApi } from '@kubernetes/client-node';
import { execa } from 'execa';
import { startCluster, type Cluster } from '../cluster/cluster.ts';
import { startDnsServer, type DnsServer } from '../cluster/dns-server.ts';
import type { SimPod } from '../cluster/kubelet.ts';
import { NODE_BIN } from '../cluster/paths.ts';
import { DNS_CLIENT, nsenterNet } from '../cluster/resolve.ts';
import type { ExternalHost } from '../cluster/world.ts';
import { createNamespace, startPods } from '../cluster/workload.ts';
import { EnforcementTracker } from '../scenario/enforcement.ts';

const NAMES = ['lasting.restart.example', 'brief.restart.example'];
/** A name whose connection is held open across a restart longer than its TTL. */
const HELD = 'held.restart.example';
const PER_SECOND = 20;
const SECONDS = 15;
/** When the agent is stopped, in seconds after the stream started. */
const RESTART_AT = 5;

let cluster: Cluster;
let dns: DnsServer;
let hosts: ExternalHost[];
let client: SimPod; // x/a on node-1, whose agent restarts

before(async () => {
  cluster = await startCluster({ nodes: 2 });
  hosts = await cluster.world.addHosts([{ name: 'web', ip: '203.0.113.50' }, { name: 'db', ip: '198.51.100.50' }, { name: 'held', ip: '192.0.2.50' }]);
  // The DNS server on node-2: node-1's restart stops only the proxy, not the server.
  dns = await startDnsServer(cluster, {
    node: cluster.nodes[1]!,
    records: [
      { name: NAMES[0]!, addresses: ['203.0.113.50'], ttl: 30 },
      { name: NAMES[1]!, addresses: ['198.51.100.50'], ttl: 2 },
      { name: HELD, addresses: ['192.0.2.50'], ttl: 2 },
    ],
  });
  const tracker = new EnforcementTracker();
  tracker.note('Namespace', await createNamespace(cluster, 'x', { 'kubernetes.io/metadata.name': 'x' }));
  [client] = (await startPods(cluster, [{ namespace: 'x', name: 'a', labels: { pod: 'a' } }])) as [SimPod];
  assert.equal(client.node, cluster.nodes[0]);
  tracker.note('Pod', client.resourceVersion);
  const policy = (await cluster.kubeconfig.makeApiClient(CustomObjectsApi).createNamespacedCustomObject({
    group: 'palisade.io', version: 'v1alpha1', namespace: 'x', plural: 'palisadenetworkpolicies',
    body: {
      apiVersion: 'palisade.io/v1alpha1', kind: 'PalisadeNetworkPolicy', metadata: { name: 'a-to-restart-example' },
      spec: { endpointSelector: { matchLabels: { pod: 'a' } }, egress: [{ toFQDNs: [{ matchPattern: '*.restart.example' }], toPorts: [{ ports: [{ port: '80', protocol: 'TCP' }] }] }] },
    },
  })) as { metadata?: { resourceVersion?: string } };
  tracker.note('PalisadeNetworkPolicy', policy.metadata?.resourceVersion);
  await tracker.wait(cluster.kubeconfig, cluster.nodes.map((n) => n.name));
});

after(async () => {
  await dns?.stop().catch(() => undefined);
  if (hosts) await cluster.world.removeHosts(hosts).catch(() => undefined);
  await cluster?.stop();
});

type Attempt = { t: number; name: string; ok: boolean; stage?: string; reason?: string; address?: string; port?: number; ms: number };

/**
 * Runs the stream from the client pod, restarts its node's agent RESTART_AT s
 * in (`stop`, then a new agent with the same state and pins), and returns the
 * failed attempts, described with their time relative to the stop.
 */
async function streamAcrossRestart(t: { diagnostic(message: string): void }, stop: () => Promise<void>): Promise<string[]> {
  const node = client.node;
  const stream = execa('nsenter', [
    nsenterNet(client.netns), NODE_BIN, DNS_CLIENT, 'stream', '--server', dns.ip, '--names', NAMES.join(','),
    '--per-second', String(PER_SECOND), '--seconds', String(SECONDS), '--port', '80', '--timeout-ms', '2000',
  ], { reject: false });
  // The stream's clock starts with its first line; the restart is timed against it.
  const started = await new Promise<number>((resolve, reject) => {
    stream.stdout!.once('data', (chunk: Buffer) => resolve((JSON.parse(String(chunk).split('\n')[0]!) as { start: number }).start));
    void stream.then((r) => reject(new Error(`the stream ended before it started: ${String(r.stderr)}`)));
  });
  await new Promise((resolve) => setTimeout(resolve, Math.max(0, started + RESTART_AT * 1000 - Date.now())));
  const stopping = Date.now() - started;
  await stop();
  const stopped = Date.now() - started;
  await node.startAgent();
  const ready = Date.now() - started;
  const result = await stream;
  assert.equal(result.exitCode, 0, `the stream failed: ${String(result.stderr)}`);

  const lines = String(result.stdout).split('\n').filter(Boolean).map((l) => JSON.parse(l) as Attempt & { start?: number; done?: boolean });
  assert.ok(lines.at(-1)?.done, 'the stream did not finish');
  const attempts = lines.filter((l) => 'name' in l);
  assert.equal(attempts.length, PER_SECOND * SECONDS);
  const failed = attempts.filter((a) => !a.ok);
  const seconds = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
  t.diagnostic(`the agent's stop began ${seconds(stopping)} into the stream; it had exited at ${seconds(stopped)}; the new agent was ready at ${seconds(ready)}`);
  t.diagnostic(`${attempts.length} attempts, ${failed.length} failed; slowest ${Math.max(...attempts.map((a) => a.ms))} ms`);
  const described = failed.map((a) => `${a.name} started ${seconds(a.t - stopping)} after the stop began: ${a.stage} ${a.reason}${a.address ? ` (${a.address})` : ''}${a.port ? ` (from port ${a.port})` : ''}`);
  for (const d of described.slice(0, 30)) t.diagnostic(`failed: ${d}`);
  return described;
}

test('the agent stopped as a container runtime stops it (SIGTERM to the agent alone) and started again: no lookup or connection fails', { timeout: 120_000 }, async (t) => {
  const node = client.node;
  const failed = await streamAcrossRestart(t, async () => {
    process.kill(node.agent.pid, 'SIGTERM');
    await node.agent.exited;
  });
  assert.deepEqual(failed, []);
});

test('the agent stopped as the harness stops it (SIGTERM to its process group, its datapath loader included) and started again: no lookup or connection fails', {
  timeout: 120_000,
}, async (t) => {
  const node = client.node;
  const failed = await streamAcrossRestart(t, () => node.agent.stop());
  assert.deepEqual(failed, []);
});

test('a connection to a learned address, open past its TTL, survives a restart that lasts longer than the TTL', {
  timeout: 120_000,
}, async (t) => {
  const node = client.node;
  const hold = execa('nsenter', [nsenterNet(client.netns), NODE_BIN, DNS_CLIENT, 'hold', '--server', dns.ip, '--names', HELD, '--seconds', '14', '--interval-ms', '250'], { reject: false });
  const started = await new Promise<number>((resolve, reject) => {
    hold.stdout!.once('data', (chunk: Buffer) => resolve((JSON.parse(String(chunk).split('\n')[0]!) as { start: number }).start));
    void hold.then((r) => reject(new Error(`the connection ended before it started: ${String(r.stderr)}`)));
  });
  // The TTL (2 s) runs out while the connection is open; the old agent keeps the address (in use).
  await new Promise((resolve) => setTimeout(resolve, Math.max(0, started + 4000 - Date.now())));
  process.kill(node.agent.pid, 'SIGTERM');
  await node.agent.exited;
  await new Promise((resolve) => setTimeout(resolve, 3000)); // away longer than the TTL
  await node.startAgent();
  const ready = Date.now() - started;
  const result = await hold;
  assert.equal(result.exitCode, 0, `the connection failed: ${String(result.stderr)}`);
  const echoes = String(result.stdout).split('\n').filter(Boolean).map((l) => JSON.parse(l) as { t?: number; ok?: boolean }).filter((e) => e.t !== undefined);
  const lost = echoes.filter((e) => !e.ok);
  t.diagnostic(`the new agent was ready ${(ready / 1000).toFixed(2)} s into the connection; ${lost.length} of ${echoes.length} echoes lost${lost.length ? `, the first sent at ${(lost[0]!.t! / 1000).toFixed(2)} s` : ''}`);
  assert.deepEqual(lost.map((e) => e.t), []);
});
