// The harness's stand-in for the kubelet and container runtime, and nothing
// more: it creates the Pod object bound to a node, creates the pod's network
// namespace, calls the CNI plugin exactly as a runtime does, starts the pod's
// "container" (TCP/UDP/SCTP echo servers, or another program such as the
// DNS server of dns-server.ts), and reports the pod IP and phase
// in the Pod status. Deleting a pod calls CNI DEL; so does evicting one,
// which leaves its Pod object Failed with its podIP.
import { randomBytes } from 'node:crypto';
import type { CoreV1Api, V1ContainerPort } from '@kubernetes/client-node';
import { execa } from 'execa';
import { createNetns, deleteNetns, netnsPath } from './netns.ts';
import { BIN_DIR, programs } from './paths.ts';
import { startProcess, type ManagedProcess } from './processes.ts';
import type { SimNode } from './node.ts';

/** The ports every test pod serves, named as FORMAT.md says policies may use them. */
export const SERVED_PORTS = [80, 81] as const;
export const CONTAINER_PORTS: V1ContainerPort[] = SERVED_PORTS.flatMap((port) =>
  (['TCP', 'UDP', 'SCTP'] as const).map((protocol) => ({
    name: `serve-${port}-${protocol.toLowerCase()}`,
    containerPort: port,
    protocol,
  })),
);

export interface SimPod {
  namespace: string;
  name: string;
  node: SimNode;
  ip: string;
  netns: string;
  containerId: string;
  server: ManagedProcess;
  /** resourceVersion of the Pod object after the kubelet's last write (its status). */
  resourceVersion: string;
}

export interface PodSpecInput {
  namespace: string;
  name: string;
  labels: Record<string, string>;
  node: SimNode;
  /** The pod's container, when it is not the echo server (e.g. the cluster's DNS server, dns-server.ts). */
  container?: PodContainer;
}

/** A container the stand-in runs as a process in the pod's namespace. */
export interface PodContainer {
  /** The image the Pod object names (nothing is pulled: the program runs from this machine). */
  image: string;
  command: string;
  args: string[];
  ports: V1ContainerPort[];
  /** Started once its output has a line matching this. */
  readyLine: RegExp;
}

export class CniFailure extends Error {
  readonly code: number | undefined;
  constructor(command: string, pod: string, output: string) {
    let code: number | undefined;
    let msg = output;
    try {
      const parsed = JSON.parse(output) as { code?: number; msg?: string; details?: string };
      code = parsed.code;
      msg = `${parsed.msg ?? ''}${parsed.details ? ` (${parsed.details})` : ''}`;
    } catch {
      // not JSON: keep the raw output
    }
    super(`CNI ${command} for pod ${pod} failed: ${msg}`);
    this.name = 'CniFailure';
    this.code = code;
  }
}

export class Kubelet {
  readonly #core: CoreV1Api;
  readonly #runId: string;
  readonly #runDir: string;
  #counter = 0;

  constructor(core: CoreV1Api, runId: string, runDir: string) {
    this.#core = core;
    this.#runId = runId;
    this.#runDir = runDir;
  }

