// Pods on real nodes, and Palisade on them through its Helm chart: what the
// scenario runner, the Helm end-to-end test and the demo share.
//
// A test pod is the locally built testpod image serving TCP and UDP on
// ports 80 and 81 (palisade-podserver), pinned to a node; it counts as
// started once the kubelet reports it Ready (a TCP readiness probe on 80).
// It is probed from its own network namespace, reached from the machine's
// mount namespace as /proc/PID/ns/net of one of its processes.
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { V1Pod } from '@kubernetes/client-node';
import type { PodWanted } from './workload.ts';
import { CONTAINER_PORTS, SERVED_PORTS } from './kubelet.ts';
import { IMAGES, imageArchive, podNetnsPath, readyCondition, type RealCluster } from './real-cluster.ts';
import { worldHosts, type ScenarioCluster, type ScenarioPod } from '../scenario/scenario-cluster.ts';
import { removeNamespacesAtOnce } from './namespace-removal.ts';

const CHART = join(import.meta.dirname, '../../helm/palisade');
/** The chart's release as the tests and the demo install it. */
export const RELEASE = { name: 'palisade', namespace: 'kube-system' } as const;

/** The test pod's Pod object on `node`. */
export function testPod(w: PodWanted, node: string): V1Pod {
  return {
    metadata: { namespace: w.namespace, name: w.name, labels: w.labels },
    spec: {
      nodeName: node,
      terminationGracePeriodSeconds: 0,
      containers: [{
        name: 'serve',
        image: IMAGES.testpod,
        imagePullPolicy: 'Never',
        command: ['/usr/local/bin/palisade-podserver', ...SERVED_PORTS.map(String)],
        ports: CONTAINER_PORTS,
        readinessProbe: { tcpSocket: { port: SERVED_PORTS[0] }, periodSeconds: 1 },
      }],
    },
  };
}

async function until<T>(what: string, timeoutMs: number, check: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`not within ${timeoutMs / 1000} s: ${what}`);
    await sleep(100);
  }
}

/** Starts test pods round-robin over the nodes; resolves once every one is Ready with its address. */
export async function startRealPods(cluster: RealCluster, wanted: PodWanted[], timeoutMs = 60_000): Promise<ScenarioPod[]> {
  const names = cluster.nodes.map((n) => n.name);
  await Promise.all(wanted.map((w, i) => cluster.core.createNamespacedPod({ namespace: w.namespace, body: testPod(w, names[i % names.length]!) })));
  return Promise.all(wanted.map(async (w) => {
    const pod = await until(`pod ${w.namespace}/${w.name} Ready`, timeoutMs, async () => {
      const p = await cluster.core.readNamespacedPod({ namespace: w.namespace, name: w.name });
      if (p.status?.phase === 'Failed') throw new Error(`pod ${w.namespace}/${w.name} failed: ${p.status.message ?? p.status.reason ?? ''}`);
      return p.status?.podIP && p.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ? p : undefined;
    });
    return { namespace: w.namespace, name: w.name, ip: pod.status!.podIP!, netns: await podNetnsPath(cluster, pod), resourceVersion: pod.metadata!.resourceVersion! };
  }));
}

/** Deletes pods at once (no grace) and returns when they are gone: their names and addresses are free again. */
export async function stopRealPods(cluster: RealCluster, pods: Array<{ namespace: string; name: string }>, timeoutMs = 60_000): Promise<void> {
  await Promise.all(pods.map((p) => cluster.core.deleteNamespacedPod({ namespace: p.namespace, name: p.name, gracePeriodSeconds: 0 }).catch(() => undefined)));
  await Promise.all(pods.map((p) => until(`pod ${p.namespace}/${p.name} gone`, timeoutMs, async () =>
    (await cluster.core.readNamespacedPod({ namespace: p.namespace, name: p.name }).then(() => undefined, () => true)))));
}

