// The datapath's verdict over compiled policy, computed the way ADR 0001's
// per-packet algorithm does (step 5 for a new connection), without maps:
// the source endpoint's egress hook, then the destination endpoint's ingress
// hook. For each hook: not selected in that direction -> pass; else the peer
// is allowed if its identity class (ipcache: pod IP -> identity, else world),
// the ANY class, or the CIDR region class (longest-prefix match of the peer
// address over the endpoint's regions in that direction) allows the protocol
// and port. Within a class the ADR's order is kept: an all-protocols entry,
// then an exact-port entry, then an all-ports-of-the-protocol entry.
// Used by the property tests and by `policy trace`.
//
// IPv6 packets are evaluated like IPv4 ones: this is the policy's verdict;
// the IPv4-only datapath of today drops IPv6 at every endpoint (DROP_NOT_IPV4).

import { addressInPrefix, formatAddress, parseAddress, parseCidr, type Address } from './cidr.ts';
import { IDENTITY_CLUSTER, IDENTITY_WORLD, isClusterIdentity } from './ids.ts';
import type { CidrRegion, CompiledPolicy, Direction, DirectionPolicy, EndpointPolicy, PolicyEntry, PolicyRef, Protocol, RuleRef } from './types.ts';

export type PeerVia = 'identity' | 'any' | 'cluster' | 'region';

/**
 * `deny` with `rule`: a deny rule matched (`isolatedBy` is then empty);
 * without: default deny, no allow rule of the isolating policies matched.
 */
export type DirectionVerdict =
  | { decision: 'unselected' }
  | { decision: 'allow'; rule: RuleRef; via: PeerVia; region?: string }
  | { decision: 'deny'; isolatedBy: PolicyRef[]; rule?: RuleRef; via?: PeerVia; region?: string };

export interface HookVerdict {
  endpoint: string;
  direction: Direction;
  verdict: DirectionVerdict;
}

export interface PacketVerdict {
  allowed: boolean;
  /** The source endpoint's egress hook, when the source is a local endpoint. */
  egress: HookVerdict | undefined;
  /** The destination endpoint's ingress hook, when the destination is a local endpoint. */
  ingress: HookVerdict | undefined;
}

export interface Packet {
  src: string;
  dst: string;
  protocol: Protocol;
  port: number;
}

/** The entry of one class that allows (protocol, port), in the ADR's lookup order. */
export function lookupClass(entries: Iterable<PolicyEntry>, protocol: Protocol, port: number): PolicyEntry | undefined {
  let exact: PolicyEntry | undefined;
  let anyPort: PolicyEntry | undefined;
  for (const e of entries) {
    if (e.protocol === 'ANY') return e;
    if (e.protocol !== protocol) continue;
    if (e.port === 'any') anyPort ??= e;
    else if (e.port.from <= port && port <= e.port.to) exact ??= e;
  }
  return exact ?? anyPort;
}

/** The most specific region containing the address (the `pal_policy_cidr` LPM lookup). */
export function longestPrefixRegion(regions: readonly CidrRegion[], a: Address): CidrRegion | undefined {
  let best: CidrRegion | undefined;
  let bestLen = -1;
  for (const r of regions) {
    const parsed = parseCidr(r.prefix);
    const p = typeof parsed === 'string' ? undefined : parsed;
    if (p && p.len > bestLen && addressInPrefix(p, a)) {
      best = r;
      bestLen = p.len;
    }
  }
  return best;
}

/** The entry of a lane (allow or deny) that matches, in the datapath's class order: identity, ANY, CLUSTER, CIDR region. */
function matchLane(
  dp: DirectionPolicy,
  peer: { address: Address; identity: number },
  protocol: Protocol,
  port: number,
): { entry: PolicyEntry; via: PeerVia; region?: string } | undefined {
  const inCluster = isClusterIdentity(peer.identity);
  const ofClass = (via: 'identity' | 'any' | 'cluster') =>
    dp.entries.filter((e) =>
      via === 'any' ? e.peer.kind === 'any' : e.peer.kind === 'identity' && e.peer.identity === (via === 'identity' ? peer.identity : IDENTITY_CLUSTER),
    );
  for (const via of ['identity', 'any', 'cluster'] as const) {
    if (via === 'cluster' && !inCluster) continue;
    const entry = lookupClass(ofClass(via), protocol, port);
    if (entry) return { entry, via };
  }
  const region = longestPrefixRegion(dp.cidrRegions, peer.address);
  const entry = region && lookupClass(region.entries, protocol, port);
  return entry ? { entry, via: 'region', region: region.prefix } : undefined;
}

