// A Pod object as the policy compiler sees it (pure: no I/O).
//
// What a pod claims matters beyond its policy: its address goes into every
// node's ipcache, where it decides the identity of every packet from that
// address. Kubernetes keeps status.podIP on pods that have finished
// (Succeeded, Failed, Evicted) after CNI DEL has freed the address for
// another pod, and a host-network pod's podIP is its node's address. Neither
// may own a pod address, so neither claims one here. A pod being deleted
// (deletionTimestamp) still runs in its sandbox and keeps its address until
// it is terminal or gone. The uid and creation time let the compiler decide
// between two claims on one address (policy/compiler.ts, addressOwners).
import type { V1Pod } from '@kubernetes/client-node';
import type { PodInput, Protocol } from '../policy/types.ts';

const TERMINAL_PHASES = new Set(['Succeeded', 'Failed']);

/**
 * The compiler input for `pod`. `registryIp`: the address this node's CNI
 * registry gave the pod, if it is local; used while the status has no podIP
 * yet (the kubelet writes it after CNI ADD).
 */
export function podInput(pod: V1Pod, registryIp?: string): PodInput {
  const meta = pod.metadata ?? {};
  const claims = !TERMINAL_PHASES.has(pod.status?.phase ?? '') && pod.spec?.hostNetwork !== true;
  const created = meta.creationTimestamp === undefined ? NaN : new Date(meta.creationTimestamp).getTime();
  return {
    namespace: meta.namespace!,
    name: meta.name!,
    labels: meta.labels ?? {},
    ip: claims ? (pod.status?.podIP ?? registryIp) : undefined,
    node: pod.spec?.nodeName,
    containerPorts: (pod.spec?.containers ?? []).flatMap((ct) =>
      (ct.ports ?? []).map((p) => ({ name: p.name, containerPort: p.containerPort, protocol: (p.protocol ?? 'TCP') as Protocol })),
    ),
    uid: meta.uid,
    createdAt: Number.isNaN(created) ? undefined : created,
  };
}
