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
import { IMAGES, podNetnsPath, readyCondition, startRealCluster, sweepDeadRealRuns, type RealCluster } from './real-cluster.ts';

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
    // A killed earlier run's changes are undone first, so that "before" means the machine's own state.
    await sweepDeadRealRuns();
    sysctlsBefore = await sysctls();
    pathsBefore = await defaultPaths();
    const t = performance.now();
    cluster = await startRealCluster({ nodes: 2 });
    const { timings } = cluster;
    console.log(`cluster start: ${ms(t)} ms (images ${timings.images}; control plane ${timings.controlPlane}; then ` +
      `controller-manager and scheduler leading ${timings.controllers}, 2 nodes registered with pod CIDRs ${timings.nodes})`);
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
    // The nodes' mounts (overlays and binds of the run directory, bpffs, tmpfs) stay in their namespaces.
    const mounts = (await readFile('/proc/mounts', 'utf8')).split('\n');
    assert.deepEqual(mounts.filter((l) => l.includes(cluster!.runDir) || / (bpf|overlay) /.test(l) && !l.includes('/.cache/')), []);
  });

  it('nodes turn Ready once a CNI configuration is installed', async () => {
    const { core, nodes } = cluster!;
    const t = performance.now();
    await installBridgeCni(nodes);
    await Promise.all(nodes.map((node) => waitFor(`${node.name} Ready`, async () => {
      assert.equal(readyCondition(await core.readNode({ name: node.name }))?.status, 'True');
      console.log(`${node.name} Ready ${ms(t)} ms after its CNI configuration was written`);
    }, { timeoutMs: 60_000, intervalMs: 100 })));
    assert.equal((await nodes[0]!.exec(['ls', '/etc/cni/net.d'])).trim(), '10-bridge.conflist');
  });

  it('a pod runs on each node and they reach each other, the API server and a hostNetwork pod; logs and exec work', async () => {
    const { core, nodes, kubectl } = cluster!;
    const namespace = 'real-nodes';
    await core.createNamespace({ body: { metadata: { name: namespace } } });
    // Admission wants the namespace's default ServiceAccount, which a controller makes.
    await waitFor('default ServiceAccount', () => core.readNamespacedServiceAccount({ namespace, name: 'default' }), { timeoutMs: 30_000 });
    const echo = { name: 'echo', image: IMAGES.testpod, imagePullPolicy: 'Never' };
    const specs = [
      ...nodes.map((node) => ({ name: `pod-${node.index}`, spec: { nodeSelector: { 'kubernetes.io/hostname': node.name }, containers: [echo] } })),
      // As the Palisade agent runs: the node's network, and the node's bpffs and pod
      // namespaces mounted HostToContainer (which needs them shared or slave on the node).
      {
        name: 'host-1',
        spec: {
          nodeSelector: { 'kubernetes.io/hostname': nodes[0]!.name },
          hostNetwork: true,
          containers: [{
            ...echo, command: ['/usr/local/bin/palisade-podserver', '8080'],
            volumeMounts: [{ name: 'bpffs', mountPath: '/sys/fs/bpf', mountPropagation: 'HostToContainer' }, { name: 'netns', mountPath: '/run/netns', mountPropagation: 'HostToContainer' }],
          }],
          volumes: [{ name: 'bpffs', hostPath: { path: '/sys/fs/bpf', type: 'Directory' } }, { name: 'netns', hostPath: { path: '/run/netns', type: 'DirectoryOrCreate' } }],
        },
      },
    ];
    const t = performance.now();
    await Promise.all(specs.map(({ name, spec }) => core.createNamespacedPod({ namespace, body: { metadata: { name }, spec } })));
    const pods = new Map<string, V1Pod>();
    await Promise.all(specs.map(({ name }) => waitFor(`${name} Running`, async () => {
      const pod = await core.readNamespacedPod({ namespace, name });
      assert.equal(pod.status?.phase, 'Running', JSON.stringify(pod.status?.containerStatuses ?? pod.status?.conditions));
      console.log(`${name} on ${pod.spec?.nodeName}: Running ${ms(t)} ms after its creation, IP ${pod.status?.podIP}`);
      pods.set(name, pod);
    }, { timeoutMs: 60_000, intervalMs: 100 })));
    assert.deepEqual(['pod-1', 'pod-2'].map((p) => pods.get(p)?.spec?.nodeName), nodes.map((n) => n.name));
    assert.equal(pods.get('host-1')?.status?.podIP, nodes[0]!.address);

    // From inside each pod's network namespace, with the project's prober: the other
    // pod; the API server through the kubernetes Service (kube-proxy's DNAT, the
    // underlay's route back); the hostNetwork pod on node-1's address.
    const [a, b] = [pods.get('pod-1')!, pods.get('pod-2')!];
    const [netnsA, netnsB] = [await podNetnsPath(cluster!, a), await podNetnsPath(cluster!, b)];
    const input = [
      `a-to-b ${netnsA} tcp ${b.status!.podIP} 80`,
      `b-to-a ${netnsB} tcp ${a.status!.podIP} 80`,
      `a-to-api ${netnsA} tcp 10.96.0.1 443`,
      `b-to-api ${netnsB} tcp 10.96.0.1 443`,
      `b-to-host-1 ${netnsB} tcp ${nodes[0]!.address} 8080`,
    ].join('\n');
    const { stdout } = await execa(programs.prober, ['--timeout-ms', '3000'], { input });
    assert.equal(String(stdout), 'a-to-b ok\nb-to-a ok\na-to-api ok\nb-to-api ok\nb-to-host-1 ok');

    // Through the API server to the kubelets' API (client certificate, webhook authorization).
    assert.match(String((await kubectl(['-n', namespace, 'logs', 'pod-1'])).stdout), /ready/);
    await kubectl(['-n', namespace, 'exec', '-i', 'pod-2', '--', '/usr/local/bin/palisade-prober'], { input: '' });
  });

  it('stop leaves nothing behind', async () => {
    const t = performance.now();
    await cluster!.stop();
    console.log(`cluster stop: ${ms(t)} ms`);
    await assertNothingLeft(cluster!.runId, { sysctls: sysctlsBefore, paths: pathsBefore });
  });
});

