// Services (issue 7 item 9): with kube-proxy (iptables mode) on every node, a
// pod reaches a Service's ClusterIP:port over TCP and UDP, to a backend on its
// own node and on the other node. Palisade translates the pod's packets to a
// backend itself, on the pod's veth, so that an egress policy judges the
// backend the connection reaches (docs/adr/0005-service-egress.md): under a
// policy that allows the client only pods labelled app=server on the target
// port, the client reaches both Services of those servers, and not a Service
// whose backend is another pod, nor anything through an ipBlock that opens
// every address but not pods.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { NetworkingV1Api, type V1NetworkPolicy } from '@kubernetes/client-node';
import { execa } from 'execa';
import { enforcedEverywhere } from '../cluster/node-status.ts';
import { startCluster, type Cluster } from '../cluster/cluster.ts';
import type { SimPod } from '../cluster/kubelet.ts';
import { listNetns } from '../cluster/netns.ts';
import type { ManagedProcess } from '../cluster/processes.ts';
import { probeAll, type ProbeRequest, type Protocol } from '../cluster/probe.ts';
import { createService, type SimService } from '../cluster/services.ts';
import { createNamespace, startPods } from '../cluster/workload.ts';

const NAMESPACE = 'svc';
const SERVICE_PORT = 8080;
const TARGET_PORT = 80;
const PROTOCOLS: Protocol[] = ['TCP', 'UDP'];

let cluster: Cluster;
let client: SimPod; // node-1, app=client: the policy's subject
let other: SimPod; // node-2, app=other: a second client, and a pod the policy does not allow
let localServer: SimPod; // node-1, app=server
let remoteServer: SimPod; // node-2, app=server
let local: SimService; // backend: localServer only
let remote: SimService; // backend: remoteServer only

type Check = { label: string; request: ProbeRequest };

/** Runs the checks; returns "label: verdict[ reason]" per check. */
async function verdicts(checks: Check[]): Promise<string[]> {
  const outcomes = await probeAll(checks.map((c) => c.request));
  return checks.map((c, i) => {
    const o = outcomes[i]!;
    return `${c.label}: ${o.verdict}${o.verdict === 'ok' ? '' : ` ${o.reason}`}`;
  });
}

function viaService(from: SimPod, service: SimService): Check[] {
  return PROTOCOLS.map((protocol) => ({
    label: `${from.name}@${from.node.name} -> ${service.name} ${service.clusterIP}:${service.port}/${protocol}`,
    request: { from, to: { ip: service.clusterIP }, port: service.port, protocol },
  }));
}

function direct(from: SimPod, to: SimPod): Check[] {
  return PROTOCOLS.map((protocol) => ({
    label: `${from.name}@${from.node.name} -> ${to.name}@${to.node.name} ${to.ip}:${TARGET_PORT}/${protocol}`,
    request: { from, to, port: TARGET_PORT, protocol },
  }));
}

/** Whether the process has exited (within `ms`). */
async function exited(proc: ManagedProcess, ms = 100): Promise<boolean> {
  return Promise.race([proc.exited.then(() => true), sleep(ms).then(() => false)]);
}

const ok = (lines: string[]) => lines.map((l) => l.replace(/: .*$/, ': ok'));

before(async () => {
  cluster = await startCluster({ nodes: 2, kubeProxy: true });
  await enforcedEverywhere(cluster, 'Namespace', await createNamespace(cluster, NAMESPACE, { 'kubernetes.io/metadata.name': NAMESPACE }));
  // startPods places them round-robin: node-1, node-2, node-1, node-2.
  const pods = await startPods(cluster, [
    { namespace: NAMESPACE, name: 'client', labels: { app: 'client' } },
    { namespace: NAMESPACE, name: 'server-2', labels: { app: 'server', at: 'node-2' } },
    { namespace: NAMESPACE, name: 'server-1', labels: { app: 'server', at: 'node-1' } },
    { namespace: NAMESPACE, name: 'other', labels: { app: 'other' } },
  ]);
  [client, remoteServer, localServer, other] = [pods[0]!, pods[1]!, pods[2]!, pods[3]!];
  assert.deepEqual([client, remoteServer, localServer, other].map((p) => p.node.name), ['node-1', 'node-2', 'node-1', 'node-2']);
  local = await createService(cluster, { namespace: NAMESPACE, name: 'local', selector: { app: 'server', at: 'node-1' }, port: SERVICE_PORT, targetPort: TARGET_PORT });
  remote = await createService(cluster, { namespace: NAMESPACE, name: 'remote', selector: { app: 'server', at: 'node-2' }, port: SERVICE_PORT, targetPort: TARGET_PORT });
  const latest = pods.map((p) => p.resourceVersion).sort((a, b) => Number(a) - Number(b)).at(-1);
  await enforcedEverywhere(cluster, 'Pod', latest);
});

after(async () => {
  await cluster?.stop();
});

test('each node runs kube-proxy with DNAT rules for both Services, and each Service lists its one backend', async () => {
  assert.deepEqual(local.endpoints, [localServer.ip]);
  assert.deepEqual(remote.endpoints, [remoteServer.ip]);
  for (const node of cluster.nodes) {
    assert.ok(node.kubeProxy, `${node.name} runs kube-proxy`);
    assert.equal(await exited(node.kubeProxy), false, `${node.name}'s kube-proxy is running`);
  }
});