/**
 * Every rule of a lane with an entry that matches the connection (not just
 * the first, as the datapath records): the DNS proxy unions their DNS
 * restrictions.
 */
export function matchingRules(dp: DirectionPolicy, peer: { address: Address; identity: number }, protocol: Protocol, port: number): RuleRef[] {
  const inCluster = isClusterIdentity(peer.identity);
  const fits = (e: PolicyEntry) =>
    e.protocol === 'ANY' || (e.protocol === protocol && (e.port === 'any' || (e.port.from <= port && port <= e.port.to)));
  const out = new Map<string, RuleRef>();
  const add = (e: PolicyEntry) => {
    if (fits(e)) out.set(JSON.stringify(e.rule), e.rule);
  };
  for (const e of dp.entries) {
    if (e.peer.kind === 'any' || (e.peer.kind === 'identity' && (e.peer.identity === peer.identity || (inCluster && e.peer.identity === IDENTITY_CLUSTER)))) add(e);
  }
  const region = longestPrefixRegion(dp.cidrRegions, peer.address);
  for (const e of region?.entries ?? []) add(e);
  return [...out.values()];
}

/**
 * One hook: `dp` is the endpoint's policy in the direction (undefined: not
 * isolated), `deny` its deny rules there; the peer is the other end of the
 * packet. A deny rule decides first, isolated or not.
 */
export function evaluateDirection(
  dp: DirectionPolicy | undefined,
  peer: { address: Address; identity: number },
  protocol: Protocol,
  port: number,
  deny?: DirectionPolicy,
): DirectionVerdict {
  const denied = deny && matchLane(deny, peer, protocol, port);
  if (denied) return { decision: 'deny', isolatedBy: [], rule: denied.entry.rule, via: denied.via, ...(denied.region ? { region: denied.region } : {}) };
  if (!dp) return { decision: 'unselected' };
  const hit = matchLane(dp, peer, protocol, port);
  if (hit) return { decision: 'allow', rule: hit.entry.rule, via: hit.via, ...(hit.region ? { region: hit.region } : {}) };
  return { decision: 'deny', isolatedBy: dp.isolatedBy };
}

/** Local endpoints by (normalized) IP. */
export function endpointsByIp(compiled: CompiledPolicy): Map<string, EndpointPolicy> {
  const m = new Map<string, EndpointPolicy>();
  for (const e of compiled.endpoints.values()) m.set(e.ip, e);
  return m;
}

/**
 * The verdict for a new connection from `src` to `dst` (addresses).
 * `nodeIdentity` gives the identity of an address that is not a pod's as
 * the endpoint's node sees it (its node and API server addresses: HOST,
 * REMOTE_NODE, KUBE_APISERVER...); else pods' by the ipcache, else world.
 */
export function evaluate(
  compiled: CompiledPolicy,
  packet: Packet,
  byIp: Map<string, EndpointPolicy> = endpointsByIp(compiled),
  nodeIdentity: (endpoint: EndpointPolicy, address: string) => number | undefined = () => undefined,
): PacketVerdict {
  const src = parseAddress(packet.src);
  const dst = parseAddress(packet.dst);
  if (!src || !dst) throw new Error(`evaluate: not an address: ${!src ? packet.src : packet.dst}`);
  const srcText = formatAddress(src);
  const dstText = formatAddress(dst);
  // Node addresses first, as the datapath's ipcache has them.
  const identityOf = (ep: EndpointPolicy, text: string) => nodeIdentity(ep, text) ?? compiled.ipcache.get(text) ?? IDENTITY_WORLD;
  const hook = (ep: EndpointPolicy | undefined, direction: Direction, peer: Address, peerText: string): HookVerdict | undefined =>
    ep && {
      endpoint: ep.endpoint,
      direction,
      verdict: evaluateDirection(ep[direction], { address: peer, identity: identityOf(ep, peerText) }, packet.protocol, packet.port, ep[`${direction}Deny`]),
    };
  const egress = hook(byIp.get(srcText), 'egress', dst, dstText);
  const ingress = hook(byIp.get(dstText), 'ingress', src, srcText);
  const ok = (h: HookVerdict | undefined) => !h || h.verdict.decision !== 'deny';
  return { allowed: ok(egress) && ok(ingress), egress, ingress };
}
