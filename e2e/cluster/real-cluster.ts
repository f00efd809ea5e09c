// A cluster of real nodes for tests and the demo (issue 9): the stand-in
// cluster's underlay and control plane (kube-apiserver, etcd), plus
// kube-controller-manager and kube-scheduler with leader election, and N
// nodes each running containerd, runc, a real kubelet and kube-proxy in its
// own network namespace, mount namespace and cgroups (real-node.ts), and the
// world outside the cluster (world.ts: a router on the underlay that routes
// each node's pod CIDR to it, external hosts behind it).
//
// Nodes come up without a CNI configuration, so they register NotReady
// (NetworkPluginNotReady) until one is installed: by the Helm chart's agent,
// or by a test through RealNode.installCni (bridge-cni.ts is a plain
// reference CNI for that). Images come from scripts/build-images.sh (nothing
// is pulled): the pause image always, others by name; pods must use
// imagePullPolicy Never or IfNotPresent.
//
// stop() removes everything the run made, also after a failed start, in
// reverse order: nodes (every process in their cgroups, hence their mount
// namespaces and mounts; cgroups; network namespaces), controllers, control
// plane, underlay, the sysctls the kubelets changed, the run directory. A
// later run sweeps what a killed run left (its pid is gone).
//
// Use, e.g. for the Helm chart end to end:
//   const cluster = await startRealCluster({ images: ['testpod', 'palisade'] });
//   await cluster.helm(['install', 'palisade', 'helm/palisade', '-n', 'kube-system', '--wait']);
//   await cluster.kubectl(['get', 'nodes']);    // or KUBECONFIG=cluster.adminKubeconfig
//   await cluster.importImage(await imageArchive('palisade'));   // a rebuilt image, every node
//   await cluster.nodes[0].exec(['ls', '/etc/cni/net.d']);       // a command on a node
//   podNetnsPath(cluster, pod)                  // a pod's netns, for palisade-prober
//   await cluster.stop();
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CoreV1Api, KubeConfig, type V1Node, type V1Pod } from '@kubernetes/client-node';
import { execa, type Result } from 'execa';
import { listTopCgroups, removeNodeCgroups } from './cgroups.ts';
import { startControlPlane, type ControlPlane } from './control-plane.ts';
import { startControllerManager, startScheduler } from './controllers.ts';
import { restoreDeadRunsSysctls, restoreKubeletSysctls, saveKubeletSysctls } from './host-sysctls.ts';
import { deleteNetns, isDeadRun, listNetns, newRunId, sweepDeadRuns } from './netns.ts';
import type { ManagedProcess } from './processes.ts';
import { startRealNode, type RealNode } from './real-node.ts';
import { createUnderlay } from './underlay.ts';
import { createWorld, type World } from './world.ts';

const REPO = join(import.meta.dirname, '../..');
const IMAGES_SCRIPT = join(REPO, 'scripts/build-images.sh');
const TOOLS_SCRIPT = join(REPO, 'scripts/build-cluster-tools.sh');

/** Images scripts/build-images.sh makes (`archive NAME`). */
export type ImageName = 'pause' | 'testpod' | 'palisade';
/** Their names as pods give them. */
export const IMAGES = {
  pause: 'registry.k8s.io/pause:3.10.2',
  testpod: 'docker.io/palisade/testpod:dev',
} as const;

export interface RealClusterOptions {
  /** How many nodes; default 2. */
  nodes?: number;
  /** Pod addresses of the cluster (kube-controller-manager --cluster-cidr); default 10.244.0.0/16. */
  clusterCidr?: string;
  /** Each node's spec.podCIDR is a block of this size; default 24. */
  nodeCidrMaskSize?: number;
  /** kube-proxy in iptables mode on every node, as kubeadm runs it; default true. */
  kubeProxy?: boolean;
  /** Images imported into every node before its kubelet starts, besides pause; default ['testpod']. */
  images?: ImageName[];
  /** Labels of node i (1-based), set by its kubelet at registration; default palisade.io/node-index=i. */
  labels?: (index: number) => Record<string, string>;
  /** KubeletConfiguration fields for every node (e.g. { nodeStatusUpdateFrequency: '2s' }). */
  kubeletConfig?: Record<string, unknown>;
}