/** The scenario runner's view of a real cluster with Palisade installed. */
export function realScenarioCluster(cluster: RealCluster): ScenarioCluster {
  return {
    ...worldHosts(cluster.world),
    kubeconfig: cluster.kubeconfig,
    core: cluster.core,
    adminKubeconfig: cluster.adminKubeconfig,
    nodeNames: cluster.nodes.map((n) => n.name),
    startPods: (wanted) => startRealPods(cluster, wanted),
    stopPods: (pods) => stopRealPods(cluster, pods),
    serveDns: () => Promise.reject(new Error(
      'names (`dns`, `setDNS`, a name in a probe\'s `to`) are not supported on real nodes yet: they have no DNS server pod for scenarios (run this scenario on the stand-in cluster, without --real-nodes)',
    )),
    async removeNamespaces(names) {
      // At once, as the namespace controller would after its fixed 5 s wait (namespace-removal.ts says why that is safe here) ...
      if (await removeNamespacesAtOnce(cluster.kubeconfig, cluster.core, names)) return;
      // ... or, when discovery fails, by the namespace controller, which empties and removes them once it can.
      for (const name of names) await cluster.core.deleteNamespace({ name }).catch(() => undefined);
      await Promise.all(names.map((name) => until(`namespace ${name} gone`, 60_000, async () =>
        (await cluster.core.readNamespace({ name }).then(() => undefined, () => true)))));
    },
  };
}

export interface InstallOptions {
  /** `--set` values, e.g. { 'agent.flows.ringBytes': '1048576' }. */
  set?: Record<string, string>;
  timeoutSeconds?: number;
  /** Import the image into every node first; default true. False when the cluster started with it (`images: ['palisade']`). */
  importImage?: boolean;
}

/** The `helm install` command installPalisade runs, as a user types it from the repository's root. */
export const INSTALL_COMMAND = `helm install ${RELEASE.name} ./helm/palisade -n ${RELEASE.namespace} --wait`;

const setArgs = (set: Record<string, string> = {}) => Object.entries(set).flatMap(([k, v]) => ['--set', `${k}=${v}`]);

/**
 * Builds (or finds) the Palisade image, imports it into every node (unless
 * told not to), and `helm install`s the chart, waiting for its workloads;
 * then waits for every node to turn Ready. Returns how long each part took
 * (ms) and what helm printed (the release and the chart's NOTES).
 */
export async function installPalisade(cluster: RealCluster, o: InstallOptions = {}): Promise<{ image: number; helm: number; nodesReady: number; output: string }> {
  let t = performance.now();
  if (o.importImage ?? true) await cluster.importImage(await imageArchive('palisade'));
  const image = performance.now() - t;
  t = performance.now();
  const { stdout } = await cluster.helm(['install', RELEASE.name, CHART, '-n', RELEASE.namespace, '--wait', '--timeout', `${o.timeoutSeconds ?? 180}s`, ...setArgs(o.set)]);
  const helm = performance.now() - t;
  t = performance.now();
  await waitNodesReady(cluster);
  return { image, helm, nodesReady: performance.now() - t, output: String(stdout) };
}

/** `helm upgrade` with other values (the chart and image as they are), waiting for the rollout. */
export async function upgradePalisade(cluster: RealCluster, o: InstallOptions = {}): Promise<void> {
  await cluster.helm(['upgrade', RELEASE.name, CHART, '-n', RELEASE.namespace, '--reuse-values', '--wait', '--timeout', `${o.timeoutSeconds ?? 180}s`, ...setArgs(o.set)]);
}

export async function uninstallPalisade(cluster: RealCluster, timeoutSeconds = 180): Promise<void> {
  await cluster.helm(['uninstall', RELEASE.name, '-n', RELEASE.namespace, '--wait', '--timeout', `${timeoutSeconds}s`]);
}

export async function waitNodesReady(cluster: RealCluster, timeoutMs = 120_000): Promise<void> {
  await until('every node Ready', timeoutMs, async () => {
    const nodes = (await cluster.core.listNode()).items;
    return nodes.length === cluster.nodes.length && nodes.every((n) => readyCondition(n)?.status === 'True') ? true : undefined;
  });
}
