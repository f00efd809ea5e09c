// The agent's configuration, parsed once from its command line by a schema.
// Each field's default is documented beside it.
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { z } from 'zod';

const schema = z.object({
  /** This node's name, as in its Node object. Required. */
  node: z.string().min(1),
  /** Kubeconfig to reach the API server; default: in-cluster service account. */
  kubeconfig: z.string().optional(),
  /** Directory for persistent state (IPAM allocations). Default /var/lib/palisade. */
  stateDir: z.string().default('/var/lib/palisade'),
  /** Unix socket the CNI binary connects to. Default /run/palisade/cni.sock. */
  cniSocket: z.string().default('/run/palisade/cni.sock'),
  /** bpffs directory for this node's pinned programs and maps. Default /sys/fs/bpf/palisade. */
  bpffs: z.string().default('/sys/fs/bpf/palisade'),
  /** The datapath's eBPF object. Default: build/bpf/endpoint.bpf.o of this installation. */
  bpfObject: z.string().default(fileURLToPath(new URL('../build/bpf/endpoint.bpf.o', import.meta.url))),
  /** Seconds between two passes of the conntrack garbage collector (agent/conntrack-gc.ts). Default 30. */
  ctGcIntervalSeconds: z.coerce.number().positive().default(30),
  /**
   * The most policy-map entries one endpoint may have (pal_policy, pal_policy_ports and
   * pal_policy_cidr together). An endpoint whose policy needs more is denied everything
   * and reported, so that no policy one namespace may write can crowd the node's other
   * endpoints out of the maps. Default 65536.
   */
  maxEntriesPerEndpoint: z.coerce.number().int().positive().default(65_536),
  /**
   * Whether traffic from this node's own address to its pods is admitted whatever their
   * ingress policy (the datapath's load-time global pal_host_reaches_pods). Kubernetes
   * expects it: kubelet probes come from the node. It also admits anything the node SNATs
   * to its own address, e.g. NodePort traffic from outside the cluster with
   * externalTrafficPolicy Cluster (README, "Enforcement semantics worth knowing"). With
   * false, host traffic is judged by the pods' policies like any peer (an ipBlock of the
   * node's address admits it). `--host-reaches-pods true|false`; default true. Applies
   * when the agent loads the datapath.
   */
  hostReachesPods: z.enum(['true', 'false']).default('true').transform((v) => v === 'true'),
  /**
   * Whether this node's pods' connections to destinations outside the cluster leave with
   * the node's address (SNAT: iptables MASQUERADE in the nat chain PALISADE-MASQUERADE),
   * as Cilium does by default. Outside the cluster means any address that is no node's pod
   * CIDR and no node's address, as the Node objects give them. With false they leave with
   * the pod's address: the network beyond the nodes must then route every pod CIDR to its
   * node (native routing), or replies never come back. Connections from outside to a pod
   * are never translated either way; egress policy judges the pod's own address on its
   * veth before any SNAT. `--masquerade true|false`; default true (ADR 0011). With false,
   * the chain an earlier agent wrote is removed at start.
   */
  masquerade: z.enum(['true', 'false']).default('true').transform((v) => v === 'true'),
  /**
   * The most conntrack entries one pod may hold (the datapath's load-time global
   * pal_ct_endpoint_max, ADR 0003). Every pod keeps a reserve of its own whatever the
   * others do; this bounds how much of the shared rest of the node's table a single pod
   * can take, so one pod opening connections fast cannot starve the others' new ones.
   * Default 65536 (a quarter of the table). Applies when the agent loads the datapath.
   */
  ctMaxPerEndpoint: z.coerce.number().int().positive().default(65_536),
  /** Flows kept in memory for queries (agent/flows/store.ts). Default 300000: a minute at 5,000 flows/s. */
  flowStoreSize: z.coerce.number().int().positive().default(300_000),
  /** Seconds between two reports of a live connection's counts (the datapath's pal_flow_update_units). Default 60. */
  flowUpdateSeconds: z.coerce.number().positive().default(60),
  /** Bytes of the datapath's flow ring buffer (a power of 2, at least a page). Default 16 MiB. */
  flowRingBytes: z.coerce.number().int().refine((n) => n >= 4096 && (n & (n - 1)) === 0, 'a power of 2 of at least 4096').default(16 << 20),
  /** Write every flow as a JSON line to this file, rotated by size (docs/flows.md). Default: no export. */
  flowExportFile: z.string().optional(),
  /** Bytes of the export file before it is rotated. Default 10 MiB. */
  flowExportMaxBytes: z.coerce.number().int().positive().default(10 << 20),
  /** Rotated export files kept (FILE.1 .. FILE.N). Default 5. */
  flowExportFiles: z.coerce.number().int().nonnegative().default(5),
  /** `host:port` of the flow API (HTTPS) that Palisade's aggregated API server queries. Default: not served. */
  flowsListen: z.string().optional(),
  /** TLS certificate and key (PEM files) of the flow API. */
  flowsTlsCert: z.string().optional(),
  flowsTlsKey: z.string().optional(),
  /** A file holding the bearer token the flow API requires (the aggregated API server's). */
  flowsTokenFile: z.string().optional(),
  /** `host:port` of the Prometheus metrics endpoint (/metrics, plain HTTP). Default: not served. */
  metricsListen: z.string().optional(),
  /**
   * Whether the node's DNS proxy runs (ADR 0012): the DNS queries of pods that FQDN or DNS rules
   * select are redirected to it, it refuses names their DNS rules do not allow and learns the
   * answers before the pods get them. With false, toFQDNs rules learn nothing (they allow no
   * address: fail closed) and DNS rules are not enforced beyond their ports. `--dns-proxy
   * true|false`; default true.
   */
  dnsProxy: z.enum(['true', 'false']).default('true').transform((v) => v === 'true'),
  /**
   * The first of the proxy's ports on the node's address, one per DNS server. Default 887:
   * privileged ports, so that while no proxy runs (until its lease ends) no unprivileged
   * process on the node can bind them and answer pods' queries.
   */
  dnsProxyPortBase: z.coerce.number().int().min(1).max(65000).default(887),
  /**
   * The shortest time a learned address stays allowed, whatever its TTL (Cilium's
   * tofqdns-min-ttl): an answer with TTL 0 must still let the pod connect. Default 2.
   */
  dnsMinTtlSeconds: z.coerce.number().int().nonnegative().default(2),
  /** The longest time a learned address stays allowed without being answered again. Default 86400. */
  dnsMaxTtlSeconds: z.coerce.number().int().positive().default(86_400),
  /** The answer to a query for a name the pod's DNS rules do not allow: REFUSED (default) or NXDOMAIN. */
  dnsRefuse: z.enum(['REFUSED', 'NXDOMAIN']).default('REFUSED'),
  /**
   * Whether the XDP prefilter runs on the node's uplinks (ADR 0013): frames from sources that a
   * cluster-wide ingress deny rule denies to every pod on every port are dropped there, before
   * the kernel builds a socket buffer; the tc programs still enforce everything. Loaded
   * from prefilter.bpf.o beside --bpf-object. `--prefilter true|false`; default true. With
   * false, a prefilter an earlier agent left attached is removed at start.
   */
  prefilter: z.enum(['true', 'false']).default('true').transform((v) => v === 'true'),
  /** The devices the prefilter attaches to, comma-separated. Default: those holding the node's InternalIP. */
  prefilterDevices: z.string().optional().transform((v) => (v ? v.split(',').map((d) => d.trim()).filter((d) => d !== '') : undefined)),
}).refine((c) => !c.flowsListen || (c.flowsTlsCert && c.flowsTlsKey && c.flowsTokenFile), {
  message: '--flows-listen needs --flows-tls-cert, --flows-tls-key and --flows-token-file: flows are only served to the aggregated API server',
  path: ['flowsListen'],
});
export type AgentConfig = z.infer<typeof schema>;

