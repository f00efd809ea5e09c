// Namespaces and pods for a test, the demo or a scenario: pods are spread
// over the nodes round-robin and started in parallel.
import type { Cluster } from './cluster.ts';
import type { SimPod } from './kubelet.ts';

/** Creates a namespace; returns its resourceVersion. */
export async function createNamespace(cluster: Cluster, name: string, labels: Record<string, string>): Promise<string> {
  const ns = await cluster.core.createNamespace({ body: { metadata: { name, labels } } });
  return ns.metadata?.resourceVersion ?? '';
}

export interface PodWanted {
  namespace: string;
  name: string;
  labels: Record<string, string>;
}

/** Starts the pods, node by node in turn, and records them in cluster.pods under "namespace/name". */
export async function startPods(cluster: Cluster, wanted: PodWanted[]): Promise<SimPod[]> {
  const results = await Promise.allSettled(
    wanted.map((w, i) => cluster.kubelet.startPod({ ...w, node: cluster.nodes[i % cluster.nodes.length]! })),
  );
  const started: SimPod[] = [];
  for (const result of results) {
    if (result.status === 'fulfilled') {
      started.push(result.value);
      cluster.pods.set(`${result.value.namespace}/${result.value.name}`, result.value);
    }
  }
  const failure = results.find((r) => r.status === 'rejected');
  if (failure) throw failure.reason;
  return started;
}

export async function stopPods(cluster: Cluster, pods: SimPod[]): Promise<void> {
  await Promise.all(pods.map((pod) => cluster.kubelet.stopPod(pod)));
  for (const pod of pods) cluster.pods.delete(`${pod.namespace}/${pod.name}`);
}
