// The agent's --ct-max-per-endpoint reaches the datapath (pal_ct_endpoint_max,
// ADR 0003): a pod may hold that many conntrack entries and no more, so one
// pod opening connections fast cannot take the node's whole shared table;
// its own new connections are refused (DROP_CT_FULL) and no one else's.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startCluster, type Cluster } from '../cluster/cluster.ts';
import type { SimPod } from '../cluster/kubelet.ts';
import { probeAll } from '../cluster/probe.ts';
import { createNamespace, startPods } from '../cluster/workload.ts';
import { EnforcementTracker } from '../scenario/enforcement.ts';

const NAMESPACE = 'ct';
const CAP = 4;

let cluster: Cluster;
let greedy: SimPod;
let server: SimPod;
let bystander: SimPod;
let otherServer: SimPod;

before(async () => {
  cluster = await startCluster({ nodes: 1, agentArgs: ['--ct-max-per-endpoint', String(CAP)] });
  const tracker = new EnforcementTracker();
  tracker.note('Namespace', await createNamespace(cluster, NAMESPACE, { 'kubernetes.io/metadata.name': NAMESPACE }));
  [greedy, server, bystander, otherServer] = (await startPods(
    cluster,
    ['greedy', 'server', 'bystander', 'other-server'].map((name) => ({ namespace: NAMESPACE, name, labels: { pod: name } })),
  )) as [SimPod, SimPod, SimPod, SimPod];
  for (const pod of [greedy, server, bystander, otherServer]) tracker.note('Pod', pod.resourceVersion);
  await tracker.wait(cluster.kubeconfig, cluster.nodes.map((n) => n.name));
});

after(async () => {
  await cluster?.stop();
});

test('a pod holds at most --ct-max-per-endpoint connections; beyond, its own new ones fail and the others are untouched', async () => {
  // One at a time, so that each probe is a new connection of its own (entries stay until collected).
  const outcomes: string[] = [];
  for (let i = 0; i < CAP + 3; i++) outcomes.push((await probeAll([{ from: greedy, to: server, port: 80, protocol: 'UDP' }], 500))[0]!.verdict);
  assert.deepEqual(outcomes.slice(0, CAP), Array(CAP).fill('ok'), 'the first connections open');
  assert.deepEqual(outcomes.slice(CAP), ['fail', 'fail', 'fail'], 'beyond the cap they are refused');
  // The server holds one entry per connection it accepted, so it is at its cap too: another pair is untouched.
  const [other] = await probeAll([{ from: bystander, to: otherServer, port: 80, protocol: 'UDP' }], 500);
  assert.equal(other!.verdict, 'ok', 'other pods still open connections');
  const [toFull] = await probeAll([{ from: bystander, to: server, port: 80, protocol: 'UDP' }], 500);
  assert.equal(toFull!.verdict, 'fail', 'a pod at its cap accepts no new connection either');
});