describe('real nodes: a start that fails half-way', { timeout: 120_000 }, () => {
  it('leaves nothing behind either', async () => {
    const before = { sysctls: await sysctls(), paths: await defaultPaths() };
    // The kubelet refuses this machine's cgroup v1 and exits: by then the node's namespaces,
    // mounts, cgroups, containerd and its images exist, and the controllers run.
    const start = startRealCluster({ nodes: 1, kubeletConfig: { failCgroupV1: true } });
    await assert.rejects(start.then((cluster) => cluster.stop()), /kubelet node-1 exited/);
    await assertNothingLeft(`pal-${process.pid}-`, before);
  });
});

/** No namespace, mount, process, cgroup or directory whose name starts with `prefix`; sysctls and the components' default paths as before. */
async function assertNothingLeft(prefix: string, before: { sysctls: string[]; paths: string[] }): Promise<void> {
  assert.deepEqual((await listNetns()).filter((n) => n.startsWith(prefix)), []);
  assert.deepEqual((await readFile('/proc/mounts', 'utf8')).split('\n').filter((l) => l.includes(prefix)), []);
  assert.deepEqual(await processesOf(prefix), []);
  // Every process of a node ran in its cgroups (containerd, shims, pods, the namespace
  // holder): no cgroup left means none of them is either.
  for (const mount of await cgroupMounts()) {
    assert.deepEqual((await readdir(mount)).filter((name) => name.startsWith(prefix)), [], `cgroups left in ${mount}`);
  }
  assert.deepEqual((await readdir(tmpdir())).filter((name) => name.startsWith(prefix)), [], 'run directory removed');
  assert.deepEqual(await sysctls(), before.sysctls);
  assert.deepEqual(await defaultPaths(), before.paths);
}
