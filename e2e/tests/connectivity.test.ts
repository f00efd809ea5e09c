// With no policy at all, every pod reaches every other pod, on one node and
// across nodes, on TCP and UDP, and reaches its own node.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { execa } from 'execa';
import { startCluster, type Cluster } from '../cluster/cluster.ts';
import type { SimPod } from '../cluster/kubelet.ts';
import { probeAll, type Protocol } from '../cluster/probe.ts';
import { startProcess } from '../cluster/processes.ts';
import { programs } from '../cluster/paths.ts';
import { createNamespace, startPods } from '../cluster/workload.ts';

let cluster: Cluster;
let pods: SimPod[];

before(async () => {
  cluster = await startCluster({ nodes: 2 });
  const namespaces = ['x', 'y', 'z'];
  for (const ns of namespaces) await createNamespace(cluster, ns, { 'kubernetes.io/metadata.name': ns, ns });
  pods = await startPods(
    cluster,
    namespaces.flatMap((namespace) => ['a', 'b', 'c'].map((name) => ({ namespace, name, labels: { pod: name } }))),
  );
});

after(async () => {
  await cluster?.stop();
});

test('kubectl lists the simulated nodes with their pod CIDRs', async () => {
  const out = await execa('kubectl', ['--kubeconfig', cluster.controlPlane.adminKubeconfig, 'get', 'nodes', '-o', 'jsonpath={range .items[*]}{.metadata.name}={.spec.podCIDR} {end}']);
  assert.equal(String(out.stdout).trim(), cluster.nodes.map((n) => `${n.name}=${n.podCidr}`).join(' '));
});

test('pods are spread over both nodes, with addresses from their node pod CIDR', () => {
  for (const node of cluster.nodes) {
    const onNode = pods.filter((p) => p.node === node);
    assert.ok(onNode.length >= 4, `${node.name} has ${onNode.length} pods`);
    const prefix = node.podCidr.split('.').slice(0, 3).join('.');
    for (const pod of onNode) assert.ok(pod.ip.startsWith(`${prefix}.`), `${pod.ip} not in ${node.podCidr}`);
  }
});

test('the Pod objects report the pod IP and the Running phase', async () => {
  const list = await cluster.core.listPodForAllNamespaces();
  const byName = new Map(list.items.map((p) => [`${p.metadata!.namespace}/${p.metadata!.name}`, p]));
  for (const pod of pods) {
    const object = byName.get(`${pod.namespace}/${pod.name}`);
    assert.equal(object?.status?.podIP, pod.ip);
    assert.equal(object?.status?.phase, 'Running');
    assert.equal(object?.spec?.nodeName, pod.node.name);
  }
});

for (const [protocol, port] of [['TCP', 80], ['UDP', 81], ['TCP', 81], ['UDP', 80]] as Array<[Protocol, number]>) {
  test(`full ${protocol}/${port} matrix is reachable across two nodes`, async () => {
    const requests = pods.flatMap((from) => pods.filter((to) => to !== from).map((to) => ({ from, to, port, protocol })));
    const outcomes = await probeAll(requests);
    const failed = requests
      .map((r, i) => ({ r, o: outcomes[i]! }))
      .filter(({ o }) => o.verdict !== 'ok')
      .map(({ r, o }) => `${r.from.namespace}/${r.from.name} -> ${(r.to as SimPod).namespace}/${(r.to as SimPod).name}: ${JSON.stringify(o)}`);
    assert.deepEqual(failed, []);
  });
}

test('a closed port is refused, not silently passed', async () => {
  const [from, to] = [pods[0]!, pods[1]!];
  const [outcome] = await probeAll([{ from, to, port: 82, protocol: 'TCP' }]);
  assert.deepEqual(outcome, { verdict: 'fail', reason: 'ECONNREFUSED' });
});

test('every pod reaches its own node', async () => {
  // A host-network server on each node, as a node-local service would be.
  const servers = await Promise.all(
    cluster.nodes.map((node) =>
      startProcess({ name: `host server ${node.name}`, command: programs.podserver, args: ['9080'], netns: node.netns, logFile: `${cluster.runDir}/${node.name}-host-server.log`, readyLine: /^ready/ }),
    ),
  );
  try {
    const requests = pods.map((from) => ({ from, to: { ip: from.node.address }, port: 9080, protocol: 'TCP' as const }));
    const outcomes = await probeAll(requests);
    assert.deepEqual(outcomes.filter((o) => o.verdict !== 'ok'), []);
  } finally {
    await Promise.all(servers.map((s) => s.stop()));
  }
});

