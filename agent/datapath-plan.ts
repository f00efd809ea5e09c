// Pure: the contents the datapath's maps must have, from the compiled policy
// of the node's endpoints and the cluster's addresses (ADR 0001), and the
// smallest set of writes that takes the maps from what they hold to that.
// Keys and values are kept encoded (hex of the C layout, see datapath/abi.ts)
// so that "nothing changed" is a string comparison and a resync after a
// restart compares against a plain dump of the pinned maps.
import { isIPv4 } from 'node:net';
import {
  DENY_FLAGS_SHIFT,
  DIRECTION,
  ENDPOINT_FLAG,
  endpointInfo,
  IDENTITY,
  ipcacheKey,
  ipcacheValue,
  ipv4Key,
  LB_FLAG,
  lb4Backend,
  lb4BackendKey,
  lb4Key,
  lb4Service,
  MAPS,
  policyCidrKey,
  policyCidrValue,
  policyKey,
  policyValue,
  POLICY_FLAG,
  PROTOCOL,
  u32Key,
  type MapName,
} from '../datapath/abi.ts';
import { apiServerIdentity, fnv1a32, policyRefString, ruleRefString } from '../policy/ids.ts';
import { parseIpv4 } from './ipam/ipv4.ts';
import type { DirectionPolicy, EndpointPolicy, PolicyEntry, PolicyRef, RuleRef } from '../policy/types.ts';

/**
 * The maps the agent owns the contents of (conntrack, config and metrics are
 * the datapath's). Make-before-break writes updates in this order and deletes
 * in the reverse (map-writes.ts): a frontend's backend slots are written
 * before its count rises, and deleted after it falls (bpf/lib/lb.h).
 */
export const PLANNED_MAPS = ['pal_policy', 'pal_policy_ports', 'pal_policy_cidr', 'pal_ipcache4', 'pal_ipcache', 'pal_endpoints', 'pal_lb4_backends', 'pal_lb4'] as const satisfies readonly MapName[];

/** The Service maps (bpf/lib/lb.h), node-wide. */
export const LB_MAPS = ['pal_lb4_backends', 'pal_lb4'] as const;
export type LbMap = (typeof LB_MAPS)[number];
export type PlannedMap = (typeof PLANNED_MAPS)[number];

/** The maps whose entries belong to one endpoint (keyed by its endpoint id). */
export const ENDPOINT_MAPS = ['pal_policy', 'pal_policy_ports', 'pal_policy_cidr'] as const;
export type EndpointMap = (typeof ENDPOINT_MAPS)[number];

/** Map name -> (key hex -> value hex). */
export type MapContents = Map<PlannedMap, Map<string, string>>;

export interface LocalEndpoint {
  /** `namespace/name` of the pod. */
  key: string;
  ifindex: number;
  ip: string;
}

export interface PlanInput {
  endpoints: readonly LocalEndpoint[];
  /** Compiled policy by endpoint key; an endpoint missing here is enforced fail-closed (deny all). */
  compiled: ReadonlyMap<string, EndpointPolicy>;
  /** Pod IP -> identity, for every pod of the cluster. */
  podIdentities: ReadonlyMap<string, number>;
  /** This node's own addresses (identity host) and the other nodes' (identity remote node). */
  nodeAddresses: { self: readonly string[]; others: readonly string[] };
  /**
   * The API server's addresses (the `default/kubernetes` endpoints): each gets apiServerIdentity of the identity it
   * would otherwise have (host or remote node for a node's address, else KUBE_APISERVER; ADR 0010). Missing: none.
   */
  apiServerAddresses?: readonly string[];
  /** The Service frontends the node translates its pods' traffic for (agent/services.ts); missing: none. */
  frontends?: readonly LbFrontend[];
  /** max_entries of the planned maps (missing: unbounded). What does not fit is refused and reported, fail-closed. */
  capacity?: Partial<Record<PlannedMap, number>>;
  /** The most entries (all policy maps together) one endpoint may have; beyond, it is denied everything and reported. */
  maxEntriesPerEndpoint?: number;
}

