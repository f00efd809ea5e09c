// The stand-in cluster's DNS server (FORMAT.md version 2, `dns`): the pod
// kube-system/dns, labelled k8s-app: kube-dns (the pods Palisade's FQDN
// rules and DNS proxy take for the cluster's DNS servers), wired by the
// project's CNI plugin like any pod, running dnsmasq (Debian's dnsmasq-base,
// installed by scripts/bootstrap.sh) on port 53, UDP and TCP.
//
// dnsmasq has no upstream (--no-resolv) and reads no file: every name it
// knows is a --host-record with its own TTL, and `--address=/#/` makes every
// other name NXDOMAIN. It caches nothing (--cache-size=0, --no-negcache), so
// an answer is always the records as they are. A record's TTL is per name,
// which a hosts file (re-read on SIGHUP) cannot carry (its TTL is the global
// --local-ttl), and SIGHUP does not re-read options: setRecords() therefore
// restarts dnsmasq in the pod's namespace with the new records (the pod, its
// address and its Pod object stay; port 53 is closed for the few
// milliseconds of the restart, between a scenario's steps).
import { execa } from 'execa';
import type { Cluster } from './cluster.ts';
import type { SimNode } from './node.ts';
import type { SimPod } from './kubelet.ts';
import { startProcess } from './processes.ts';

export const DNS_POD = { namespace: 'kube-system', name: 'dns', labels: { 'k8s-app': 'kube-dns' } } as const;
export const DNSMASQ = '/usr/sbin/dnsmasq';
const READY = /started, version/;

/** A name's answer: its A records, each with the TTL. */
export interface DnsRecord {
  name: string;
  addresses: readonly string[];
  ttl: number;
}

/** dnsmasq's command line serving exactly `records` (pure). */
export function dnsmasqArgs(records: readonly DnsRecord[]): string[] {
  const args = [
    '--keep-in-foreground', '--log-facility=-', '--log-queries', '--conf-file=/dev/null', '--pid-file=',
    '--no-resolv', '--no-hosts', '--no-poll', '--cache-size=0', '--no-negcache',
    // Every name that no host record gives is NXDOMAIN (host records win over this).
    '--address=/#/',
  ];
  for (const r of records) {
    if (!Number.isInteger(r.ttl) || r.ttl < 0) throw new Error(`${r.name}: TTL ${r.ttl} is not a whole number of seconds`);
    // The answer holds them in an order of dnsmasq's own (not the order given), the same for the same set.
    for (const address of r.addresses) args.push(`--host-record=${r.name},${address},${r.ttl}`);
  }
  return args;
}

export interface DnsServer {
  pod: SimPod;
  /** The pod's address: where pods send their queries (port 53). */
  ip: string;
  /** Serves these records from now on (and nothing else). */
  setRecords(records: readonly DnsRecord[]): Promise<void>;
  /** Stops the pod (CNI DEL, its namespace and Pod object removed). */
  stop(): Promise<void>;
}

/**
 * Starts the DNS server pod on `node` (default: the cluster's last node)
 * serving `records`, and returns once every node's agent redirects queries
 * to it to its DNS proxy (waitDnsProxies), so the first query a scenario
 * makes is already seen by the proxies.
 */
export async function startDnsServer(cluster: Cluster, options: { records?: readonly DnsRecord[]; node?: SimNode; proxyTimeoutMs?: number } = {}): Promise<DnsServer> {
  const node = options.node ?? cluster.nodes.at(-1)!;
  const pod = await cluster.kubelet.startPod({
    ...DNS_POD,
    labels: { ...DNS_POD.labels },
    node,
    container: {
      image: 'palisade.local/dnsmasq',
      command: DNSMASQ,
      args: dnsmasqArgs(options.records ?? []),
      ports: [{ name: 'dns', containerPort: 53, protocol: 'UDP' }, { name: 'dns-tcp', containerPort: 53, protocol: 'TCP' }],
      readyLine: READY,
    },
  });
  const key = `${pod.namespace}/${pod.name}`;
  cluster.pods.set(key, pod); // cluster.stop() removes it if nothing else does
  let chain: Promise<void> = Promise.resolve();
  const server: DnsServer = {
    pod,
    ip: pod.ip,
    setRecords(records) {
      const args = dnsmasqArgs(records);
      const next = chain.then(async () => {
        await pod.server.stop();
        pod.server = await startProcess({
          name: `pod ${key}`, command: DNSMASQ, args, netns: pod.netns, logFile: `${cluster.runDir}/pod-${pod.namespace}-${pod.name}.log`, readyLine: READY, readyTimeoutMs: 10_000,
        });
      });
      chain = next.catch(() => undefined);
      return next;
    },
    async stop() {
      await chain;
      await cluster.kubelet.stopPod(pod);
      cluster.pods.delete(key);
    },
  };
  try {
    await waitDnsProxies(cluster.nodes, pod.ip, options.proxyTimeoutMs);
  } catch (error) {
    await server.stop().catch(() => undefined);
    throw error;
  }
  return server;
}

/**
 * Resolves once every node's datapath sends DNS queries to `upstream` to the
 * node's DNS proxy: pal_dns_upstreams lists it and pal_dns_proxy holds a
 * lease (the agents pick up a new DNS server pod within a second or so).
 */
export async function waitDnsProxies(nodes: readonly SimNode[], upstream: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (const node of nodes) {
    for (;;) {
      const [upstreams, proxy] = await Promise.all([dumpPinned(node, 'pal_dns_upstreams'), dumpPinned(node, 'pal_dns_proxy')]);
      const listed = upstreams.some((e) => e.key.subarray(0, 4).join('.') === upstream);
      const leased = proxy.some((e) => e.value.length >= 16 && e.value.readBigUInt64LE(8) !== 0n);
      if (listed && leased) break;
      if (Date.now() > deadline) {
        throw new Error(`${node.name}: the agent does not redirect DNS queries to ${upstream} to its proxy within ${timeoutMs} ms (listed: ${listed}, lease: ${leased}; agent log: ${node.agent.logTail(10)})`);
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

/** A pinned map's entries (bpftool's raw bytes). */
async function dumpPinned(node: SimNode, map: string): Promise<Array<{ key: Buffer; value: Buffer }>> {
  const out = await execa('bpftool', ['map', 'dump', 'pinned', `${node.bpffs}/${map}`, '-j'], { reject: false });
  if (out.exitCode !== 0) return [];
  const bytes = (hex: unknown) => Buffer.from((hex as string[]).map((h) => Number.parseInt(h, 16)));
  return (JSON.parse(String(out.stdout)) as Array<{ key: unknown; value: unknown }>).map((e) => ({ key: bytes(e.key), value: bytes(e.value) }));
}
