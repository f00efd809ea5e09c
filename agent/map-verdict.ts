// Pure: the verdict the node's eBPF maps give a new connection, computed
// from their contents (the agent's record of what it wrote, hex-encoded as
// in datapath-plan.ts) by the datapath's own algorithm (evaluate(),
// lane_matches() and class_allows() in bpf/endpoint.bpf.c, ADR 0001; the
// deny lanes and the CLUSTER class, ADR 0010). `kubectl palisade policy
// trace` compares it with the compiler's answer: a difference means the
// maps do not hold what the policies say.
import {
  DENY_FLAGS_SHIFT,
  DIRECTION,
  ENDPOINT_FLAG,
  endpointInfo,
  IDENTITY,
  ipcacheKey,
  ipcacheValue,
  ipv4Key,
  policyCidrKey,
  policyCidrValue,
  policyKey,
  policyPortKey,
  policyValue,
  POLICY_FLAG,
  PROTOCOL,
  u32Key,
  type ReasonName,
} from '../datapath/abi.ts';
import { isClusterIdentity } from '../policy/ids.ts';
import type { MapContents } from './datapath-plan.ts';

export interface MapVerdict {
  reason: ReasonName;
  /** The datapath's number of the deciding rule (0: the host rule, or an unenforced direction; DROP_POLICY_DENY: the deny rule; DROP_POLICY: the default rule). */
  ruleId: number;
  /** The peer's identity as the ipcache gives it. */
  peerIdentity: number;
}

export interface MapQuery {
  /** The endpoint's host veth (its pal_endpoints key). */
  ifindex: number;
  direction: 'ingress' | 'egress';
  peer: string;
  protocol: 'TCP' | 'UDP' | 'SCTP';
  port: number;
  hostReachesPods: boolean;
}

const PROTO = { TCP: PROTOCOL.TCP, UDP: PROTOCOL.UDP, SCTP: PROTOCOL.SCTP } as const;
const FLAGS = {
  TCP: { any: POLICY_FLAG.TCP_ANY_PORT, ports: POLICY_FLAG.TCP_PORTS, ranges: POLICY_FLAG.TCP_RANGES },
  UDP: { any: POLICY_FLAG.UDP_ANY_PORT, ports: POLICY_FLAG.UDP_PORTS, ranges: POLICY_FLAG.UDP_RANGES },
  SCTP: { any: POLICY_FLAG.SCTP_ANY_PORT, ports: POLICY_FLAG.SCTP_PORTS, ranges: POLICY_FLAG.SCTP_RANGES },
} as const;

/** The verdict of a new connection at endpoint `q.ifindex`, or undefined when the maps have no such endpoint. */
export function mapVerdict(maps: MapContents, q: MapQuery): MapVerdict | undefined {
  const raw = maps.get('pal_endpoints')?.get(u32Key.encode(q.ifindex).toString('hex'));
  if (!raw) return undefined;
  const ep = endpointInfo.decode(Buffer.from(raw, 'hex'));
  const dir = q.direction === 'ingress' ? DIRECTION.INGRESS : DIRECTION.EGRESS;
  const enforced = ep.flags & (ENDPOINT_FLAG.INGRESS_ENFORCED << dir);
  const denies = ep.flags & (ENDPOINT_FLAG.INGRESS_DENY << dir);
  const peerIdentity = identityOf(maps, q.peer);
  // evaluate(): the deny lane first, whether or not the direction is enforced, before the host rule.
  if (denies) {
    const rule = laneMatches(maps, ep.endpointId, ep.flags >>> DENY_FLAGS_SHIFT, dir, dir + DIRECTION.INGRESS_DENY, peerIdentity, q);
    if (rule !== undefined) return { reason: 'DROP_POLICY_DENY', ruleId: rule, peerIdentity };
  }
  if (!enforced) return { reason: 'PASS_UNSELECTED', ruleId: 0, peerIdentity };
  const defaultRule = dir === DIRECTION.INGRESS ? ep.ingressDefaultRule : ep.egressDefaultRule;
  const host = peerIdentity === IDENTITY.HOST || peerIdentity === IDENTITY.HOST_KUBE_APISERVER; // this node, API server or not
  if (dir === DIRECTION.INGRESS && host && q.hostReachesPods) return { reason: 'ALLOW_POLICY', ruleId: 0, peerIdentity };
  const rule = laneMatches(maps, ep.endpointId, ep.flags, dir, dir, peerIdentity, q);
  return rule === undefined ? { reason: 'DROP_POLICY', ruleId: defaultRule, peerIdentity } : { reason: 'ALLOW_POLICY', ruleId: rule, peerIdentity };
}