/** A Service frontend and its backends (agent/services.ts ServiceFrontend). */
export interface LbFrontend {
  /** `namespace/name` of the Service, for messages. */
  service: string;
  ip: string;
  port: number;
  protocol: 'TCP' | 'UDP';
  clientAffinity: boolean;
  backends: ReadonlyArray<{ ip: string; port: number }>;
}

export interface Plan {
  maps: MapContents;
  problems: PlanProblem[];
  /** Addresses left out of the ipcache: not IPv4 (the datapath drops all other traffic), or beyond its capacity. */
  skippedAddresses: string[];
}

/** Something the node cannot enforce as written (and enforces fail-closed instead). */
export interface PlanProblem {
  /** `namespace/name` of the pod whose traffic is concerned, or 'node' (the ipcache, the Service maps). */
  endpoint: string;
  /** What is wrong and what is done about it, without the endpoint. */
  message: string;
}

/** A problem as one line: `endpoint: message`. */
export function problemText(p: PlanProblem): string {
  return `${p.endpoint}: ${p.message}`;
}

/** A rule's number in the datapath: a hash of its stable name (0 means "no rule"). */
export function ruleId(rule: RuleRef): number {
  return fnv1a32(ruleRefString(rule)) || 1;
}

/** The number under which drops for lack of an allowing rule are counted: the first isolating policy. */
function defaultRuleId(policy: DirectionPolicy | undefined, direction: 'ingress' | 'egress'): number {
  const first = policy?.isolatedBy[0];
  return first ? defaultRuleNumber(first, direction) : 0;
}

/** The default rule's number of an isolating policy in a direction (what flows name for a default deny). */
export function defaultRuleNumber(policy: PolicyRef, direction: 'ingress' | 'egress'): number {
  return fnv1a32(`${policyRefString(policy)}/${direction}/default`) || 1;
}

/**
 * The pal_endpoints value of an endpoint that is denied everything: both
 * directions enforced, no ANY or CIDR lookups, and endpoint id 0, under which
 * no policy entry is ever written, so that none of its own entries, stale or
 * half-written, can allow anything. Its address stays, for anti-spoofing.
 */
export function closedEndpointInfo(ipv4: string): Parameters<typeof endpointInfo.encode>[0] {
  return { endpointId: 0, identity: 0, flags: CLOSED_FLAGS, ingressDefaultRule: 0, egressDefaultRule: 0, ipv4 };
}

const CLOSED_FLAGS = ENDPOINT_FLAG.INGRESS_ENFORCED | ENDPOINT_FLAG.EGRESS_ENFORCED;

/** The full contents the maps must have: a one-shot plan (tests, tools). The agent plans incrementally with DatapathPlanner. */
export function planDatapath(input: PlanInput): Plan {
  const plan = new DatapathPlanner().plan(input, 'all');
  return { maps: plan.full(), problems: plan.problems, skippedAddresses: plan.skippedAddresses };
}

/** A plan relative to the planner's previous one. */
export interface IncrementalPlan {
  problems: PlanProblem[];
  skippedAddresses: string[];
  /** What changed in pal_policy, pal_policy_cidr and pal_ipcache4 since the previous plan (everything, the first time). */
  changes: MapChanges;
  /** pal_endpoints as it must be, whole (one entry per endpoint: small). */
  endpoints: Map<string, string>;
  /** Every map's whole contents, assembled on call (as many entries as the maps hold). */
  full(): MapContents;
}

interface CachedEndpoint {
  endpoint: LocalEndpoint;
  compiled: EndpointPolicy | undefined;
  plan: EndpointPlan;
  /** Whether its entries are in the maps (false: closed, by its own plan or for lack of room). */
  written: boolean;
}

/**
 * Plans the maps incrementally: an endpoint whose inputs did not change (same
 * address, device and compiled policy object, and not reported changed by the
 * compiler) keeps its previous plan, and only the entries of endpoints that
 * changed are diffed; the ipcache is diffed address by address before any
 * encoding. So a watch event that changes nothing costs a pass over the
 * endpoints and the pod addresses, not over the maps' entries.
 */