test('without a policy, pods reach a Service ClusterIP:port over TCP and UDP, on the same node and across nodes', async () => {
  const checks = [client, other].flatMap((from) => [local, remote].flatMap((service) => viaService(from, service)));
  const seen = await verdicts(checks);
  assert.deepEqual(seen, ok(seen));
});

test('without a policy, the Service port is translated: the ClusterIP does not answer on the target port itself', async () => {
  // Port 80 on the ClusterIP has no rule: nothing answers (not an echo from a pod).
  const [outcome] = await probeAll([{ from: client, to: { ip: local.clusterIP }, port: TARGET_PORT, protocol: 'TCP' }], 500);
  assert.notEqual(outcome!.verdict, 'ok');
});

test('under an egress policy allowing app=server on the target port, the client reaches the servers by pod IP and not another pod', async () => {
  const networking = cluster.kubeconfig.makeApiClient(NetworkingV1Api);
  const policy: V1NetworkPolicy = {
    metadata: { name: 'client-to-servers', namespace: NAMESPACE },
    spec: {
      podSelector: { matchLabels: { app: 'client' } },
      policyTypes: ['Egress'],
      egress: [{ to: [{ podSelector: { matchLabels: { app: 'server' } } }], ports: PROTOCOLS.map((protocol) => ({ protocol, port: TARGET_PORT })) }],
    },
  } as V1NetworkPolicy;
  const created = await networking.createNamespacedNetworkPolicy({ namespace: NAMESPACE, body: policy });
  await enforcedEverywhere(cluster, 'NetworkPolicy', created.metadata?.resourceVersion);

  const allowed = await verdicts([...direct(client, localServer), ...direct(client, remoteServer)]);
  assert.deepEqual(allowed, ok(allowed));
  const denied = await verdicts(direct(client, other));
  assert.deepEqual(denied.filter((l) => l.includes(': ok')), [], 'the policy is in force: app=other is not allowed');
  // The client's policy is egress only: other pods still reach the Services.
  const unselected = await verdicts(viaService(other, local));
  assert.deepEqual(unselected, ok(unselected));
});

test('egress to a Service is judged against the backend it reaches: the client reaches both Services of the servers under the same policy', async () => {
  const seen = await verdicts([...viaService(client, local), ...viaService(client, remote)]);
  assert.deepEqual(seen, ok(seen));
});

test('a Service whose backend the policy does not allow is denied, on either node, though the servers\' Services are reached', async () => {
  const others = await createService(cluster, { namespace: NAMESPACE, name: 'others', selector: { app: 'other' }, port: SERVICE_PORT, targetPort: TARGET_PORT });
  assert.deepEqual(others.endpoints, [other.ip]);
  const denied = await verdicts(viaService(client, others));
  assert.deepEqual(denied.filter((l) => l.includes(': ok')), [], 'app=other behind a Service is still app=other');
  // Not selected by the policy, a pod reaches it.
  const unselected = await verdicts(viaService(localServer, others));
  assert.deepEqual(unselected, ok(unselected));
});

test('an egress ipBlock of 0.0.0.0/0 except the pod network does not open Services: their backends are pods', async () => {
  const networking = cluster.kubeconfig.makeApiClient(NetworkingV1Api);
  const podCidr = '10.200.0.0/16'; // every pod address of this cluster (cluster.ts: 10.200.i.0/24)
  const policy: V1NetworkPolicy = {
    metadata: { name: 'other-to-world', namespace: NAMESPACE },
    spec: {
      podSelector: { matchLabels: { app: 'other' } },
      policyTypes: ['Egress'],
      egress: [{ to: [{ ipBlock: { cidr: '0.0.0.0/0', except: [podCidr] } }] }],
    },
  } as V1NetworkPolicy;
  assert.ok(!local.clusterIP.startsWith('10.200.') && !remote.clusterIP.startsWith('10.200.'), 'the ClusterIPs lie outside the except: judged as the ClusterIP, the connection would be allowed');
  const created = await networking.createNamespacedNetworkPolicy({ namespace: NAMESPACE, body: policy });
  await enforcedEverywhere(cluster, 'NetworkPolicy', created.metadata?.resourceVersion);
  const seen = await verdicts([...viaService(other, local), ...viaService(other, remote)]);
  assert.deepEqual(seen.filter((l) => l.includes(': ok')), []);
});

test('Cluster.stop() ends kube-proxy and leaves none of its rules or namespaces behind', async () => {
  const proxies = cluster.nodes.map((n) => n.kubeProxy!);
  await cluster.stop();
  for (const proxy of proxies) assert.ok(await exited(proxy), `${proxy.name} has exited`);
  const left = await execa('pgrep', ['-f', `${cluster.runDir}/node-`], { reject: false });
  assert.equal(String(left.stdout).trim(), '', 'no process of the run is left');
  assert.deepEqual((await listNetns()).filter((n) => n.startsWith(`${cluster.runId}-`)), []);
  // The root namespace never had kube-proxy's rules: they lived in the nodes' namespaces.
  const root = await execa('iptables-nft-save', [], { reject: false });
  assert.deepEqual(String(root.stdout).split('\n').filter((l) => l.includes('KUBE-')), []);
});
