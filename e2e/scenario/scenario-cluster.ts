// What the scenario runner needs of a cluster, so that the same scenarios
// run on the fast stand-in nodes (e2e/cluster/cluster.ts) and on real
// nodes with Palisade installed by its chart (e2e/cluster/real-pods.ts).
import type { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import type { Cluster } from '../cluster/cluster.ts';
import { startPods, stopPods, type PodWanted } from '../cluster/workload.ts';
import type { SimPod } from '../cluster/kubelet.ts';
import type { ExternalHost, ExternalHostWanted, World } from '../cluster/world.ts';
import { startDnsServer, type DnsRecord, type DnsServer } from '../cluster/dns-server.ts';

/** A scenario's pod: where it is and the network namespace to probe from. */
export interface ScenarioPod {
  namespace: string;
  name: string;
  ip: string;
  /** A network namespace name (under /var/run/netns) or a path to one (/proc/PID/ns/net). */
  netns: string;
  /** resourceVersion of the Pod object once running with its address. */
  resourceVersion: string;
}

export interface ScenarioCluster {
  kubeconfig: KubeConfig;
  core: CoreV1Api;
  /** For `kubectl palisade` (explain). */
  adminKubeconfig: string;
  nodeNames: string[];
  /** Starts the pods (serving TCP and UDP on 80 and 81), spread over the nodes. */
  startPods(wanted: PodWanted[]): Promise<ScenarioPod[]>;
  stopPods(pods: ScenarioPod[]): Promise<void>;
  /** Deletes the namespaces (empty by now) and returns once their names are free. */
  removeNamespaces(names: string[]): Promise<void>;
  /**
   * Starts hosts outside the cluster (FORMAT.md version 2, `external`) behind the
   * world's router on the underlay, serving TCP and UDP on 80, 81 and 443.
   */
  startExternalHosts(hosts: ExternalHostWanted[]): Promise<ScenarioHost[]>;
  stopExternalHosts(hosts: ScenarioHost[]): Promise<void>;
  /**
   * The cluster's DNS server (FORMAT.md version 2, `dns`): the pod kube-system/dns,
   * labelled k8s-app: kube-dns, answers exactly `records` from now on (NXDOMAIN for
   * any other name); started on first use, once the agents' DNS proxies serve it.
   * Returns its address (pods query it on port 53). Rejects where the cluster cannot run it.
   */
  serveDns(records: DnsRecord[]): Promise<string>;
}

/** A scenario's external host: its address and the network namespace to probe from. */
export interface ScenarioHost {
  name: string;
  ip: string;
  netns: string;
}

/** The external hosts of a cluster's world, as ScenarioCluster gives them. */
export function worldHosts(world: World): Pick<ScenarioCluster, 'startExternalHosts' | 'stopExternalHosts'> {
  const started = new Map<ScenarioHost, ExternalHost>();
  return {
    async startExternalHosts(wanted) {
      const hosts = await world.addHosts(wanted);
      return hosts.map((host) => {
        const view = { name: host.name, ip: host.ip, netns: host.netns };
        started.set(view, host);
        return view;
      });
    },
    async stopExternalHosts(hosts) {
      await world.removeHosts(hosts.flatMap((h) => started.get(h) ?? []));
      for (const h of hosts) started.delete(h);
    },
  };
}

/** The stand-in cluster: pods from its kubelet stand-in, namespaces finalized by hand (it runs no namespace controller). */
export function standInScenarioCluster(cluster: Cluster): ScenarioCluster {
  const started = new Map<ScenarioPod, SimPod>();
  // One DNS server pod for the cluster's life (cluster.stop() removes it): its address, and so the
  // agents' upstream, stays the same from one scenario to the next; each scenario sets its records.
  let dns: Promise<DnsServer> | undefined;
  return {
    ...worldHosts(cluster.world),
    async serveDns(records) {
      if (!dns) {
        dns = startDnsServer(cluster, { records });
        dns.catch(() => (dns = undefined));
        return (await dns).ip;
      }
      const server = await dns;
      await server.setRecords(records);
      return server.ip;
    },
    kubeconfig: cluster.kubeconfig,
    core: cluster.core,
    adminKubeconfig: cluster.controlPlane.adminKubeconfig,
    nodeNames: cluster.nodes.map((n) => n.name),
    async startPods(wanted) {
      const pods = await startPods(cluster, wanted);
      for (const pod of pods) started.set(pod, pod);
      return pods;
    },
    async stopPods(pods) {
      await stopPods(cluster, pods.map((p) => started.get(p)!).filter(Boolean));
      for (const pod of pods) started.delete(pod);
    },
    async removeNamespaces(names) {
      for (const name of names) {
        await cluster.core.deleteNamespace({ name }).catch(() => undefined);
        await cluster.core.replaceNamespaceFinalize({ name, body: { metadata: { name }, spec: { finalizers: [] } } }).catch(() => undefined);
      }
    },
  };
}
