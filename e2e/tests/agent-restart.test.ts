// Enforcement does not depend on the agent being up: programs and maps are
// pinned, so a crashed agent leaves its node enforcing the last state, and a
// restarted agent resumes from the pinned maps without dropping a packet of
// allowed traffic, without opening denied traffic, and without rewriting
// maps that are already right.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { NetworkingV1Api, type V1NetworkPolicy } from '@kubernetes/client-node';
import { execa } from 'execa';
import { startCluster, type Cluster } from '../cluster/cluster.ts';
import type { SimPod } from '../cluster/kubelet.ts';
import { probeAll } from '../cluster/probe.ts';
import { createNamespace, startPods } from '../cluster/workload.ts';
import { EnforcementTracker } from '../scenario/enforcement.ts';

let cluster: Cluster;
let client: SimPod; // x/a on node-1: allowed to reach the server
let intruder: SimPod; // x/b on node-2: not allowed
let server: SimPod; // x/c on node-1, whose agent restarts

before(async () => {
  cluster = await startCluster({ nodes: 2 });
  const tracker = new EnforcementTracker();
  tracker.note('Namespace', await createNamespace(cluster, 'x', { 'kubernetes.io/metadata.name': 'x' }));
  const started = await startPods(cluster, ['a', 'b', 'c'].map((name) => ({ namespace: 'x', name, labels: { pod: name } })));
  [client, intruder, server] = [started[0]!, started[1]!, started[2]!];
  assert.equal(server.node, client.node);
  const policy = await cluster.kubeconfig.makeApiClient(NetworkingV1Api).createNamespacedNetworkPolicy({
    namespace: 'x',
    body: {
      metadata: { name: 'c-from-a' },
      spec: { podSelector: { matchLabels: { pod: 'c' } }, ingress: [{ _from: [{ podSelector: { matchLabels: { pod: 'a' } } }] }] },
    } as V1NetworkPolicy,
  });
  tracker.note('NetworkPolicy', policy.metadata?.resourceVersion);
  for (const pod of [client, intruder, server]) tracker.note('Pod', pod.resourceVersion);
  await tracker.wait(cluster.kubeconfig, cluster.nodes.map((n) => n.name));
});

after(async () => {
  await cluster?.stop();
});

async function verdicts(): Promise<{ allowed: string; denied: string }> {
  const [allowed, denied] = await probeAll(
    [
      { from: client, to: server, port: 80, protocol: 'TCP' },
      { from: intruder, to: server, port: 80, protocol: 'TCP' },
    ],
    300,
  );
  return { allowed: allowed!.verdict, denied: denied!.verdict };
}

async function revision(): Promise<number> {
  const out = await execa('bpftool', ['map', 'dump', 'pinned', `${server.node.bpffs}/pal_config`, '-j']);
  return (JSON.parse(String(out.stdout)) as Array<{ formatted?: { value: { policy_revision: number } }; value?: { policy_revision: number } }>).map(
    (e) => (e.formatted ?? e).value!.policy_revision,
  )[0]!;
}

test('the policy is enforced before the agent goes away', async () => {
  assert.deepEqual(await verdicts(), { allowed: 'ok', denied: 'fail' });
});

test('a crashed agent leaves the node enforcing, and its restart drops nothing and opens nothing', async () => {
  const before = await revision();
  await server.node.killAgent();
  assert.deepEqual(await verdicts(), { allowed: 'ok', denied: 'fail' }, 'while the agent is down');

  const seen: Array<{ allowed: string; denied: string }> = [];
  let restarting = true;
  const watcher = (async () => {
    while (restarting) seen.push(await verdicts());
  })();
  await server.node.startAgent();
  // Let the restarted agent resync (list, compile, diff) while the probes go on.
  await new Promise((resolve) => setTimeout(resolve, 1500));
  restarting = false;
  await watcher;

  assert.ok(seen.length >= 3, `only ${seen.length} probe rounds during the restart`);
  assert.deepEqual(seen.filter((v) => v.allowed !== 'ok' || v.denied !== 'fail'), [], 'every round during the restart');
  assert.equal(await revision(), before, 'the resync found the pinned maps right and wrote nothing');
});

test('a restart whose datapath changes a pinned map (another flow ring size) migrates it: nothing dropped, nothing opened, the old pin gone', async () => {
  const ringBytes = async () => {
    const out = await execa('bpftool', ['map', 'show', 'pinned', `${server.node.bpffs}/pal_flows`, '-j']);
    return (JSON.parse(String(out.stdout)) as { max_entries: number }).max_entries;
  };
  assert.equal(await ringBytes(), 16 << 20);
  await server.node.killAgent();
  const seen: Array<{ allowed: string; denied: string }> = [];
  let restarting = true;
  const watcher = (async () => {
    while (restarting) seen.push(await verdicts());
  })();
  await server.node.startAgent(['--flow-ring-bytes', String(1 << 20)]);
  await new Promise((resolve) => setTimeout(resolve, 1500));
  restarting = false;
  await watcher;

  assert.ok(seen.length >= 3, `only ${seen.length} probe rounds during the restart`);
  assert.deepEqual(seen.filter((v) => v.allowed !== 'ok' || v.denied !== 'fail'), [], 'every round during the restart');
  assert.equal(await ringBytes(), 1 << 20, 'the ring was made anew at its new size');
  const pins = await execa('ls', [server.node.bpffs]);
  assert.doesNotMatch(String(pins.stdout), /migrate/, 'the old pin is gone once migrated');
});