export function parseAgentConfig(argv: string[]): AgentConfig {
  const { values } = parseArgs({
    args: argv,
    options: {
      node: { type: 'string' },
      kubeconfig: { type: 'string' },
      'state-dir': { type: 'string' },
      'cni-socket': { type: 'string' },
      bpffs: { type: 'string' },
      'bpf-object': { type: 'string' },
      'ct-gc-interval-seconds': { type: 'string' },
      'max-entries-per-endpoint': { type: 'string' },
      'host-reaches-pods': { type: 'string' },
      masquerade: { type: 'string' },
      'ct-max-per-endpoint': { type: 'string' },
      'flow-store-size': { type: 'string' },
      'flow-update-seconds': { type: 'string' },
      'flow-ring-bytes': { type: 'string' },
      'flow-export-file': { type: 'string' },
      'flow-export-max-bytes': { type: 'string' },
      'flow-export-files': { type: 'string' },
      'flows-listen': { type: 'string' },
      'flows-tls-cert': { type: 'string' },
      'flows-tls-key': { type: 'string' },
      'flows-token-file': { type: 'string' },
      'metrics-listen': { type: 'string' },
      'dns-proxy': { type: 'string' },
      'dns-proxy-port-base': { type: 'string' },
      'dns-min-ttl-seconds': { type: 'string' },
      'dns-max-ttl-seconds': { type: 'string' },
      'dns-refuse': { type: 'string' },
      prefilter: { type: 'string' },
      'prefilter-devices': { type: 'string' },
    },
    strict: true,
  });
  const parsed = schema.safeParse({
    node: values.node,
    kubeconfig: values.kubeconfig,
    stateDir: values['state-dir'],
    cniSocket: values['cni-socket'],
    bpffs: values.bpffs,
    bpfObject: values['bpf-object'],
    ctGcIntervalSeconds: values['ct-gc-interval-seconds'],
    maxEntriesPerEndpoint: values['max-entries-per-endpoint'],
    hostReachesPods: values['host-reaches-pods'],
    masquerade: values.masquerade,
    ctMaxPerEndpoint: values['ct-max-per-endpoint'],
    flowStoreSize: values['flow-store-size'],
    flowUpdateSeconds: values['flow-update-seconds'],
    flowRingBytes: values['flow-ring-bytes'],
    flowExportFile: values['flow-export-file'],
    flowExportMaxBytes: values['flow-export-max-bytes'],
    flowExportFiles: values['flow-export-files'],
    flowsListen: values['flows-listen'],
    flowsTlsCert: values['flows-tls-cert'],
    flowsTlsKey: values['flows-tls-key'],
    flowsTokenFile: values['flows-token-file'],
    metricsListen: values['metrics-listen'],
    dnsProxy: values['dns-proxy'],
    dnsProxyPortBase: values['dns-proxy-port-base'],
    dnsMinTtlSeconds: values['dns-min-ttl-seconds'],
    dnsMaxTtlSeconds: values['dns-max-ttl-seconds'],
    dnsRefuse: values['dns-refuse'],
    prefilter: values.prefilter,
    prefilterDevices: values['prefilter-devices'],
  });
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const flag = String(issue.path[0]).replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
    throw new Error(`agent configuration: --${flag}: ${issue.message}`);
  }
  return parsed.data;
}
