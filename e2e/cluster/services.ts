// Services for clusters that run kube-proxy (ClusterOptions.kubeProxy). No
// kube-controller-manager runs, so its EndpointSlice controller's work is
// done here, once, at creation: the slice lists the ready pods the selector
// matches at that moment, labelled `kubernetes.io/service-name` (what
// kube-proxy looks them up by) and `endpointslice.kubernetes.io/managed-by`.
import { DiscoveryV1Api, type V1Pod } from '@kubernetes/client-node';
import type { Cluster } from './cluster.ts';
import { natRules } from './kube-proxy.ts';
import { enforcedEverywhere } from './node-status.ts';
import type { Protocol } from './probe.ts';
import { waitFor } from './processes.ts';

export interface ServiceWanted {
  namespace: string;
  name: string;
  /** Pods with all these labels (in the namespace) are the backends. */
  selector: Record<string, string>;
  /** The Service's port, on the ClusterIP. */
  port: number;
  /** The port on the backend pods; default `port`. */
  targetPort?: number;
  /** One Service port (named after its protocol) per protocol; default TCP and UDP. */
  protocols?: Array<Exclude<Protocol, 'SCTP'>>;
}

export interface SimService {
  namespace: string;
  name: string;
  clusterIP: string;
  port: number;
  targetPort: number;
  /** The pod addresses in the EndpointSlice. */
  endpoints: string[];
}

function ready(pod: V1Pod): boolean {
  return pod.status?.phase === 'Running' && !!pod.status.podIP && !pod.metadata?.deletionTimestamp &&
    (pod.status.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True');
}

/**
 * Creates the Service (ClusterIP) and its EndpointSlice, then waits until
 * every node's agent has written its frontends and backends and the
 * kube-proxy of every node has written the rules that send the ClusterIP to
 * each endpoint.
 */
export async function createService(cluster: Cluster, wanted: ServiceWanted): Promise<SimService> {
  const { namespace, name, selector, port } = wanted;
  const targetPort = wanted.targetPort ?? port;
  const protocols = wanted.protocols ?? ['TCP', 'UDP'];
  const portName = (p: string) => p.toLowerCase();
  const service = await cluster.core.createNamespacedService({
    namespace,
    body: {
      metadata: { name, namespace },
      spec: {
        type: 'ClusterIP',
        selector,
        ports: protocols.map((protocol) => ({ name: portName(protocol), protocol, port, targetPort })),
      },
    },
  });
  const clusterIP = service.spec?.clusterIP;
  if (!clusterIP || clusterIP === 'None') throw new Error(`Service ${namespace}/${name} got no ClusterIP`);

  const labelSelector = Object.entries(selector).map(([k, v]) => `${k}=${v}`).join(',');
  const pods = (await cluster.core.listNamespacedPod({ namespace, labelSelector })).items.filter(ready);
  const endpoints = pods.map((p) => p.status!.podIP!);
  const slice = await cluster.kubeconfig.makeApiClient(DiscoveryV1Api).createNamespacedEndpointSlice({
    namespace,
    body: {
      metadata: {
        name: `${name}-harness`,
        namespace,
        labels: { 'kubernetes.io/service-name': name, 'endpointslice.kubernetes.io/managed-by': 'palisade-e2e-harness' },
        ownerReferences: [{ apiVersion: 'v1', kind: 'Service', name, uid: service.metadata!.uid! }],
      },
      addressType: 'IPv4',
      endpoints: pods.map((p) => ({
        addresses: [p.status!.podIP!],
        conditions: { ready: true, serving: true, terminating: false },
        nodeName: p.spec?.nodeName,
        targetRef: { kind: 'Pod', namespace, name: p.metadata!.name!, uid: p.metadata!.uid! },
      })),
      ports: protocols.map((protocol) => ({ name: portName(protocol), protocol, port: targetPort })),
    },
  });

  // Palisade translates pods' traffic to the Service itself (agent/services.ts).
  await enforcedEverywhere(cluster, 'Service', service.metadata?.resourceVersion);
  await enforcedEverywhere(cluster, 'EndpointSlice', slice.metadata?.resourceVersion);
  // kube-proxy's rules: a jump per Service port from KUBE-SERVICES, a DNAT per endpoint and port.
  for (const node of cluster.nodes.filter((n) => n.kubeProxy)) {
    await waitFor(`kube-proxy ${node.name} rules for ${namespace}/${name}`, async () => {
      const rules = await natRules(node.netns);
      const portRules = rules.split('\n').filter((l) => l.startsWith('-A KUBE-SERVICES ') && l.includes(`-d ${clusterIP}/32 `));
      const dnats = endpoints.map((ip) => rules.split('\n').filter((l) => l.includes(`--to-destination ${ip}:${targetPort}`)).length);
      if (portRules.length < protocols.length || dnats.some((n) => n < protocols.length)) {
        throw new Error(`${portRules.length} service rules, DNATs per endpoint ${JSON.stringify(dnats)}`);
      }
    }, { timeoutMs: 15_000, intervalMs: 100, watch: [node.kubeProxy!], explainTimeoutWith: node.kubeProxy });
  }
  return { namespace, name, clusterIP, port, targetPort, endpoints };
}
