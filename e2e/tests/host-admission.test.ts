// The agent's --host-reaches-pods (README, "Enforcement semantics worth
// knowing"): by default the node's own traffic to its pods is admitted
// whatever their ingress policy (kubelet probes); with `false` it is judged
// by the policy like any peer's. One single-node cluster per setting, a pod
// whose ingress is denied by a policy, probed from the node's network
// namespace; then the policy also admits the node's address as an ipBlock.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { NetworkingV1Api, type V1NetworkPolicy } from '@kubernetes/client-node';
import { startCluster, type Cluster } from '../cluster/cluster.ts';
import type { SimPod } from '../cluster/kubelet.ts';
import { probeAll } from '../cluster/probe.ts';
import { createNamespace, startPods } from '../cluster/workload.ts';
import { EnforcementTracker } from '../scenario/enforcement.ts';

const NAMESPACE = 'host';

for (const hostReachesPods of [true, false]) {
  describe(`--host-reaches-pods ${hostReachesPods}`, () => {
    let cluster: Cluster;
    let pod: SimPod;
    let other: SimPod;
    const tracker = new EnforcementTracker();

    const apply = async (body: V1NetworkPolicy) => {
      const created = await cluster.kubeconfig.makeApiClient(NetworkingV1Api).createNamespacedNetworkPolicy({ namespace: NAMESPACE, body });
      tracker.note('NetworkPolicy', created.metadata?.resourceVersion);
      await tracker.wait(cluster.kubeconfig, cluster.nodes.map((n) => n.name), 30_000);
    };
    /** Node -> pod and other pod -> pod on TCP 80. */
    const probe = async () =>
      (await probeAll([
        { from: { netns: cluster.nodes[0]!.netns }, to: pod, port: 80, protocol: 'TCP' },
        { from: other, to: pod, port: 80, protocol: 'TCP' },
      ])).map((o) => o.verdict);

    before(async () => {
      cluster = await startCluster({ nodes: 1, agentArgs: hostReachesPods ? [] : ['--host-reaches-pods', 'false'] });
      tracker.note('Namespace', await createNamespace(cluster, NAMESPACE, { 'kubernetes.io/metadata.name': NAMESPACE }));
      [pod, other] = (await startPods(cluster, [
        { namespace: NAMESPACE, name: 'p', labels: { pod: 'p' } },
        { namespace: NAMESPACE, name: 'other', labels: { pod: 'other' } },
      ])) as [SimPod, SimPod];
      for (const p of [pod, other]) tracker.note('Pod', p.resourceVersion);
      await tracker.wait(cluster.kubeconfig, cluster.nodes.map((n) => n.name), 30_000);
    });

    after(async () => {
      await cluster?.stop();
    });

    test(`a pod whose ingress allows nothing: the node ${hostReachesPods ? 'still reaches it' : 'does not reach it either'}`, async () => {
      assert.deepEqual(await probe(), ['ok', 'ok'], 'without a policy both reach the pod');
      await apply({ metadata: { name: 'deny-p' }, spec: { podSelector: { matchLabels: { pod: 'p' } }, policyTypes: ['Ingress'] } });
      assert.deepEqual(await probe(), [hostReachesPods ? 'ok' : 'fail', 'fail']);
    });

    test('a policy admitting the node’s address (ipBlock /32): the node reaches the pod, other pods still do not', async () => {
      const address = cluster.nodes[0]!.address;
      await apply({
        metadata: { name: 'p-from-node' },
        spec: { podSelector: { matchLabels: { pod: 'p' } }, policyTypes: ['Ingress'], ingress: [{ _from: [{ ipBlock: { cidr: `${address}/32` } }] }] },
      } as V1NetworkPolicy);
      assert.deepEqual(await probe(), ['ok', 'fail']);
    });
  });
}
