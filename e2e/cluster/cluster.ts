// A whole simulated cluster for tests, the demo and the scenario runner: the
// underlay, a real control plane, N nodes each running the Palisade agent,
// the kubelet stand-in that creates pods on them, and the world outside the
// cluster (world.ts: a router on the underlay, external hosts behind it). stop() removes every
// namespace, process, pin and file it created, in reverse order, and is also
// what runs when starting fails half-way.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { startControlPlane, type ControlPlane } from './control-plane.ts';
import { startFlowsApi } from './flows-api.ts';
import { installCrds } from './crds.ts';
import { NODE_BIN, programs } from './paths.ts';
import { startProcess, type ManagedProcess } from './processes.ts';
import { Kubelet, type SimPod } from './kubelet.ts';
import { deleteNetns, listNetns, newRunId, sweepDeadRuns } from './netns.ts';
import { startNode, type SimNode } from './node.ts';
import { createUnderlay } from './underlay.ts';
import { createWorld, type World } from './world.ts';

export interface Cluster {
  runId: string;
  runDir: string;
  controlPlane: ControlPlane;
  /** The operator replica the cluster starts (tests may signal it or start more replicas). */
  operator: ManagedProcess;
  kubeconfig: KubeConfig;
  core: CoreV1Api;
  nodes: SimNode[];
  kubelet: Kubelet;
  pods: Map<string, SimPod>;
  /** The router on the underlay towards the world, and the external hosts behind it (world.ts). */
  world: World;
  stop(): Promise<void>;
}

export interface ClusterOptions {
  /** How many nodes; default 2. */
  nodes?: number;
  /** Pod CIDR of node i (1-based); default 10.200.i.0/24. All of them lie in 10.0.0.0/8. */
  podCidr?: (index: number) => string;
  /** More flags for every node's agent (agent/config.ts). */
  agentArgs?: string[];
  /** How long the operator keeps an unused identity; default 30 s. */
  identityGraceSeconds?: number;
  /**
   * Run kube-proxy (iptables mode, e2e/cluster/kube-proxy.ts) on every node, so
   * that Services' ClusterIPs work (create them with services.ts). Off by
   * default: the other tests neither need nor pay for it.
   */
  kubeProxy?: boolean;
}

/** kube-proxy's clusterCIDR: every pod CIDR of a cluster lies in it (see ClusterOptions.podCidr). */
export const CLUSTER_POD_CIDR = '10.0.0.0/8';

export async function startCluster(options: ClusterOptions = {}): Promise<Cluster> {
  await sweepDeadRuns();
  const runId = newRunId();
  const runDir = await mkdtemp(join(tmpdir(), `${runId}-`));
  const cleanup = new AsyncDisposableStack();
  cleanup.defer(() => rm(runDir, { recursive: true, force: true }));
  // Last line of defence: whatever namespace of this run is still there.
  cleanup.defer(async () => {
    for (const name of (await listNetns()).filter((n) => n.startsWith(`${runId}-`))) await deleteNetns(name);
  });
  try {
    const underlay = await createUnderlay(runId);
    cleanup.defer(() => deleteNetns(underlay.controlPlaneNetns));
    const world = await createWorld({ runId, runDir, underlay });
    cleanup.defer(() => world.stop());
    const controlPlane = await startControlPlane({
      runDir: join(runDir, 'control-plane'),
      netns: underlay.controlPlaneNetns,
      advertiseAddress: underlay.advertiseAddress,
    });
    cleanup.defer(() => controlPlane.stop());

    const kubeconfig = new KubeConfig();
    kubeconfig.loadFromFile(controlPlane.adminKubeconfig);
    const core = kubeconfig.makeApiClient(CoreV1Api);
    await installCrds(kubeconfig);
    const flowsApi = await startFlowsApi({
      runDir: join(runDir, 'control-plane'),
      netns: underlay.controlPlaneNetns,
      advertiseAddress: underlay.advertiseAddress,
      certs: controlPlane.certs,
      kubeconfig,
      adminKubeconfigForNetns: controlPlane.nodeKubeconfig,
    });
    cleanup.defer(() => flowsApi.process.stop());

    // The operator runs as a Deployment would: anywhere that reaches the API server.
    const operator = await startProcess({
      name: 'operator',
      command: NODE_BIN,
      args: [programs.operator, '--kubeconfig', controlPlane.adminKubeconfig, '--identity-grace-seconds', String(options.identityGraceSeconds ?? 30)],
      logFile: join(runDir, 'operator.log'),
      readyLine: /ready: leading/,
    });
    cleanup.defer(() => operator.stop());

    const nodes: SimNode[] = [];
    for (let index = 1; index <= (options.nodes ?? 2); index++) {
      const podCidr = options.podCidr?.(index) ?? `10.200.${index}.0/24`;
      const node = await startNode({ runId, runDir, index, podCidr, underlay, core, nodeKubeconfig: controlPlane.nodeKubeconfig, agentArgs: options.agentArgs,
        kubeProxy: options.kubeProxy ? { clusterCidr: CLUSTER_POD_CIDR } : undefined, flows: { certs: controlPlane.certs, tokenFile: flowsApi.tokenFile } });
      cleanup.defer(() => node.stop());
      nodes.push(node);
      await world.routeNode(node);
    }
    const kubelet = new Kubelet(core, runId, runDir);
    const pods = new Map<string, SimPod>();
    // Pods go first on the way down, while their agents can still answer CNI DEL.
    cleanup.defer(async () => {
      for (const pod of pods.values()) await kubelet.stopPod(pod, { deleteObject: false }).catch(() => undefined);
    });
    const stack = cleanup.move();
    return {
      runId, runDir, controlPlane, operator, kubeconfig, core, nodes, kubelet, pods, world,
      stop: () => stack.disposeAsync(),
    };
  } catch (error) {
    await cleanup.disposeAsync();
    throw error;
  }
}
