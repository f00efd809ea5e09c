// The XDP prefilter through the whole agent (ADR 0013) on the stand-in
// cluster: a PalisadeClusterNetworkPolicy selecting every pod that denies an
// external host's range makes the node's agent attach pal_prefilter to its
// uplink (the underlay veth holding its InternalIP); the host's connections
// to a pod are dropped there and `kubectl palisade observe` shows them as
// DROP_PREFILTER naming the policy's deny rule, while another host still
// connects and the pod still reaches the denied host (replies pass, through
// masquerading). Deleting the policy detaches the program and lets the host
// in again. The cluster, its world and its hosts are removed at the end.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { CustomObjectsApi } from '@kubernetes/client-node';
import { execa } from 'execa';
import { startCluster, type Cluster } from '../cluster/cluster.ts';
import type { SimPod } from '../cluster/kubelet.ts';
import { probeAll, type ProbeRequest } from '../cluster/probe.ts';
import { createNamespace, startPods } from '../cluster/workload.ts';
import type { ExternalHost } from '../cluster/world.ts';
import type { Flow } from '../../lib/flow.ts';
import { deletionVersion, EnforcementTracker } from '../scenario/enforcement.ts';
import { PLUGIN } from '../scenario/observe.ts';

const GROUP = { group: 'palisade.io', version: 'v1alpha1', plural: 'palisadeclusternetworkpolicies' };

describe('the XDP prefilter in the agent', { timeout: 180_000 }, () => {
  let cluster: Cluster;
  let denied: ExternalHost;
  let other: ExternalHost;
  let pod: SimPod;
  const enforcement = new EnforcementTracker();

  before(async () => {
    cluster = await startCluster({ nodes: 1 });
    [denied, other] = (await cluster.world.addHosts([{ name: 'denied', ip: '203.0.113.10' }, { name: 'other', ip: '198.51.100.20' }])) as [ExternalHost, ExternalHost];
    enforcement.note('Namespace', await createNamespace(cluster, 'x', { 'kubernetes.io/metadata.name': 'x' }));
    [pod] = (await startPods(cluster, [{ namespace: 'x', name: 'a', labels: { pod: 'a' } }])) as [SimPod];
    enforcement.note('Pod', pod.resourceVersion);
  });
  after(async () => {
    await cluster?.stop();
  });

  const node = () => cluster.nodes[0]!;
  const uplinkXdp = async () => {
    const links = JSON.parse(String((await execa('ip', ['-n', node().netns, '-j', '-d', 'link', 'show'])).stdout)) as Array<{ ifname: string; xdp?: { prog?: { name: string } }; addr_info?: unknown }>;
    return links.filter((l) => l.xdp?.prog?.name === 'pal_prefilter').map((l) => l.ifname);
  };
  const verdicts = async (requests: ProbeRequest[]) => (await probeAll(requests, 1000)).map((o) => o.verdict);
  const policy = {
    apiVersion: 'palisade.io/v1alpha1',
    kind: 'PalisadeClusterNetworkPolicy',
    metadata: { name: 'deny-doc-net' },
    spec: { endpointSelector: {}, ingressDeny: [{ fromCIDR: ['203.0.113.0/24'] }], enableDefaultDeny: { ingress: false, egress: false } },
  };

  it('is not attached while no rule qualifies', async () => {
    await enforcement.wait(cluster.kubeconfig, [node().name], 30_000);
    assert.deepEqual(await uplinkXdp(), []);
  });

  it('attached by a cluster-wide CIDR deny: the denied host is dropped at the uplink and the flow names the rule', async () => {
    const api = cluster.kubeconfig.makeApiClient(CustomObjectsApi);
    const written = (await api.createClusterCustomObject({ ...GROUP, body: policy })) as { metadata: { resourceVersion: string } };
    enforcement.note('PalisadeClusterNetworkPolicy', written.metadata.resourceVersion);
    await enforcement.wait(cluster.kubeconfig, [node().name], 30_000);
    assert.deepEqual(await uplinkXdp(), ['eth0'], 'on the underlay veth that holds the InternalIP');
    const requests: ProbeRequest[] = [
      { from: denied, to: pod, port: 80, protocol: 'TCP' },
      { from: denied, to: pod, port: 80, protocol: 'UDP' },
      { from: other, to: pod, port: 80, protocol: 'TCP' },
      { from: pod, to: { ip: denied.ip }, port: 443, protocol: 'TCP' },
    ];
    assert.deepEqual(await verdicts(requests), ['fail', 'fail', 'ok', 'ok']);
    // The drop, as users see it.
    const deadline = Date.now() + 15_000;
    for (;;) {
      const r = await execa(PLUGIN, ['observe', '-A', '--to-pod', 'x/a', '--ip', denied.ip, '--since', '60s', '-o', 'json'], { env: { KUBECONFIG: cluster.controlPlane.adminKubeconfig }, reject: false });
      const flows = String(r.stdout).split('\n').filter(Boolean).map((line) => JSON.parse(line) as Flow);
      const drop = flows.find((f) => f.reason === 'DROP_PREFILTER');
      if (drop) {
        assert.deepEqual([drop.verdict, drop.direction, drop.source.ip, drop.destination.ip, drop.endpoint], ['dropped', 'ingress', denied.ip, pod.ip, { namespace: 'x', name: 'a' }]);
        assert.deepEqual(drop.rule, { kind: 'PalisadeClusterNetworkPolicy', name: 'deny-doc-net', direction: 'ingress', index: 0, deny: true });
        assert.ok(!flows.some((f) => f.reason === 'DROP_POLICY_DENY'), 'nothing of the denied host reached the pod\'s tc programs');
        break;
      }
      assert.ok(Date.now() < deadline, `no DROP_PREFILTER flow to x/a from ${denied.ip} (exit ${r.exitCode}: ${String(r.stderr).trim()}; flows: ${flows.map((f) => f.reason).join(', ')})`);
      await sleep(250);
    }
  });

  it('detached when the policy goes, and the host connects again', async () => {
    const api = cluster.kubeconfig.makeApiClient(CustomObjectsApi);
    const current = (await api.getClusterCustomObject({ ...GROUP, name: policy.metadata.name })) as { metadata: { name: string; resourceVersion: string } };
    const rv = await deletionVersion(cluster.kubeconfig, `/apis/palisade.io/v1alpha1/${GROUP.plural}`, current, () => api.deleteClusterCustomObject({ ...GROUP, name: policy.metadata.name }));
    enforcement.note('PalisadeClusterNetworkPolicy', rv);
    await enforcement.wait(cluster.kubeconfig, [node().name], 30_000);
    assert.deepEqual(await uplinkXdp(), []);
    assert.deepEqual(await verdicts([{ from: denied, to: pod, port: 80, protocol: 'TCP' }]), ['ok']);
  });
});
