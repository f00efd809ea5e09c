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
import { IDENTITY_WORLD } from './ids.ts';
import type { CidrRegion, CompiledPolicy, Direction, DirectionPolicy, EndpointPolicy, PolicyEntry, PolicyRef, Protocol, RuleRef } from './types.ts';

export type DirectionVerdict =
  | { decision: 'unselected' }
  | { decision: 'allow'; rule: RuleRef; via: 'identity' | 'any' | 'region'; region?: string }
  | { decision: 'deny'; isolatedBy: PolicyRef[] };

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

/** One hook: `dp` is the endpoint's policy in the direction; the peer is the other end of the packet. */
export function evaluateDirection(
  dp: DirectionPolicy | undefined,
  peer: { address: Address; identity: number },
  protocol: Protocol,
  port: number,
): DirectionVerdict {
  if (!dp) return { decision: 'unselected' };
  const ofClass = (kind: 'identity' | 'any') =>
    dp.entries.filter((e) => (kind === 'any' ? e.peer.kind === 'any' : e.peer.kind === 'identity' && e.peer.identity === peer.identity));
  for (const via of ['identity', 'any'] as const) {
    const hit = lookupClass(ofClass(via), protocol, port);
    if (hit) return { decision: 'allow', rule: hit.rule, via };
  }
  const region = longestPrefixRegion(dp.cidrRegions, peer.address);
  const hit = region && lookupClass(region.entries, protocol, port);
  if (hit) return { decision: 'allow', rule: hit.rule, via: 'region', region: region.prefix };
  return { decision: 'deny', isolatedBy: dp.isolatedBy };
}

/** Local endpoints by (normalized) IP. */
export function endpointsByIp(compiled: CompiledPolicy): Map<string, EndpointPolicy> {
  const m = new Map<string, EndpointPolicy>();
  for (const e of compiled.endpoints.values()) m.set(e.ip, e);
  return m;
}

/** The verdict for a new connection from `src` to `dst` (addresses). */
export function evaluate(compiled: CompiledPolicy, packet: Packet, byIp: Map<string, EndpointPolicy> = endpointsByIp(compiled)): PacketVerdict {
  const src = parseAddress(packet.src);
  const dst = parseAddress(packet.dst);
  if (!src || !dst) throw new Error(`evaluate: not an address: ${!src ? packet.src : packet.dst}`);
  const srcText = formatAddress(src);
  const dstText = formatAddress(dst);
  const identityOf = (text: string) => compiled.ipcache.get(text) ?? IDENTITY_WORLD;
  const hook = (ep: EndpointPolicy | undefined, direction: Direction, peer: Address, peerText: string): HookVerdict | undefined =>
    ep && {
      endpoint: ep.endpoint,
      direction,
      verdict: evaluateDirection(ep[direction], { address: peer, identity: identityOf(peerText) }, packet.protocol, packet.port),
    };
  const egress = hook(byIp.get(srcText), 'egress', dst, dstText);
  const ingress = hook(byIp.get(dstText), 'ingress', src, srcText);
  const ok = (h: HookVerdict | undefined) => !h || h.verdict.decision !== 'deny';
  return { allowed: ok(egress) && ok(ingress), egress, ingress };
}
