// A two-node cluster of real nodes (real-cluster.ts): the nodes register
// NotReady for want of a CNI configuration, turn Ready once one is installed
// (here the reference bridge plugin, bridge-cni.ts: this test is about the
// nodes, not Palisade), run a pod each from the locally built test image, and
// those pods reach each other; kubectl logs and exec work through the
// kubelets' authenticated API. Stopping leaves no namespace, mount, process,
// cgroup or run directory behind, and the kubelet's sysctls as they were.
//
// Prints the figures issue 9 asks for: cluster start (by phase), node Ready
// after the CNI configuration appears, pod creation to Running.
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { after, before, describe, it } from 'node:test';
import type { V1Pod } from '@kubernetes/client-node';
import { execa } from 'execa';
import { installBridgeCni } from './bridge-cni.ts';
import { cgroupMounts } from './cgroups.ts';
import { KUBELET_SYSCTLS } from './host-sysctls.ts';
import { listNetns } from './netns.ts';
import { programs } from './paths.ts';
import { waitFor } from './processes.ts';
import { IMAGES, podNetnsPath, readyCondition, startRealCluster, type RealCluster } from './real-cluster.ts';

const sysctls = () => Promise.all(KUBELET_SYSCTLS.map((k) => readFile(`/proc/sys/${k}`, 'utf8')));
/** Where the components keep things by default: none of them may appear on the machine (or change, if there). */
const DEFAULT_PATHS = ['/var/lib/kubelet', '/var/lib/containerd', '/run/containerd', '/opt/containerd', '/opt/cni', '/var/lib/cni',
  '/etc/cni/net.d', '/var/log/containers', '/var/log/pods', '/etc/kubernetes', '/usr/libexec/kubernetes', '/run/nri', '/sys/fs/bpf'];
const defaultPaths = () => Promise.all(DEFAULT_PATHS.map((p) => readdir(p).then((entries) => `${p}: ${entries.sort().join(' ')}`, () => `${p}: absent`)));
const ms = (t: number) => Math.round(performance.now() - t);
/** Lines of `ps` naming the run (its directory is on every daemon's command line). */
async function processesOf(runId: string): Promise<string[]> {
  const { stdout } = await execa('ps', ['-eo', 'pid,args']);
  return String(stdout).split('\n').filter((line) => line.includes(runId) && !line.includes(' ps -eo'));
}

