// A node whose policy sync cannot complete must never let a pod run
// unenforced (issue 7, item 1). Two real failures on a one-node cluster:
//
// - An address the datapath cannot encode (an IPv6 pod address) used to
//   make every sync throw, forever; CNI ADD still succeeded and the new pod
//   passed everything. Now the address is skipped and reported, and new pods
//   get their policy.
// - The node's libbpf loader dies: no sync can write any more. The node says
//   so (PalisadeNode Ready False with the reason, a Warning event), new pods
//   are refused by CNI ADD, and the pinned maps keep enforcing the last good
//   state. Then the agent exits, so that its supervisor starts a fresh one;
//   started again, it picks the pins up and the node is Ready again.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { CoreV1Api, NetworkingV1Api } from '@kubernetes/client-node';
import { execa } from 'execa';
import { enforcedEverywhere, readyCondition } from '../cluster/node-status.ts';
import { startCluster, type Cluster } from '../cluster/cluster.ts';
import type { SimPod } from '../cluster/kubelet.ts';
import { probeAll } from '../cluster/probe.ts';
import { createNamespace, startPods } from '../cluster/workload.ts';

const LOCKED = 'locked'; // deny-all, both directions
const OPEN = 'open'; // no policy

let cluster: Cluster;
let outsider: SimPod; // open/e

async function eventually<T>(what: string, read: () => Promise<T>, ok: (value: T) => boolean, timeoutMs = 10_000): Promise<T> {
  let value = await read();
  for (const deadline = Date.now() + timeoutMs; !ok(value); value = await read()) {
    if (Date.now() > deadline) assert.fail(`${what}: still ${JSON.stringify(value)} after ${timeoutMs} ms`);
    await sleep(100);
  }
  return value;
}

async function verdicts(pairs: Array<[SimPod, SimPod]>): Promise<string[]> {
  const outcomes = await probeAll(pairs.map(([from, to]) => ({ from, to, port: 80, protocol: 'TCP' as const })), 300);
  return outcomes.map((o) => o.verdict);
}

before(async () => {
  cluster = await startCluster({ nodes: 1 });
  for (const name of [LOCKED, OPEN]) await enforcedEverywhere(cluster, 'Namespace', await createNamespace(cluster, name, { 'kubernetes.io/metadata.name': name }));
  const policy = await cluster.kubeconfig.makeApiClient(NetworkingV1Api).createNamespacedNetworkPolicy({
    namespace: LOCKED,
    body: { metadata: { name: 'deny-all' }, spec: { podSelector: {}, policyTypes: ['Ingress', 'Egress'] } },
  });
  await enforcedEverywhere(cluster, 'NetworkPolicy', policy.metadata?.resourceVersion);
  outsider = (await startPods(cluster, [{ namespace: OPEN, name: 'e', labels: { pod: 'e' } }]))[0]!;
});

after(async () => {
  await cluster?.stop();
});

test('an IPv6 pod address elsewhere in the cluster is skipped and reported, and a new pod still gets its policy before ADD returns', async () => {
  // A pod the datapath cannot encode: its only address is IPv6.
  const core = cluster.kubeconfig.makeApiClient(CoreV1Api);
  const pod = await core.createNamespacedPod({
    namespace: OPEN,
    body: { metadata: { name: 'v6' }, spec: { containers: [{ name: 'c', image: 'palisade.local/podserver' }] } },
  });
  const withIp = await core.replaceNamespacedPodStatus({
    namespace: OPEN,
    name: 'v6',
    body: { ...pod, status: { phase: 'Running', podIP: 'fd00::12', podIPs: [{ ip: 'fd00::12' }] } },
  });
  await enforcedEverywhere(cluster, 'Pod', withIp.metadata?.resourceVersion);

  // Before the fix this ADD succeeded with no policy in the kernel: d reached e and e reached d.
  const [locked] = await startPods(cluster, [{ namespace: LOCKED, name: 'd', labels: { pod: 'd' } }]);
  assert.deepEqual(await verdicts([[locked!, outsider], [outsider, locked!]]), ['fail', 'fail'], 'd is under deny-all from its first packet');
  assert.deepEqual(await verdicts([[outsider, outsider]]), ['ok'], 'the probe itself works');

  const ready = await readyCondition(cluster, cluster.nodes[0]!.name);
  assert.match(ready.message, /addresses left out of the ipcache \(not IPv4, or the map is full\), judged as world: fd00::12/);
});

test('when the loader dies, the node reports Ready False with the reason and an event, refuses new pods, and keeps enforcing', async () => {
  const node = cluster.nodes[0]!;
  const before = await verdicts([[outsider, cluster.pods.get(`${LOCKED}/d`)!]]);
  assert.deepEqual(before, ['fail']);

  const loader = await execa('pgrep', ['-g', String(node.agent.pid), '-f', 'palisade-loader']);
  const pid = String(loader.stdout).trim().split('\n')[0]!;
  assert.match(pid, /^\d+$/, 'the agent has a loader process');
  await execa('kill', ['-KILL', pid]);

  const ready = await eventually('PalisadeNode Ready', () => readyCondition(cluster, cluster.nodes[0]!.name), (r) => r.status === 'False' && /policy sync failed/.test(r.message));
  assert.match(ready.message, /policy sync failed, retrying: .*loader/);

  const core = cluster.kubeconfig.makeApiClient(CoreV1Api);
  const events = await eventually(
    'PolicySyncFailed event',
    async () => (await core.listNamespacedEvent({ namespace: 'default', fieldSelector: `involvedObject.kind=PalisadeNode,involvedObject.name=${node.name}` })).items,
    (items) => items.some((e) => e.reason === 'PolicySyncFailed'),
  );
  const event = events.find((e) => e.reason === 'PolicySyncFailed')!;
  assert.equal(event.type, 'Warning');
  assert.match(event.message ?? '', new RegExp(`node ${node.name}: policy sync failed`));

  await assert.rejects(startPods(cluster, [{ namespace: OPEN, name: 'f', labels: { pod: 'f' } }]), /CNI ADD for pod open\/f failed/);
  assert.deepEqual(await verdicts([[outsider, cluster.pods.get(`${LOCKED}/d`)!], [cluster.pods.get(`${LOCKED}/d`)!, outsider]]), ['fail', 'fail'], 'the pinned maps keep enforcing');
});

test('an agent whose loader died exits for its supervisor, and the agent started again takes the pins over', async () => {
  const node = cluster.nodes[0]!;
  const exit = await Promise.race([node.agent.exited, sleep(15_000).then(() => undefined)]);
  assert.deepEqual(exit, { exitCode: 1, signal: undefined }, 'the agent exits with an error');
  assert.deepEqual(await verdicts([[outsider, cluster.pods.get(`${LOCKED}/d`)!]]), ['fail'], 'enforcement goes on while no agent runs');

  await node.startAgent();
  await eventually('PalisadeNode Ready', () => readyCondition(cluster, cluster.nodes[0]!.name), (r) => r.status === 'True' || /addresses left out/.test(r.message));
  const [fresh] = await startPods(cluster, [{ namespace: LOCKED, name: 'g', labels: { pod: 'g' } }]);
  assert.deepEqual(await verdicts([[fresh!, outsider], [outsider, fresh!]]), ['fail', 'fail'], 'a pod wired by the new agent is enforced from its first packet');
  assert.deepEqual(await verdicts([[outsider, outsider]]), ['ok']);
});