export interface RealCluster {
  runId: string;
  runDir: string;
  controlPlane: ControlPlane;
  /** Kubeconfig file for the user (root namespace, through the tunnel), as system:masters. */
  adminKubeconfig: string;
  kubeconfig: KubeConfig;
  core: CoreV1Api;
  controllerManager: ManagedProcess;
  scheduler: ManagedProcess;
  nodes: RealNode[];
  /** The router on the underlay towards the world, and the external hosts behind it (world.ts). */
  world: World;
  /**
   * How long the start took, in ms: images (built or found, while the control plane
   * starts), control plane, and from then on, side by side, controllers (both leading)
   * and nodes (every one registered with a pod CIDR, images imported, kube-proxy running).
   */
  timings: { images: number; controlPlane: number; controllers: number; nodes: number; total: number };
  /** Runs the real kubectl against the cluster. */
  kubectl(args: string[], options?: { input?: string; reject?: boolean }): Promise<Result>;
  /** Runs the pinned helm (scripts/build-cluster-tools.sh) against the cluster. */
  helm(args: string[], options?: { reject?: boolean }): Promise<Result>;
  /** Imports an image archive into every node's containerd (for CRI). */
  importImage(archive: string): Promise<void>;
  stop(): Promise<void>;
}

export const DEFAULT_CLUSTER_CIDR = '10.244.0.0/16';

/** The OCI archive of a locally built image (built on first use, cached by its inputs). */
export async function imageArchive(name: ImageName): Promise<string> {
  const { stdout } = await execa('bash', [IMAGES_SCRIPT, 'archive', name]);
  return stdout.trim().split('\n').at(-1) ?? '';
}

/** What killed runs left that the stand-in's sweep does not know: node cgroups (with their processes) and sysctls. */
export async function sweepDeadRealRuns(): Promise<void> {
  for (const name of await listTopCgroups(isDeadRun)) await removeNodeCgroups(name);
  await restoreDeadRunsSysctls();
  await sweepDeadRuns();
}