/**
 * lane_matches(): the rule of the first class of lane `lane` (key direction) that matches: the peer's identity, ANY,
 * CLUSTER (a peer in the cluster), the CIDR region of its address; each of the last three only when the lane's flags
 * (`flags`, in the allow lane's layout) announce it.
 */
function laneMatches(maps: MapContents, endpointId: number, flags: number, dir: number, lane: number, peerIdentity: number, q: MapQuery): number | undefined {
  const allows = (klass: number) => classAllows(maps, endpointId, klass, lane, q);
  let rule = allows(peerIdentity);
  if (rule === undefined && flags & (ENDPOINT_FLAG.INGRESS_ANY << dir)) rule = allows(IDENTITY.ANY);
  if (rule === undefined && flags & (ENDPOINT_FLAG.INGRESS_CLUSTER << dir) && isClusterIdentity(peerIdentity)) rule = allows(IDENTITY.CLUSTER);
  if (rule === undefined && flags & (ENDPOINT_FLAG.INGRESS_CIDR << dir)) {
    const region = longestPrefix(maps.get('pal_policy_cidr'), (k) => {
      const key = policyCidrKey.decode(Buffer.from(k, 'hex'));
      return key.endpointId === endpointId && key.direction === lane ? key.cidr : undefined;
    }, q.peer);
    if (region) rule = allows(policyCidrValue.decode(Buffer.from(region, 'hex')).identity);
  }
  return rule;
}

/** class_allows(): the summary entry, then the exact port, the port prefixes and the any-port entry. */
function classAllows(maps: MapContents, endpointId: number, identity: number, direction: number, q: MapQuery): number | undefined {
  const policy = maps.get('pal_policy');
  const entry = (protocol: number, dport: number) => {
    const v = policy?.get(policyKey.encode({ endpointId, identity, direction, protocol, dport }).toString('hex'));
    return v === undefined ? undefined : policyValue.decode(Buffer.from(v, 'hex'));
  };
  const summary = entry(0, 0);
  if (!summary) return undefined;
  if (summary.flags & POLICY_FLAG.ALL) return summary.ruleId;
  const f = FLAGS[q.protocol];
  const protocol = PROTO[q.protocol];
  if (summary.flags & f.ports && q.port) {
    const exact = entry(protocol, q.port);
    if (exact) return exact.ruleId;
  }
  if (summary.flags & f.ranges && q.port) {
    for (const [k, v] of maps.get('pal_policy_ports') ?? []) {
      const key = policyPortKey.decode(Buffer.from(k, 'hex'));
      if (key.endpointId !== endpointId || key.identity !== identity || key.direction !== direction || key.protocol !== protocol) continue;
      const mask = key.portBits === 0 ? 0 : (0xffff << (16 - key.portBits)) & 0xffff;
      if ((q.port & mask) === key.port) return policyValue.decode(Buffer.from(v, 'hex')).ruleId;
    }
  }
  if (summary.flags & f.any) return entry(protocol, 0)?.ruleId;
  return undefined;
}

/** peer_identity(): the exact pal_ipcache4 entry, else the longest pal_ipcache prefix, else world. */
function identityOf(maps: MapContents, ip: string): number {
  const exact = maps.get('pal_ipcache4')?.get(ipv4Key.encode(ip).toString('hex'));
  if (exact) return ipcacheValue.decode(Buffer.from(exact, 'hex')).identity;
  const value = longestPrefix(maps.get('pal_ipcache'), (k) => ipcacheKey.decode(Buffer.from(k, 'hex')), ip);
  return value ? ipcacheValue.decode(Buffer.from(value, 'hex')).identity : IDENTITY.WORLD;
}

/** The value of the longest prefix (from `prefixOf(key)`, undefined to skip a key) that holds `ip`. */
function longestPrefix(map: Map<string, string> | undefined, prefixOf: (key: string) => string | undefined, ip: string): string | undefined {
  const addr = toNumber(ip);
  let best: { bits: number; value: string } | undefined;
  for (const [k, v] of map ?? []) {
    const prefix = prefixOf(k);
    if (!prefix) continue;
    const [base = '', bitsText = '32'] = prefix.split('/');
    const bits = Number(bitsText);
    const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
    if (((addr & mask) >>> 0) === toNumber(base) && (!best || bits > best.bits)) best = { bits, value: v };
  }
  return best?.value;
}

function toNumber(ip: string): number {
  return ip.split('.').reduce((n, part) => n * 256 + Number(part), 0);
}