  async startPod(input: PodSpecInput): Promise<SimPod> {
    const { namespace, name, node } = input;
    const container = input.container ?? {
      image: 'palisade.local/podserver', command: programs.podserver, args: SERVED_PORTS.map(String), ports: CONTAINER_PORTS, readyLine: /^ready/,
    };
    await this.#core.createNamespacedPod({
      namespace,
      body: {
        metadata: { name, namespace, labels: input.labels },
        spec: {
          nodeName: node.name,
          containers: [{ name: 'serve', image: container.image, ports: container.ports }],
        },
      },
    });
    const netns = `${this.#runId}-p${++this.#counter}`;
    const containerId = randomBytes(16).toString('hex');
    await createNetns(netns);
    let attached = false;
    try {
      const result = (await callCni(node, 'ADD', { containerId, netns, namespace, name })) as { ips: Array<{ address: string }> };
      attached = true;
      const ip = result.ips[0]!.address.split('/')[0]!;
      const server = await startProcess({
        name: `pod ${namespace}/${name}`,
        command: container.command,
        args: container.args,
        netns,
        logFile: `${this.#runDir}/pod-${namespace}-${name}.log`,
        readyLine: container.readyLine,
        readyTimeoutMs: 10_000,
      });
      const resourceVersion = await this.#reportRunning(namespace, name, ip, node, container.image);
      return { namespace, name, node, ip, netns, containerId, server, resourceVersion };
    } catch (error) {
      if (attached) await callCni(node, 'DEL', { containerId, netns, namespace, name }).catch(() => undefined);
      await deleteNetns(netns);
      throw error;
    }
  }

  /** Stops the pod's container, calls CNI DEL, removes its namespace and Pod object. */
  async stopPod(pod: SimPod, options: { deleteObject?: boolean } = {}): Promise<void> {
    await pod.server.stop();
    await callCni(pod.node, 'DEL', { containerId: pod.containerId, netns: pod.netns, namespace: pod.namespace, name: pod.name });
    await deleteNetns(pod.netns);
    if (options.deleteObject ?? true) {
      await this.#core.deleteNamespacedPod({ namespace: pod.namespace, name: pod.name, gracePeriodSeconds: 0 }).catch(() => undefined);
    }
  }

  /**
   * Evicts the pod as the kubelet does: its container stops, its status
   * becomes phase Failed, reason Evicted, with podIP kept (Kubernetes keeps
   * it), and its sandbox is torn down (CNI DEL frees the address). The Pod
   * object stays. Returns the resourceVersion of the status write.
   */
  async evictPod(pod: SimPod): Promise<string> {
    await pod.server.stop();
    const current = await this.#core.readNamespacedPod({ namespace: pod.namespace, name: pod.name });
    const now = new Date();
    const updated = await this.#core.replaceNamespacedPodStatus({
      namespace: pod.namespace,
      name: pod.name,
      body: {
        ...current,
        status: {
          ...current.status,
          phase: 'Failed',
          reason: 'Evicted',
          message: 'The node was low on resource: memory.',
          conditions: [{ type: 'Ready', status: 'False', reason: 'PodFailed', lastTransitionTime: now }],
          containerStatuses: [
            { name: 'serve', image: 'palisade.local/podserver', imageID: '', ready: false, started: false, restartCount: 0, state: { terminated: { exitCode: 137, reason: 'Evicted', finishedAt: now } } },
          ],
        },
      },
    });
    await callCni(pod.node, 'DEL', { containerId: pod.containerId, netns: pod.netns, namespace: pod.namespace, name: pod.name });
    await deleteNetns(pod.netns);
    return updated.metadata?.resourceVersion ?? '';
  }

  async #reportRunning(namespace: string, name: string, ip: string, node: SimNode, image: string): Promise<string> {
    const pod = await this.#core.readNamespacedPod({ namespace, name });
    const now = new Date();
    const updated = await this.#core.replaceNamespacedPodStatus({
      namespace,
      name,
      body: {
        ...pod,
        status: {
          phase: 'Running',
          podIP: ip,
          podIPs: [{ ip }],
          hostIP: node.address,
          hostIPs: [{ ip: node.address }],
          startTime: now,
          conditions: [{ type: 'Ready', status: 'True', lastTransitionTime: now }],
          containerStatuses: [
            { name: 'serve', image, imageID: '', ready: true, started: true, restartCount: 0, state: { running: { startedAt: now } } },
          ],
        },
      },
    });
    return updated.metadata?.resourceVersion ?? '';
  }
}

export interface CniTarget {
  containerId: string;
  netns: string;
  namespace: string;
  name: string;
  ifName?: string;
}

/** Network configuration as a runtime would read it from /etc/cni/net.d on this node. */
export function networkConfig(node: SimNode, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { cniVersion: '1.1.0', name: 'palisade', type: 'palisade-cni', agentSocket: node.cniSocket, ...extra };
}

/** Executes the CNI plugin in the node's namespace, as the runtime does; returns the parsed result. */
export async function callCni(
  node: SimNode,
  command: 'ADD' | 'DEL' | 'CHECK' | 'STATUS' | 'GC' | 'VERSION',
  target: CniTarget | undefined,
  config: Record<string, unknown> = networkConfig(node),
): Promise<unknown> {
  const env: Record<string, string> = { CNI_COMMAND: command, CNI_PATH: BIN_DIR };
  if (target) {
    Object.assign(env, {
      CNI_CONTAINERID: target.containerId,
      CNI_NETNS: netnsPath(target.netns),
      CNI_IFNAME: target.ifName ?? 'eth0',
      CNI_ARGS: `IgnoreUnknown=1;K8S_POD_NAMESPACE=${target.namespace};K8S_POD_NAME=${target.name};K8S_POD_INFRA_CONTAINER_ID=${target.containerId}`,
    });
  }
  const result = await execa('ip', ['netns', 'exec', node.netns, programs.cni], {
    input: JSON.stringify(config),
    env,
    extendEnv: false,
    reject: false,
  });
  const stdout = String(result.stdout);
  if (result.exitCode !== 0) throw new CniFailure(command, target ? `${target.namespace}/${target.name}` : '-', stdout);
  return stdout === '' ? undefined : JSON.parse(stdout);
}
