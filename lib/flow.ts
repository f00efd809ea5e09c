// The flow record users see (`kubectl palisade observe -o json`, the agent's
// JSON-lines export): one line per connection event or drop, in a schema
// that is documented in docs/flows.md and only ever grows. Pure types and
// small helpers, shared by the agent, the aggregated API and the plugin.

/** A policy as flows name it: `NetworkPolicy x/deny-all`. */
export interface PolicyName {
  kind: string;
  namespace?: string;
  name: string;
}

export interface FlowPeer {
  ip: string;
  /** TCP, UDP and SCTP only. */
  port?: number;
  /** The security identity number (pods 256+; 1 host, 2 world, 6 remote node; 0 not known). */
  identity: number;
  /** A pod of the cluster, when the address is one. */
  pod?: { namespace: string; name: string };
  labels?: Record<string, string>;
  /**
   * What the address is when it is no pod known here: a node (the API server on a node's address is that node: its
   * `identity` says which), the API server elsewhere, a pod whose identity is not allocated yet (init), or world.
   */
  entity?: 'host' | 'remote-node' | 'kube-apiserver' | 'init' | 'world';
}

export interface Flow {
  /** RFC 3339 with nanoseconds, UTC. */
  time: string;
  node: string;
  /** new: a connection opened; drop: a packet dropped; end: a connection ended; update: a live connection's counts; drop-summary: drops after a drop event of the same kind; dns: a DNS query the node's proxy answered or refused. */
  type: 'new' | 'drop' | 'end' | 'update' | 'drop-summary' | 'dns';
  verdict: 'forwarded' | 'dropped';
  /** The datapath's reason (datapath/abi.ts REASON), e.g. ALLOW_POLICY, DROP_POLICY, DROP_POLICY_DENY. */
  reason: string;
  /** Where it was judged: egress leaving the source pod, ingress entering the destination pod. */
  direction: 'ingress' | 'egress';
  /** The pod whose hook saw it. */
  endpoint?: { namespace: string; name: string };
  protocol: string;
  source: FlowPeer;
  destination: FlowPeer;
  tcpFlags?: readonly string[];
  /** To a Service: the address and port the pod sent to (destination is the backend). */
  service?: { ip: string; port: number };
  /** new, drop: 1 packet (a drop-summary: the drops it stands for); end, update: the connection's packets so far, both ways. */
  packets: number;
  bytes: number;
  /** Whether a policy selects the endpoint in this direction (false: everything passes there). */
  isolated: boolean;
  /** The policies that decided: the one whose rule allowed it (or whose deny rule dropped it), or, for a default deny, every policy that isolates the endpoint in this direction. */
  policies: readonly PolicyName[];
  /** The deciding rule: the allowing rule (index in the policy's ingress or egress list), or with `deny` the deny rule that dropped it (index in a Palisade policy's ingressDeny or egressDeny). */
  rule?: PolicyName & { direction: 'ingress' | 'egress'; index: number; deny?: true };
  defaultDeny?: boolean;
  /** type dns: the query and its answer (refused: the pod's DNS rules do not allow the name; failed: no answer, or SERVFAIL). */
  dns?: DnsFacts;
  /** A connection to an address learned from DNS: the names it was learned for (what an FQDN rule matched). */
  fqdn?: readonly string[];
}

export interface DnsFacts {
  name: string;
  /** The query type: A, AAAA, ... */
  qtype: string;
  /** NOERROR, NXDOMAIN, REFUSED, SERVFAIL, TIMEOUT... */
  rcode: string;
  /** The IPv4 addresses of the answer. */
  addresses: readonly string[];
  /** The lowest TTL of the answer's records, seconds. */
  ttl: number;
  /** From the query's arrival to the answer's release, learning included, ms. */
  latencyMs: number;
}

/** `NetworkPolicy x/deny-all` */
export function policyText(p: PolicyName): string {
  return p.namespace ? `${p.kind} ${p.namespace}/${p.name}` : `${p.kind} ${p.name}`;
}

const TCP_FLAG_NAMES = ['FIN', 'SYN', 'RST', 'PSH', 'ACK', 'URG', 'ECE', 'CWR'];

export function tcpFlagNames(flags: number): string[] {
  return TCP_FLAG_NAMES.filter((_, bit) => flags & (1 << bit));
}

const PROTOCOL_NAMES: Record<number, string> = { 1: 'ICMP', 6: 'TCP', 17: 'UDP', 132: 'SCTP' };

export function protocolName(protocol: number): string {
  return PROTOCOL_NAMES[protocol] ?? String(protocol);
}

let lastSecond = -1;
let lastPrefix = '';

/** Nanoseconds since the Unix epoch as RFC 3339 with nanoseconds (the date part is formatted once a second). */
export function rfc3339Nanos(ns: bigint): string {
  const second = Number(ns / 1_000_000_000n);
  if (second !== lastSecond) {
    lastSecond = second;
    lastPrefix = new Date(second * 1000).toISOString().slice(0, 19);
  }
  return `${lastPrefix}.${String(Number(ns % 1_000_000_000n)).padStart(9, '0')}Z`;
}