export class DatapathPlanner {
  readonly #endpoints = new Map<string, CachedEndpoint>();
  /** pal_ipcache4 as last planned: address -> identity. */
  #addresses = new Map<string, number>();
  /** The Service maps as last planned, from which frontends (the same array: nothing to plan), with what did not fit. */
  #lb = new Map<LbMap, Map<string, string>>(LB_MAPS.map((m) => [m, new Map()]));
  #lbFrontends: readonly LbFrontend[] | undefined;
  #lbProblems: PlanProblem[] = [];

  /** `dirty`: endpoint keys whose compiled policy changed since the previous plan, or 'all'. */
  plan(input: PlanInput, dirty: ReadonlySet<string> | 'all'): IncrementalPlan {
    const capacity = (map: PlannedMap) => input.capacity?.[map] ?? Infinity;
    const updates = new Map<PlannedMap, Array<{ key: string; value: string }>>(PLANNED_MAPS.map((m) => [m, []]));
    const deletes = new Map<PlannedMap, string[]>(PLANNED_MAPS.map((m) => [m, []]));
    const problems: PlanProblem[] = [];
    const skippedAddresses: string[] = [];

    // Node and API server addresses first: they must never be crowded out by pods.
    const addresses = new Map<string, number>();
    const apiServers = new Set(input.apiServerAddresses ?? []);
    const node = (identity: number) => (ip: string) => [ip, apiServers.has(ip) ? apiServerIdentity(identity) : identity] as [string, number];
    const entries: Array<[string, number]> = [
      ...input.nodeAddresses.self.map(node(IDENTITY.HOST)),
      ...input.nodeAddresses.others.map(node(IDENTITY.REMOTE_NODE)),
      ...[...apiServers].map((ip) => [ip, apiServerIdentity(undefined)] as [string, number]),
      ...input.podIdentities,
    ];
    for (const [ip, identity] of entries) {
      if (addresses.has(ip)) continue;
      if (!isIPv4(ip) || addresses.size >= capacity('pal_ipcache4')) skippedAddresses.push(ip);
      else addresses.set(ip, identity);
    }
    for (const [ip, identity] of addresses) {
      if (this.#addresses.get(ip) !== identity) updates.get('pal_ipcache4')!.push(ipcacheEntry(ip, identity));
    }
    for (const ip of this.#addresses.keys()) if (!addresses.has(ip)) deletes.get('pal_ipcache4')!.push(ipv4Key.encode(ip).toString('hex'));
    this.#addresses = addresses;

    const frontends = input.frontends ?? [];
    if (frontends !== this.#lbFrontends) {
      this.#lbProblems = [];
      const lb = planFrontends(frontends, capacity, this.#lbProblems);
      for (const m of LB_MAPS) {
        const had = this.#lb.get(m)!;
        const has = lb.get(m)!;
        for (const [key, value] of has) if (had.get(key) !== value) updates.get(m)!.push({ key, value });
        for (const key of had.keys()) if (!has.has(key)) deletes.get(m)!.push(key);
      }
      this.#lb = lb;
      this.#lbFrontends = frontends;
    }
    problems.push(...this.#lbProblems);

    // Each endpoint's policy entries are planned apart first, so that if the
    // maps cannot hold them all, whole endpoints (the largest first) fall back
    // to deny-all instead of any endpoint getting a partial, wrong policy.
    const wired = input.endpoints.slice(0, capacity('pal_endpoints'));
    for (const e of input.endpoints.slice(wired.length)) {
      problems.push({ endpoint: e.key, message: `more endpoints than the node's maps hold (${capacity('pal_endpoints')}); not wired` });
    }
    const plans = wired.map((endpoint) => {
      const compiled = input.compiled.get(endpoint.key);
      const cached = this.#endpoints.get(endpoint.key);
      const same = cached && dirty !== 'all' && !dirty.has(endpoint.key) && cached.compiled === compiled && cached.endpoint.ip === endpoint.ip && cached.endpoint.ifindex === endpoint.ifindex;
      return { endpoint, compiled, plan: same ? cached.plan : planEndpoint(endpoint, compiled), closed: false };
    });
    const entryCount = (p: (typeof plans)[number]) => ENDPOINT_MAPS.reduce((n, m) => n + p.plan.maps.get(m)!.size, 0);
    const perEndpoint = input.maxEntriesPerEndpoint ?? Infinity;
    for (const p of plans) {
      if (p.plan.closed || entryCount(p) <= perEndpoint) continue;
      p.closed = true;
      problems.push({ endpoint: p.endpoint.key, message: `its policy needs ${entryCount(p)} entries, more than the ${perEndpoint} one endpoint may have; all its traffic is denied` });
    }
    const size = (p: (typeof plans)[number], m: EndpointMap) => (p.plan.closed || p.closed ? 0 : p.plan.maps.get(m)!.size);
    const totals = Object.fromEntries(ENDPOINT_MAPS.map((m) => [m, plans.reduce((n, p) => n + size(p, m), 0)])) as Record<EndpointMap, number>;
    for (const p of [...plans].sort((a, b) => size(b, 'pal_policy') - size(a, 'pal_policy'))) {
      if (ENDPOINT_MAPS.every((m) => totals[m] <= capacity(m))) break;
      if (p.plan.closed || p.closed) continue;
      for (const m of ENDPOINT_MAPS) totals[m] -= size(p, m);
      p.closed = true;
      problems.push({ endpoint: p.endpoint.key, message: `its policy needs ${entryCount(p)} entries, more than the node's maps have room for; all its traffic is denied` });
    }

    // Entries of the endpoints whose written entries changed; then of those that left.
    const endpoints = new Map<string, string>();
    const seen = new Set<string>();
    for (const p of plans) {
      seen.add(p.endpoint.key);
      problems.push(...p.plan.problems);
      const written = !p.closed && !p.plan.closed;
      const before = this.#endpoints.get(p.endpoint.key);
      if (!before || before.plan !== p.plan || before.written !== written) {
        diffEntries(before?.written ? before.plan.maps : undefined, written ? p.plan.maps : undefined, updates, deletes);
      }
      this.#endpoints.set(p.endpoint.key, { endpoint: p.endpoint, compiled: p.compiled, plan: p.plan, written });
      const info = written ? p.plan.info : closedEndpointInfo(p.plan.info.ipv4);
      endpoints.set(u32Key.encode(p.endpoint.ifindex).toString('hex'), endpointInfo.encode(info).toString('hex'));
    }
    for (const [key, gone] of this.#endpoints) {
      if (seen.has(key)) continue;
      if (gone.written) diffEntries(gone.plan.maps, undefined, updates, deletes);
      this.#endpoints.delete(key);
    }

    const count = [...updates.values(), ...deletes.values()].reduce((n, list) => n + list.length, 0);
    return {
      problems,
      skippedAddresses,
      changes: { updates: nonEmpty(updates), deletes: nonEmpty(deletes), count },
      endpoints,
      full: () => {
        const maps: MapContents = new Map(PLANNED_MAPS.map((m) => [m, new Map<string, string>()]));
        for (const [ip, identity] of this.#addresses) {
          const e = ipcacheEntry(ip, identity);
          maps.get('pal_ipcache4')!.set(e.key, e.value);
        }
        for (const cached of this.#endpoints.values()) {
          if (!cached.written) continue;
          for (const [m, entries] of cached.plan.maps) for (const [k, v] of entries) maps.get(m)!.set(k, v);
        }
        maps.set('pal_endpoints', new Map(endpoints));
        for (const m of LB_MAPS) maps.set(m, new Map(this.#lb.get(m)));
        return maps;
      },
    };
  }
}

/**
 * The Service maps' contents: a pal_lb4 entry per IPv4 frontend, its
 * backends in slots 0 .. count - 1 (in the order given: a stable order keeps
 * each connection's backend when others come and go at the end). Frontends
 * are taken in the order given while pal_lb4 has room; one whose backends no
 * longer fit pal_lb4_backends is written with none, so that its traffic is
 * dropped rather than left untranslated (a pod's packets to a frontend the
 * datapath does not know pass on to kube-proxy, whose choice of backend its
 * egress policy never sees). What does not fit is reported.
 */
export function planFrontends(
  frontends: readonly LbFrontend[],
  capacity: (map: PlannedMap) => number,
  problems: PlanProblem[],
): Map<LbMap, Map<string, string>> {
  const services = new Map<string, string>();
  const backends = new Map<string, string>();
  const full: LbFrontend[] = [];
  for (const f of frontends) {
    if (!isIPv4(f.ip)) continue;
    const frontend = { addr: f.ip, port: f.port, protocol: f.protocol === 'TCP' ? PROTOCOL.TCP : PROTOCOL.UDP };
    const key = lb4Key.encode(frontend).toString('hex');
    if (services.has(key)) continue;
    if (services.size >= capacity('pal_lb4')) {
      problems.push({ endpoint: 'node', message: `Service ${f.service} frontend ${f.ip}:${f.port}/${f.protocol} left out: the node's Service map is full (${capacity('pal_lb4')}); kube-proxy translates it, unjudged by egress policy` });
      continue;
    }
    const usable = f.backends.filter((b) => isIPv4(b.ip));
    const fits = backends.size + usable.length <= capacity('pal_lb4_backends');
    if (!fits) full.push(f);
    const written = fits ? usable : [];
    written.forEach((b, slot) => backends.set(lb4BackendKey.encode({ ...frontend, slot }).toString('hex'), lb4Backend.encode({ addr: b.ip, port: b.port }).toString('hex')));
    services.set(key, lb4Service.encode({ count: written.length, flags: f.clientAffinity ? LB_FLAG.CLIENT_AFFINITY : 0 }).toString('hex'));
  }
  for (const f of full) {
    problems.push({ endpoint: 'node', message: `Service ${f.service} frontend ${f.ip}:${f.port}/${f.protocol} written without backends, its traffic dropped: the node's backend map is full (${capacity('pal_lb4_backends')})` });
  }
  return new Map([['pal_lb4_backends', backends], ['pal_lb4', services]]);
}

function ipcacheEntry(ip: string, identity: number): { key: string; value: string } {
  return { key: ipv4Key.encode(ip).toString('hex'), value: ipcacheValue.encode({ identity, flags: 0 }).toString('hex') };
}

/** Adds the writes that turn one endpoint's entries `before` into `after` (undefined: none). */
function diffEntries(
  before: EndpointPlan['maps'] | undefined,
  after: EndpointPlan['maps'] | undefined,
  updates: Map<PlannedMap, Array<{ key: string; value: string }>>,
  deletes: Map<PlannedMap, string[]>,
): void {
  for (const m of ENDPOINT_MAPS) {
    const had = before?.get(m);
    const has = after?.get(m);
    if (has) for (const [key, value] of has) if (had?.get(key) !== value) updates.get(m)!.push({ key, value });
    if (had) for (const key of had.keys()) if (!has?.has(key)) deletes.get(m)!.push(key);
  }
}

function nonEmpty<T>(lists: Map<PlannedMap, T[]>): Map<PlannedMap, T[]> {
  return new Map([...lists].filter(([, list]) => list.length > 0));
}

interface EndpointPlan {
  endpoint: LocalEndpoint;
  info: Parameters<typeof endpointInfo.encode>[0];
  maps: Map<EndpointMap, Map<string, string>>;
  problems: PlanProblem[];
  /** Enforced deny-all by its own plan (pod not known, address not IPv4): no entries. */
  closed: boolean;
}

function planEndpoint(endpoint: LocalEndpoint, compiled: EndpointPolicy | undefined): EndpointPlan {
  const maps: EndpointPlan['maps'] = new Map(ENDPOINT_MAPS.map((m) => [m, new Map()]));
  const problems: PlanProblem[] = [];
  const put = <K, V>(map: PlannedMap, key: K, value: V) => {
    const codec = MAPS[map] as unknown as { key: { encode(k: K): Buffer }; value: { encode(v: V): Buffer } };
    maps.get(map as EndpointMap)!.set(codec.key.encode(key).toString('hex'), codec.value.encode(value).toString('hex'));
  };
  const entriesOf = (map: 'pal_policy') => maps.get(map)!;
  if (!isIPv4(endpoint.ip)) {
    problems.push({ endpoint: endpoint.key, message: `its address ${endpoint.ip} is not IPv4, which the datapath cannot enforce yet; all its traffic is denied` });
    return { endpoint, info: closedEndpointInfo('0.0.0.0'), maps, problems, closed: true };
  }
  const endpointId = parseIpv4(endpoint.ip);
  let flags = CLOSED_FLAGS;
  if (compiled) {
    flags = 0;
    // The allow lanes (key direction 0/1, flags in bits 0..7) and the deny lanes (key direction 2/3, the same flags
    // shifted by DENY_FLAGS_SHIFT): the same entries, classes and regions (ADR 0010).
    const lanes = [
      [DIRECTION.INGRESS, compiled.ingress, false],
      [DIRECTION.EGRESS, compiled.egress, false],
      [DIRECTION.INGRESS, compiled.ingressDeny, true],
      [DIRECTION.EGRESS, compiled.egressDeny, true],
    ] as const;
    for (const [d, policy, deny] of lanes) {
      if (!policy) continue;
      const lane = deny ? d + DIRECTION.INGRESS_DENY : d;
      const flag = (ingressBit: number) => (ingressBit << d) << (deny ? DENY_FLAGS_SHIFT : 0);
      const classes = writeClasses(policy.entries, endpointId, lane, put, entriesOf, problems, endpoint.key);
      if (classes.has(IDENTITY.ANY)) flags |= flag(ENDPOINT_FLAG.INGRESS_ANY);
      if (classes.has(IDENTITY.CLUSTER)) flags |= flag(ENDPOINT_FLAG.INGRESS_CLUSTER);
      const regions = policy.cidrRegions.filter((r) => r.family === 4);
      if (regions.length > 0) flags |= flag(ENDPOINT_FLAG.INGRESS_CIDR);
      for (const region of regions) {
        put('pal_policy_cidr', { endpointId, direction: lane, cidr: region.prefix }, { identity: region.regionId });
        writeClasses(region.entries, endpointId, lane, put, entriesOf, problems, endpoint.key);
      }
      // An allow lane enforces its direction whatever it holds; a deny lane is probed only when it holds something.
      if (!deny || classes.size > 0 || regions.length > 0) flags |= flag(ENDPOINT_FLAG.INGRESS_ENFORCED);
    }
    flags |= dnsFlags(compiled);
  } else {
    problems.push({ endpoint: endpoint.key, message: 'pod not known yet; all its traffic is denied until it is' });
    return { endpoint, info: closedEndpointInfo(endpoint.ip), maps, problems, closed: true };
  }
  const info = {
    endpointId,
    identity: compiled?.identity ?? 0,
    flags,
    ingressDefaultRule: defaultRuleId(compiled?.ingress, 'ingress'),
    egressDefaultRule: defaultRuleId(compiled?.egress, 'egress'),
    ipv4: endpoint.ip,
  };
  return { endpoint, info, maps, problems, closed: false };
}

/**
 * The DNS proxy's endpoint flags (docs/adr/0012-dns-redirect.md): DNS_REDIRECT when the compiled policy has `dns`
 * (a selecting policy has FQDN or DNS rules: the pod's queries go through the node's DNS proxy), and DNS_NO_FALLBACK
 * when it says `dns.failClosed` (the proxy enforces DNS rules the pod must not get around while no proxy runs: its
 * queries are dropped then, rather than sent to the upstream). Read defensively: `dns` is newer than this planner.
 */
export function dnsFlags(compiled: EndpointPolicy): number {
  const dns = (compiled as { dns?: { failClosed?: unknown } | null }).dns;
  if (dns === undefined || dns === null) return 0;
  return ENDPOINT_FLAG.DNS_REDIRECT | (dns.failClosed === true ? ENDPOINT_FLAG.DNS_NO_FALLBACK : 0);
}

const PROTOCOLS = [
  { name: 'TCP', number: PROTOCOL.TCP, anyPort: POLICY_FLAG.TCP_ANY_PORT, ports: POLICY_FLAG.TCP_PORTS, ranges: POLICY_FLAG.TCP_RANGES },
  { name: 'UDP', number: PROTOCOL.UDP, anyPort: POLICY_FLAG.UDP_ANY_PORT, ports: POLICY_FLAG.UDP_PORTS, ranges: POLICY_FLAG.UDP_RANGES },
  { name: 'SCTP', number: PROTOCOL.SCTP, anyPort: POLICY_FLAG.SCTP_ANY_PORT, ports: POLICY_FLAG.SCTP_PORTS, ranges: POLICY_FLAG.SCTP_RANGES },
] as const;

/**
 * One peer class's entries as the ADR lays them out: a summary entry with
 * flags, an entry per "all ports of a protocol", an entry per allowed port.
 * Entries are sorted, so the first rule found for a key is stable.
 * Returns the classes that got entries.
 */
function writeClasses(
  entries: readonly PolicyEntry[],
  endpointId: number,
  direction: number,
  put: <K, V>(map: PlannedMap, key: K, value: V) => void,
  entriesOf: (map: 'pal_policy') => Map<string, string>,
  problems: PlanProblem[],
  endpoint: string,
): Set<number> {
  const byClass = new Map<number, PolicyEntry[]>();
  const written = new Set<number>();
  for (const entry of entries) {
    const identity = entry.peer.kind === 'identity' ? entry.peer.identity : entry.peer.kind === 'any' ? IDENTITY.ANY : entry.peer.regionId;
    const list = byClass.get(identity);
    if (list) list.push(entry);
    else byClass.set(identity, [entry]);
  }
  for (const [identity, list] of byClass) {
    let flags = 0;
    let summaryRule = 0;
    const key = (protocol: number, dport: number) => ({ endpointId, identity, direction, protocol, dport });
    const all = list.find((e) => e.protocol === 'ANY');
    if (all) {
      flags |= POLICY_FLAG.ALL;
      summaryRule = ruleId(all.rule);
    }
    for (const proto of PROTOCOLS) {
      const ofProto = list.filter((e) => e.protocol === proto.name);
      const anyPort = ofProto.find((e) => e.port === 'any' || (e.port.from <= 1 && e.port.to >= 65535));
      if (anyPort) {
        flags |= proto.anyPort;
        put('pal_policy', key(proto.number, 0), { ruleId: ruleId(anyPort.rule), flags: 0 });
        continue;
      }
      // Ranges become disjoint segments, each with the rule first for its ports (the
      // order evaluate.ts reads); one port is an exact entry, longer segments are
      // aligned port prefixes in pal_policy_ports: a few entries whatever the width.
      const segments = portSegments(ofProto.flatMap((e) => (e.port === 'any' ? [] : [{ from: e.port.from, to: e.port.to, rule: ruleId(e.rule) }])));
      const values = new Map<number, string>();
      const valueOf = (rule: number) => {
        let value = values.get(rule);
        if (value === undefined) values.set(rule, (value = policyValue.encode({ ruleId: rule, flags: 0 }).toString('hex')));
        return value;
      };
      const exact = entriesOf('pal_policy');
      const keyPrefix = policyKeyHex(endpointId, identity, direction, proto.number, 0).slice(0, -4); // all but dport
      for (const seg of segments) {
        if (seg.from === seg.to) {
          flags |= proto.ports;
          exact.set(keyPrefix + HEX_BYTE[seg.from & 0xff] + HEX_BYTE[seg.from >>> 8], valueOf(seg.rule));
          continue;
        }
        flags |= proto.ranges;
        for (const block of portPrefixes(seg.from, seg.to)) {
          put('pal_policy_ports', { endpointId, identity, direction, protocol: proto.number, ...block }, { ruleId: seg.rule, flags: 0 });
        }
      }
    }
    if (flags !== 0) {
      put('pal_policy', key(0, 0), { ruleId: summaryRule, flags });
      written.add(identity);
    }
  }
  return written;
}

/** Disjoint port segments, sorted, each with the rule of the first range (in the order given) that covers its ports. */
export function portSegments(ranges: ReadonlyArray<{ from: number; to: number; rule: number }>): Array<{ from: number; to: number; rule: number }> {
  const sorted = [...ranges].sort((a, b) => a.from - b.from);
  // The common case, ranges that do not overlap: no rule can shadow another.
  if (sorted.every((r, i) => i === 0 || sorted[i - 1]!.to < r.from)) return mergeSegments(sorted);
  const covered: Array<{ from: number; to: number }> = []; // sorted, disjoint
  const out: Array<{ from: number; to: number; rule: number }> = [];
  for (const r of ranges) {
    let cursor = r.from;
    for (const c of covered) {
      if (c.to < cursor) continue;
      if (c.from > r.to) break;
      if (c.from > cursor) out.push({ from: cursor, to: c.from - 1, rule: r.rule });
      cursor = Math.max(cursor, c.to + 1);
    }
    if (cursor <= r.to) out.push({ from: cursor, to: r.to, rule: r.rule });
    covered.push({ from: r.from, to: r.to });
    covered.sort((a, b) => a.from - b.from);
    for (let i = covered.length - 1; i > 0; i--) {
      if (covered[i]!.from <= covered[i - 1]!.to + 1) {
        covered[i - 1]!.to = Math.max(covered[i - 1]!.to, covered[i]!.to);
        covered.splice(i, 1);
      }
    }
  }
  return mergeSegments(out.sort((a, b) => a.from - b.from));
}

/** Sorted disjoint segments with adjacent ones of the same rule joined. */
function mergeSegments(sorted: ReadonlyArray<{ from: number; to: number; rule: number }>): Array<{ from: number; to: number; rule: number }> {
  const merged: Array<{ from: number; to: number; rule: number }> = [];
  for (const seg of sorted) {
    const last = merged[merged.length - 1];
    if (last && last.rule === seg.rule && last.to + 1 === seg.from) last.to = seg.to;
    else merged.push({ ...seg });
  }
  return merged;
}

/** The aligned port blocks (first port, fixed high bits) that cover from..to exactly: at most 2 x 15. */
export function portPrefixes(from: number, to: number): Array<{ port: number; portBits: number }> {
  const blocks: Array<{ port: number; portBits: number }> = [];
  for (let lo = from; lo <= to; ) {
    let size = lo === 0 ? 65536 : lo & -lo;
    while (lo + size - 1 > to) size /= 2;
    blocks.push({ port: lo, portBits: 16 - Math.log2(size) });
    lo += size;
  }
  return blocks;
}

/** policyKey.encode(...).toString('hex'), without the Buffer: u32 endpoint_id, u32 identity, u8 direction, u8 protocol, u16 dport, little-endian. */
export function policyKeyHex(endpointId: number, identity: number, direction: number, protocol: number, dport: number): string {
  return hexLE(endpointId, 4) + hexLE(identity, 4) + hexLE(direction, 1) + hexLE(protocol, 1) + hexLE(dport, 2);
}

const HEX_BYTE = Array.from({ length: 256 }, (_, b) => b.toString(16).padStart(2, '0'));

function hexLE(value: number, bytes: number): string {
  let out = '';
  for (let i = 0; i < bytes; i++) out += HEX_BYTE[(value >>> (8 * i)) & 0xff];
  return out;
}

export interface MapChanges {
  updates: Map<PlannedMap, Array<{ key: string; value: string }>>;
  deletes: Map<PlannedMap, string[]>;
  count: number;
}

/** The writes that turn `applied` into `desired`; nothing when they are equal. */
export function diffMaps(desired: MapContents, applied: MapContents): MapChanges {
  const updates = new Map<PlannedMap, Array<{ key: string; value: string }>>();
  const deletes = new Map<PlannedMap, string[]>();
  let count = 0;
  for (const map of PLANNED_MAPS) {
    const want = desired.get(map) ?? new Map<string, string>();
    const have = applied.get(map) ?? new Map<string, string>();
    const u = [...want].filter(([k, v]) => have.get(k) !== v).map(([key, value]) => ({ key, value }));
    const d = [...have.keys()].filter((k) => !want.has(k));
    if (u.length) updates.set(map, u);
    if (d.length) deletes.set(map, d);
    count += u.length + d.length;
  }
  return { updates, deletes, count };
}