describe('real nodes', { timeout: 240_000 }, () => {
  let cluster: RealCluster | undefined;
  let sysctlsBefore: string[] = [];
  let pathsBefore: string[] = [];

  before(async () => {
    sysctlsBefore = await sysctls();
    pathsBefore = await defaultPaths();
    const t = performance.now();
    cluster = await startRealCluster({ nodes: 2 });
    const { timings } = cluster;
    console.log(`cluster start: ${ms(t)} ms (images ${timings.images}, control plane ${timings.controlPlane}, ` +
      `controller-manager and scheduler ${timings.controllers}, 2 nodes ${timings.nodes})`);
  });

  after(() => cluster?.stop());

  it('nodes register NotReady until a CNI configuration exists, each with a pod CIDR', async () => {
    const { core, nodes } = cluster!;
    for (const node of nodes) {
      await waitFor(`${node.name} NetworkPluginNotReady`, async () => {
        const object = await core.readNode({ name: node.name });
        const ready = readyCondition(object);
        assert.equal(ready?.status, 'False');
        assert.match(ready?.message ?? '', /NetworkPluginNotReady/);
        assert.ok(object.spec?.podCIDR, 'spec.podCIDR allocated');
      }, { timeoutMs: 30_000, intervalMs: 200 });
      const object = await core.readNode({ name: node.name });
      assert.deepEqual(object.status?.addresses?.find((a) => a.type === 'InternalIP')?.address, node.address);
      assert.equal(object.metadata?.labels?.['palisade.io/node-index'], String(node.index));
      assert.equal((await node.exec(['ls', '/etc/cni/net.d'])).trim(), '');
    }
  });

  it('nodes turn Ready once a CNI configuration is installed', async () => {
    const { core, nodes } = cluster!;
    const t = performance.now();
    await installBridgeCni(core, nodes);
    await Promise.all(nodes.map((node) => waitFor(`${node.name} Ready`, async () => {
      assert.equal(readyCondition(await core.readNode({ name: node.name }))?.status, 'True');
      console.log(`${node.name} Ready ${ms(t)} ms after its CNI configuration was written`);
    }, { timeoutMs: 60_000, intervalMs: 100 })));
    assert.equal((await nodes[0]!.exec(['ls', '/etc/cni/net.d'])).trim(), '10-bridge.conflist');
  });

  it('a pod runs on each node and they reach each other; logs and exec work', async () => {
    const { core, nodes, kubectl } = cluster!;
    const namespace = 'real-nodes';
    await core.createNamespace({ body: { metadata: { name: namespace } } });
    // Admission wants the namespace's default ServiceAccount, which a controller makes.
    await waitFor('default ServiceAccount', () => core.readNamespacedServiceAccount({ namespace, name: 'default' }), { timeoutMs: 30_000 });
    const t = performance.now();
    await Promise.all(nodes.map((node) => core.createNamespacedPod({
      namespace,
      body: {
        metadata: { name: `pod-${node.index}`, labels: { app: 'echo' } },
        spec: {
          nodeSelector: { 'kubernetes.io/hostname': node.name },
          containers: [{ name: 'echo', image: IMAGES.testpod, imagePullPolicy: 'Never', ports: [{ containerPort: 80 }] }],
        },
      },
    })));
    const pods: V1Pod[] = [];
    await Promise.all(nodes.map((node) => waitFor(`pod-${node.index} Running`, async () => {
      const pod = await core.readNamespacedPod({ namespace, name: `pod-${node.index}` });
      assert.equal(pod.status?.phase, 'Running', JSON.stringify(pod.status?.containerStatuses ?? pod.status?.conditions));
      console.log(`pod-${node.index} on ${pod.spec?.nodeName}: Running ${ms(t)} ms after its creation, IP ${pod.status?.podIP}`);
      pods.push(pod);
    }, { timeoutMs: 60_000, intervalMs: 100 })));
    pods.sort((a, b) => a.metadata!.name!.localeCompare(b.metadata!.name!));
    assert.deepEqual(pods.map((p) => p.spec?.nodeName), nodes.map((n) => n.name));

    // Each pod to the other, from inside its network namespace, with the project's prober.
    const [a, b] = pods as [V1Pod, V1Pod];
    const input = `a-to-b ${await podNetnsPath(cluster!, a)} tcp ${b.status!.podIP} 80\n` +
      `b-to-a ${await podNetnsPath(cluster!, b)} tcp ${a.status!.podIP} 80\n`;
    const { stdout } = await execa(programs.prober, ['--timeout-ms', '3000'], { input });
    assert.equal(String(stdout), 'a-to-b ok\nb-to-a ok');

    // Through the API server to the kubelets' API (client certificate, webhook authorization).
    assert.match(String((await kubectl(['-n', namespace, 'logs', 'pod-1'])).stdout), /ready/);
    await kubectl(['-n', namespace, 'exec', '-i', 'pod-2', '--', '/usr/local/bin/palisade-prober'], { input: '' });
  });

  it('stop leaves nothing behind', async () => {
    const { runId, runDir, nodes } = cluster!;
    const t = performance.now();
    await cluster!.stop();
    console.log(`cluster stop: ${ms(t)} ms`);
    assert.deepEqual((await listNetns()).filter((n) => n.startsWith(runId)), []);
    assert.deepEqual((await readFile('/proc/mounts', 'utf8')).split('\n').filter((l) => l.includes(runId)), []);
    assert.deepEqual(await processesOf(runId), []);
    for (const mount of await cgroupMounts()) {
      const left = (await readdir(mount)).filter((name) => name.startsWith(runId));
      assert.deepEqual(left, [], `cgroups left in ${mount}`);
    }
    assert.deepEqual((await readdir(tmpdir())).filter((name) => name.startsWith(runId)), [], `${runDir} removed`);
    assert.deepEqual(await sysctls(), sysctlsBefore);
    assert.deepEqual(await defaultPaths(), pathsBefore);
    // Each node's processes ran in its cgroup: none is left in any hierarchy (checked above), so
    // none of the pods' processes (shims, pause, servers) survived either.
    assert.equal(nodes.length, 2);
  });
});