export async function startRealCluster(options: RealClusterOptions = {}): Promise<RealCluster> {
  const t0 = performance.now();
  const since = (t: number) => Math.round(performance.now() - t);
  await sweepDeadRealRuns();
  const runId = newRunId();
  const runDir = await mkdtemp(join(tmpdir(), `${runId}-`));
  const cleanup = new AsyncDisposableStack();
  cleanup.defer(() => rm(runDir, { recursive: true, force: true }));
  cleanup.defer(async () => {
    for (const name of (await listNetns()).filter((n) => n.startsWith(`${runId}-`))) await deleteNetns(name);
  });
  // Once every kubelet of the run is gone.
  cleanup.defer(() => restoreKubeletSysctls(runDir));
  try {
    await saveKubeletSysctls(runDir);
    const wanted: ImageName[] = ['pause', ...(options.images ?? ['testpod'])];
    let imagesMs = 0;
    const archives = Promise.all(wanted.map(imageArchive)).then((a) => ((imagesMs = since(t0)), a));
    archives.catch(() => undefined); // awaited below; not an unhandled rejection meanwhile
    const helmBinary = execa('bash', [TOOLS_SCRIPT, 'path', 'helm']).then((r) => String(r.stdout).trim());
    helmBinary.catch(() => undefined);

    const tControlPlane = performance.now();
    const underlay = await createUnderlay(runId);
    cleanup.defer(() => deleteNetns(underlay.controlPlaneNetns));
    const world = await createWorld({ runId, runDir, underlay });
    cleanup.defer(() => world.stop());
    const cpDir = join(runDir, 'control-plane');
    const controlPlane = await startControlPlane({ runDir: cpDir, netns: underlay.controlPlaneNetns, advertiseAddress: underlay.advertiseAddress, realNodes: true });
    cleanup.defer(() => controlPlane.stop());
    const kubeconfig = new KubeConfig();
    kubeconfig.loadFromFile(controlPlane.adminKubeconfig);
    const core = kubeconfig.makeApiClient(CoreV1Api);

    const controlPlaneMs = since(tControlPlane);
    const controllerOptions = {
      runDir: cpDir, netns: underlay.controlPlaneNetns, certs: controlPlane.certs, server: 'https://127.0.0.1:6443',
      clusterCidr: options.clusterCidr ?? DEFAULT_CLUSTER_CIDR, nodeCidrMaskSize: options.nodeCidrMaskSize ?? 24,
    };
    const images = await archives;
    // Nodes start while the controller-manager builds its controllers (seconds of CPU):
    // they register meanwhile, then wait for the pod CIDR it allocates.
    const tStart = performance.now();
    let controllersMs = 0;
    let nodesMs = 0;
    const controllerStarts = Promise.allSettled([startControllerManager(controllerOptions), startScheduler(controllerOptions)])
      .then((results) => ((controllersMs = since(tStart)), results));
    const nodeStarts = Promise.allSettled(Array.from({ length: options.nodes ?? 2 }, (_, i) => startRealNode({
      runId, runDir, index: i + 1, underlay, core, certs: controlPlane.certs, server: `https://${underlay.advertiseAddress}:6443`, images,
      labels: options.labels?.(i + 1) ?? { 'palisade.io/node-index': String(i + 1) },
      kubeletConfig: options.kubeletConfig,
      kubeProxy: options.kubeProxy === false ? undefined : { clusterCidr: controllerOptions.clusterCidr },
    }))).then((results) => ((nodesMs = since(tStart)), results));
    const [controllers, started] = await Promise.all([controllerStarts, nodeStarts]);
    for (const c of controllers) if (c.status === 'fulfilled') cleanup.defer(() => c.value.stop());
    // Nodes stop together: one node's teardown does not wait for another's.
    const nodes = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
    cleanup.defer(async () => {
      const results = await Promise.allSettled(nodes.map((n) => n.stop()));
      const failed = results.find((r) => r.status === 'rejected');
      if (failed) throw failed.reason;
    });
    // The controllers' failure first: a node waiting for its pod CIDR fails because of it.
    for (const s of [...controllers, ...started]) if (s.status === 'rejected') throw s.reason;
    for (const node of nodes) await world.routeNode(node);
    const [controllerManager, scheduler] = controllers.map((c) => (c as PromiseFulfilledResult<ManagedProcess>).value) as [ManagedProcess, ManagedProcess];

    const helm = await helmBinary;
    // kubectl's discovery cache stays in the run directory, not the user's home.
    const env = { KUBECONFIG: controlPlane.adminKubeconfig, KUBECACHEDIR: join(runDir, 'kube-cache') };
    const stack = cleanup.move();
    return {
      runId, runDir, controlPlane, adminKubeconfig: controlPlane.adminKubeconfig, kubeconfig, core, controllerManager, scheduler, nodes, world,
      timings: { images: imagesMs, controlPlane: controlPlaneMs, controllers: controllersMs, nodes: nodesMs, total: since(t0) },
      kubectl: (args, o = {}) => execa('kubectl', args, { env, input: o.input, reject: o.reject ?? true }),
      // Helm's caches and config stay in the run directory, not the user's home.
      helm: (args, o = {}) => execa(helm, args, {
        env: { ...env, HELM_CACHE_HOME: join(runDir, 'helm/cache'), HELM_CONFIG_HOME: join(runDir, 'helm/config'), HELM_DATA_HOME: join(runDir, 'helm/data') },
        reject: o.reject ?? true,
      }),
      importImage: async (archive) => void (await Promise.all(nodes.map((n) => n.importImage(archive)))),
      stop: () => stack.disposeAsync(),
    };
  } catch (error) {
    await cleanup.disposeAsync();
    throw error;
  }
}

/** A node's Ready condition (undefined before the kubelet reported one). */
export function readyCondition(node: V1Node): { status: string; reason?: string; message?: string } | undefined {
  return node.status?.conditions?.find((c) => c.type === 'Ready');
}

/**
 * A path that names a running pod's network namespace in the root mount
 * namespace: /proc/PID/ns/net of a process in the pod's cgroup on its node
 * (e.g. for palisade-prober, which probes from inside namespaces).
 */
export async function podNetnsPath(cluster: RealCluster, pod: V1Pod): Promise<string> {
  const node = cluster.nodes.find((n) => n.name === pod.spec?.nodeName);
  const uid = pod.metadata?.uid;
  if (!node || !uid) throw new Error(`pod ${pod.metadata?.name} is not on a node of this cluster`);
  const { stdout } = await execa('find', [`/sys/fs/cgroup/pids${node.cgroupRoot}`, '-type', 'd', '-name', `pod${uid}`]);
  const podDir = String(stdout).split('\n').find(Boolean);
  if (!podDir) throw new Error(`no cgroup of pod ${pod.metadata?.name} on ${node.name}`);
  const { stdout: procs } = await execa('sh', ['-c', `cat "${podDir}"/*/cgroup.procs`]);
  const pid = String(procs).split('\n').find(Boolean);
  if (!pid) throw new Error(`pod ${pod.metadata?.name} has no process`);
  return `/proc/${pid}/ns/net`;
}
