// The incremental policy compiler: pure, in-memory state only.
//
// Feed it the cluster (setNamespace, setPod, setPolicy, setIdentities and the
// deletes), then read what changed (endpointsChangedSince) and the result of
// each endpoint (result). A change marks the endpoints it can affect as
// dirty; reading recompiles the dirty endpoints only and reports those whose
// output actually differs.
//
// Sharing, so that recompiling is cheap: a rule's output (rule-output.ts) is
// computed once for all the endpoints it applies to (ingress rules with
// named ports: once per resolution of the names) and kept when a recompute
// gives the same; a direction result (direction.ts) is shared by the
// endpoints selected by the same policies (a "slot"); CIDR regions are shared
// by the rule outputs that produce them. Each cache is invalidated by the
// changes that touch it. Outputs are shared: read-only by convention.

import { addressInPrefix, aggregatePrefixes, comparePrefixes, formatAddress, hostPrefix, parseAddress, type Address, type Prefix } from './cidr.ts';
import { ClusterState, resolveNamedPort, sameNumbers, type NsRec, type Peer, type PodRec } from './cluster.ts';
import { directionEqual, makeDirectionPolicy, type Segment } from './direction.ts';
import { RuleOutput, type PortSpec } from './rule-output.ts';
import { comparePolicyRefs, comparePorts } from './entries.ts';
import { fqdnKey } from './fqdn.ts';
import { FqdnState } from './fqdn-state.ts';
import { compileSelector } from './selectors.ts';
import { IDENTITY_INIT, IDENTITY_WORLD, policyRefString, ruleRefString } from './ids.ts';
import type { FqdnSelector } from './palisade-policy.ts';
import { DEFAULT_DNS_SERVERS, palisadePolicyIR, type DnsServers } from './palisade-ir.ts';
import { ALL_PODS_PEER, policyIR, type IpBlockIR, type PeerIR, type PolicyIR, type PortIR, type RuleIR } from './ir.ts';
import { computeRegions, type CidrItem } from './regions.ts';
import type {
  CompiledPolicy,
  ContainerPort,
  Direction,
  DirectionPolicy,
  EndpointPolicy,
  EntryCount,
  NamespaceInput,
  NetworkPolicyInput,
  PalisadePolicyInput,
  PalisadePolicyKind,
  PeerClass,
  PodInput,
  Problem,
  Protocol,
  RuleRef,
} from './types.ts';

interface RuleRec {
  ir: RuleIR;
  policy: PolicyRec;
  direction: Direction;
  peers: Peer[];
  /** Egress to every peer with named ports: the names resolve over every pod of the cluster. */
  namedAll: Peer | undefined;
  /** Egress with ipBlocks and named ports: the names resolve per pod whose address is in a block. */
  namedBlocks: boolean;
  /** The rule's numeric and all-ports port specs, sorted and deduplicated. */
  plain: readonly PortSpec[];
  /** What the rule allows independently of the endpoint. */
  cache: RuleOutput | undefined;
  /** The cache must be recomputed; when the result is equal, the old one is kept (same reference). */
  stale: boolean;
  /**
   * Ingress rules with named ports: the output depends on the ports the
   * names resolve to on the endpoint, so there is one per resolution (key:
   * the resolved ports); `fresh` is false for outputs computed before the
   * rule went stale.
   */
  byResolution: Map<string, { out: RuleOutput; fresh: boolean }> | undefined;
  /** Rules with several selector peers: the union of their identities, and the arrays it was made from. */
  union: { parts: (readonly number[])[]; ids: readonly number[] } | undefined;
  /** The keys of its toFQDNs selectors (fqdn-state.ts). */
  fqdnKeys: readonly string[];
}

/** The rule lists of a policy: allow rules per direction, and deny rules (Palisade kinds). */
type Lane = Direction | 'ingressDeny' | 'egressDeny';
const LANES: readonly Lane[] = ['ingress', 'egress', 'ingressDeny', 'egressDeny'];
const laneDirection = (lane: Lane): Direction => (lane === 'ingressDeny' ? 'ingress' : lane === 'egressDeny' ? 'egress' : lane);

interface PolicyRec {
  ir: PolicyIR;
  /** Unique within the compiler (short keys for shared slots). */
  serial: number;
  spec: string;
  /** Its namespace; undefined for a cluster-wide policy. */
  ns: NsRec | undefined;
  ingress: RuleRec[] | null;
  egress: RuleRec[] | null;
  ingressDeny: RuleRec[] | null;
  egressDeny: RuleRec[] | null;
  selected: Set<PodRec>;
  /** The shared direction results built from this policy. */
  slots: Set<DirSlot>;
  ingressNamed: boolean;
  /** Some egress rule has toFQDNs or rules.dns: the pods it selects need the DNS proxy. */
  hasDns: boolean;
  /** Some egress allow rule has rules.dns of its own: its pods' DNS must not bypass the proxy. */
  dnsFailClosed: boolean;
}

interface DirResult {
  policy: DirectionPolicy;
  problem: Omit<Problem, 'endpoint'> | undefined;
}

/**
 * A direction result shared by the endpoints selected by the same policies
 * (and, for ingress with named ports, with the same named container ports).
 * `result` is cleared when one of its policies' rules changes.
 */
interface DirSlot {
  key: string;
  direction: Lane;
  pols: PolicyRec[];
  result: DirResult | undefined;
}

export interface ChangedEndpoints {
  /** Pass it to the next call. */
  generation: number;
  /** Endpoint keys whose result changed (including endpoints that disappeared: result() is undefined), sorted. */
  changed: string[];
  /**
   * true when `since` is older than the change history kept: `changed` then
   * lists every current endpoint, and the caller must also drop endpoints it
   * knows that are not listed.
   */
  full: boolean;
}

const NO_EXCEPT: readonly Prefix[] = [];
const DNS_REDIRECT = Object.freeze({ redirect: true as const });
const DNS_REDIRECT_FAIL_CLOSED = Object.freeze({ redirect: true as const, failClosed: true as const });
const NO_IDS: readonly number[] = [];
const NO_SPECS: readonly PortSpec[] = [];
const ALL_PORTS: readonly PortSpec[] = [{ protocol: 'ANY', port: 'any' }];
/** Removed-endpoint markers older than this many generations are forgotten (see ChangedEndpoints.full). */
const RETAIN_GENERATIONS = 256;

function sortPorts(list: PortSpec[]): PortSpec[] {
  list.sort(comparePorts);
  return list.filter((p, i) => i === 0 || comparePorts(list[i - 1]!, p) !== 0);
}

/** The numeric and all-ports specs of a rule (every protocol and port when it has none). */
function plainPorts(ports: readonly PortIR[] | null): readonly PortSpec[] {
  if (ports === null) return ALL_PORTS;
  const out: PortSpec[] = [];
  for (const p of ports) {
    if (p.kind === 'all') out.push({ protocol: p.protocol, port: 'any' });
    else if (p.kind === 'range') out.push({ protocol: p.protocol, port: p.range });
  }
  return sortPorts(out);
}

const namedPorts = (ports: readonly PortIR[] | null) =>
  (ports ?? []).filter((p): p is Extract<PortIR, { kind: 'named' }> => p.kind === 'named');

function endpointEqual(a: EndpointPolicy | undefined, b: EndpointPolicy | undefined): boolean {
  if (a === b) return true;
  if (!a || !b) return false;
  return (
    a.endpoint === b.endpoint &&
    a.ip === b.ip &&
    a.node === b.node &&
    a.identityKey === b.identityKey &&
    a.identity === b.identity &&
    directionEqual(a.ingress, b.ingress) &&
    directionEqual(a.egress, b.egress) &&
    directionEqual(a.ingressDeny, b.ingressDeny) &&
    directionEqual(a.egressDeny, b.egressDeny) &&
    a.dns === b.dns
  );
}

/** The policies selecting a pod, and (cached until they change) their sorted views per direction. */
interface PodPolicies {
  set: Set<PolicyRec>;
  view: PolicyView | undefined;
}

interface PolicyView {
  ingress: DirSlot | undefined;
  egress: DirSlot | undefined;
  ingressDeny: DirSlot | undefined;
  egressDeny: DirSlot | undefined;
  /** Ingress has named ports: one slot per named-port signature of the endpoint. */
  ingressNamed: Map<string, DirSlot> | undefined;
}

/** The pod's named container ports, as text (part of the shared-result key for ingress named ports). */
function namedSignature(ports: readonly ContainerPort[]): string {
  return JSON.stringify(ports.filter((c) => c.name).map((c) => [c.name, c.protocol, c.containerPort]));
}

/** The sorted union of sorted arrays of numbers. */
function mergeSorted(parts: readonly (readonly number[])[]): number[] {
  let out: number[] = [...parts[0]!];
  for (let k = 1; k < parts.length; k++) {
    const b = parts[k]!;
    const merged: number[] = [];
    let i = 0;
    let j = 0;
    while (i < out.length || j < b.length) {
      const x = i < out.length ? out[i]! : Infinity;
      const y = j < b.length ? b[j]! : Infinity;
      if (x <= y) {
        merged.push(x);
        i++;
        if (x === y) j++;
      } else {
        merged.push(y);
        j++;
      }
    }
    out = merged;
  }
  return out;
}

/** Whether pod `a`'s claim on an address beats `b`'s: created later, then the greater uid, then (inputs with neither) the greater key. */
function newerClaim(a: PodRec, b: PodRec): boolean {
  const ta = a.input.createdAt ?? -Infinity;
  const tb = b.input.createdAt ?? -Infinity;
  if (ta !== tb) return ta > tb;
  const ua = a.input.uid ?? '';
  const ub = b.input.uid ?? '';
  if (ua !== ub) return ua > ub;
  return a.key > b.key;
}

const byPolicyKey = (a: PolicyRec, b: PolicyRec) => comparePolicyRefs(a.ir.ref, b.ir.ref);

/** Whether the policy selects the pod (its namespace scope is the caller's: nsPolicies or clusterPolicies). */
const selects = (rec: PolicyRec, pod: PodRec) =>
  rec.ir.podSelector.matches(pod.input.labels) && (rec.ir.nsSelector === undefined || rec.ir.nsSelector.matches(pod.ns.labels));

function compareProblems(a: Problem, b: Problem): number {
  const k = (p: Problem) => `${p.policy ?? ''}\n${p.endpoint ?? ''}\n${p.code}\n${p.message}`;
  const x = k(a);
  const y = k(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

export class Compiler {
  private readonly node: string | undefined;
  private readonly dnsServers: DnsServers;
  private readonly cluster: ClusterState;
  private readonly fqdn: FqdnState;
  /** Rules by the FQDN selector keys they use, and the rules whose entities include `world`. */
  private readonly fqdnRules = new Map<string, Set<RuleRec>>();
  private readonly worldRules = new Set<RuleRec>();
  /** rules.dns (and implicit DNS rules) by rule reference string. */
  private readonly dnsRestrictions = new Map<string, readonly FqdnSelector[]>();
  private readonly policies = new Map<string, PolicyRec>();
  private readonly nsPolicies = new Map<string, Set<PolicyRec>>();
  /** PalisadeClusterNetworkPolicies: they may select pods of any namespace. */
  private readonly clusterPolicies = new Set<PolicyRec>();
  private readonly podPolicies = new Map<PodRec, PodPolicies>();
  private readonly peerUsers = new Map<Peer, Set<RuleRec>>();
  private readonly namedBlockRules = new Set<RuleRec>();
  private readonly invalidated = new Set<PolicyRec>();
  private readonly slots = new Map<string, DirSlot>();
  /** podsInBlock results, valid while no pod address or container port changed (addressVersion). */
  private readonly blockCache = new Map<string, { version: number; list: readonly (readonly [Prefix, number])[] }>();
  private addressVersion = 0;
  /** Bumped by every change of namespaces, pods, identities or the local registry (podAt's memo). */
  private inputVersion = 0;
  private ownersMemo: { version: number; owners: ReturnType<Compiler['addressOwners']> } | undefined;
  private podIpcacheMemo: { version: number; pods: ReadonlyMap<string, number> } | undefined;
  private byAddress: { version: number; list: { pod: PodRec; host: Prefix }[] } | undefined;
  /** Named-port signature per pod, for its current container ports. */
  private readonly signatures = new Map<PodRec, { ports: readonly ContainerPort[]; sig: string }>();
  private readonly regionsCache = new Map<string, ReturnType<typeof computeRegions>>();
  private serial = 0;
  private readonly identityPeers = new Map<number, PeerClass>();
  private readonly dirty = new Set<string>();
  private readonly outputs = new Map<string, EndpointPolicy>();
  private readonly endpointProblems = new Map<string, Problem[]>();
  private readonly changedAt = new Map<string, number>();
  private gen = 0;
  private horizon = 0;
  /** The node's CNI registry (address -> pod key), once given. */
  private local: ReadonlyMap<string, string> | undefined;

  /** `node`: only pods on this node are endpoints; pods of every node are peers. */
  /**
   * `node`: only pods on this node are endpoints; pods of every node are
   * peers. `dnsServers`: the pods an FQDN rule's implicit DNS rule allows
   * (default: `k8s-app: kube-dns` in `kube-system`).
   */
  constructor(options: { node?: string; dnsServers?: DnsServers } = {}) {
    this.node = options.node;
    this.dnsServers = options.dnsServers ?? DEFAULT_DNS_SERVERS;
    this.cluster = new ClusterState({ peerChanged: (peer, what) => this.peerChanged(peer, what) });
    this.fqdn = new FqdnState({ setsChanged: (keys) => this.fqdnSetsChanged(keys) });
  }

  // ---- DNS ----

  /** A name's addresses as learned from DNS answers (none: the name is forgotten, e.g. its TTL ran out). */
  setDnsName(name: string, addresses: readonly string[]): void {
    this.fqdn.setName(name, addresses);
  }

  /** The learned names that resolve to an address (a flow's FQDN explanation). */
  dnsNamesOf(address: string): readonly string[] {
    return this.fqdn.namesOf(address);
  }

  /** The addresses of the configured DNS servers' pods (the upstreams whose queries the DNS proxy sees), sorted. */
  dnsServerAddresses(): string[] {
    const ns = this.cluster.namespaces.get(this.dnsServers.namespace);
    if (!ns) return [];
    const sel = compileSelector(this.dnsServers.podSelector);
    return [...ns.pods].filter((p) => p.ip !== undefined && sel.matches(p.input.labels)).map((p) => p.ip!).sort();
  }

  /** Whether some policy's FQDN selector matches the name: an answer for it is worth learning. */
  dnsNameWanted(name: string): boolean {
    return this.fqdn.wanted(name);
  }

  /**
   * The names an egress allow rule lets its pods resolve on port 53 (its
   * rules.dns; an FQDN rule's implicit DNS rule: the FQDN selectors);
   * undefined: any name.
   */
  dnsRestriction(rule: RuleRef): readonly FqdnSelector[] | undefined {
    return this.dnsRestrictions.get(ruleRefString(rule));
  }

  private fqdnSetsChanged(keys: ReadonlySet<string>) {
    for (const key of keys) for (const r of this.fqdnRules.get(key) ?? []) this.invalidateRule(r);
    for (const r of this.worldRules) this.invalidateRule(r);
  }

  // ---- inputs ----

  setNamespace(ns: NamespaceInput): void {
    this.inputVersion++;
    this.namespaceChanged(this.cluster.setNamespaceLabels(ns.name, ns.labels));
  }

  /** The namespace's labels fall back to `kubernetes.io/metadata.name` only; its pods and policies stay. */
  deleteNamespace(name: string): void {
    this.inputVersion++;
    this.namespaceChanged(this.cluster.setNamespaceLabels(name, undefined));
  }

  private namespaceChanged({ pods, relabelled }: { pods: PodRec[]; relabelled: PodRec[] }) {
    // Palisade endpointSelectors see the namespace's labels: every pod of it is selected again.
    // (Held pods that took their new labels are selected again by every policy.)
    const held = new Set(relabelled);
    for (const pod of pods) {
      this.reselect(pod, !held.has(pod));
      this.dirty.add(pod.key);
    }
  }

  setPod(input: PodInput): void {
    this.inputVersion++;
    const change = this.cluster.setPod(input);
    if (!change) return;
    const pod = change.pod;
    if (change.labelsChanged) this.reselect(pod);
    if (change.addressOrPortsChanged) this.podAddressChanged(change.oldAddress, pod.address);
    this.dirty.add(pod.key);
  }

  deletePod(namespace: string, name: string): void {
    this.inputVersion++;
    const pod = this.cluster.deletePod(`${namespace}/${name}`);
    if (!pod) return;
    for (const p of this.podPolicies.get(pod)?.set ?? []) p.selected.delete(pod);
    this.podPolicies.delete(pod);
    this.signatures.delete(pod);
    this.podAddressChanged(pod.address, undefined);
    this.dirty.add(pod.key);
  }

  setPolicy(input: NetworkPolicyInput): void {
    this.putPolicy(`${input.namespace}/${input.name}`, input.spec, () => policyIR(input));
  }

  deletePolicy(namespace: string, name: string): void {
    const rec = this.policies.get(`${namespace}/${name}`);
    if (rec) this.removePolicy(rec);
  }

  /** A PalisadeNetworkPolicy or PalisadeClusterNetworkPolicy (its spec validated: validatePalisadePolicy). */
  setPalisadePolicy(input: PalisadePolicyInput): void {
    const namespace = input.kind === 'PalisadeClusterNetworkPolicy' ? '' : input.namespace;
    this.putPolicy(policyRefString({ kind: input.kind, namespace, name: input.name }), input.spec, () => palisadePolicyIR(input, this.dnsServers));
  }

  deletePalisadePolicy(kind: PalisadePolicyKind, namespace: string, name: string): void {
    const rec = this.policies.get(policyRefString({ kind, namespace: kind === 'PalisadeClusterNetworkPolicy' ? '' : namespace, name }));
    if (rec) this.removePolicy(rec);
  }

  private putPolicy(key: string, specInput: unknown, read: () => PolicyIR): void {
    // Text of the spec as given: an unchanged policy set again (a resync) changes nothing.
    const spec = JSON.stringify(specInput);
    const old = this.policies.get(key);
    if (old && old.spec === spec) return;
    if (old) this.removePolicy(old);
    const ir = read();
    const ns = ir.clusterWide ? undefined : this.cluster.ns(ir.ref.namespace);
    const rec: PolicyRec = {
      ir,
      serial: ++this.serial,
      spec,
      ns,
      ingress: null,
      egress: null,
      ingressDeny: null,
      egressDeny: null,
      selected: new Set(),
      slots: new Set(),
      ingressNamed: (ir.ingress ?? []).some((r) => r.hasNamedPorts),
      hasDns: [...(ir.egress ?? []), ...(ir.egressDeny ?? [])].some((r) => r.fqdns.length > 0 || r.dnsNames !== undefined),
      dnsFailClosed: (ir.egress ?? []).some((r) => r.dnsNames !== undefined && !r.ref.implicitDns),
    };
    for (const r of ir.egress ?? []) if (r.dnsNames) this.dnsRestrictions.set(ruleRefString(r.ref), r.dnsNames);
    const rule = (r: RuleIR, direction: Direction): RuleRec => {
      const rr: RuleRec = { ir: r, policy: rec, direction, peers: [], namedAll: undefined, namedBlocks: false, plain: plainPorts(r.ports), cache: undefined, stale: true, byResolution: undefined, union: undefined, fqdnKeys: [] };
      rr.peers = r.peers.map((p) => this.acquirePeer(p, rr));
      // One reference per distinct selector (released once per key on removal).
      const distinct = new Map(r.fqdns.map((f) => [fqdnKey(f), f]));
      rr.fqdnKeys = [...distinct.values()].map((f) => this.fqdn.acquire(f));
      for (const k of rr.fqdnKeys) {
        let users = this.fqdnRules.get(k);
        if (!users) this.fqdnRules.set(k, (users = new Set()));
        users.add(rr);
      }
      if (r.entities.includes(IDENTITY_WORLD)) this.worldRules.add(rr);
      if (direction === 'egress' && r.hasNamedPorts) {
        if (r.allPeers) rr.namedAll = this.acquirePeer(ALL_PODS_PEER, rr);
        if (r.ipBlocks.length > 0) {
          rr.namedBlocks = true;
          this.namedBlockRules.add(rr);
        }
      }
      return rr;
    };
    for (const lane of LANES) rec[lane] = ir[lane] && ir[lane].map((r) => rule(r, laneDirection(lane)));
    this.policies.set(key, rec);
    if (ns) {
      let set = this.nsPolicies.get(ns.name);
      if (!set) this.nsPolicies.set(ns.name, (set = new Set()));
      set.add(rec);
    } else {
      this.clusterPolicies.add(rec);
    }
    for (const pod of ns ? ns.pods : this.cluster.pods.values()) {
      if (!selects(rec, pod)) continue;
      this.select(rec, pod);
      this.dirty.add(pod.key);
    }
  }

  /**
   * Replaces the identity numbers (identity key -> number). A pod held on
   * its previous labels (make-before-break, see cluster.ts) switches to its
   * new ones here, once their number is given.
   */
  setIdentities(identities: ReadonlyMap<string, number>): void {
    this.inputVersion++;
    const { changed, relabelled } = this.cluster.setIdentities(identities);
    for (const pod of relabelled) this.reselect(pod);
    for (const pod of changed) this.dirty.add(pod.key);
  }

  // ---- outputs ----

  get generation(): number {
    this.flush();
    return this.gen;
  }

  /** The endpoints whose result changed after `since` (a generation returned earlier; 0 at first). */
  endpointsChangedSince(since: number): ChangedEndpoints {
    this.flush();
    if (since < this.horizon) return { generation: this.gen, changed: [...this.outputs.keys()].sort(), full: true };
    const changed: string[] = [];
    for (const [k, g] of this.changedAt) if (g > since) changed.push(k);
    return { generation: this.gen, changed: changed.sort(), full: false };
  }

  /** The compiled policy of an endpoint (`namespace/name`); undefined if it is not an endpoint. */
  result(endpoint: string): EndpointPolicy | undefined {
    this.flush();
    return this.outputs.get(endpoint);
  }

  endpointKeys(): string[] {
    this.flush();
    return [...this.outputs.keys()].sort();
  }

  /** Identity keys of the cluster's pods that have no number (held pods' new label sets included), sorted. */
  missingIdentities(): string[] {
    const out = new Set<string>(this.cluster.pendingKeys());
    for (const g of this.cluster.groups.values()) if (g.identity === undefined) out.add(g.key);
    return [...out].sort();
  }

  /**
   * The node's CNI registry: local address -> the pod (`namespace/name`) it
   * wired with it. Once given, it decides who owns a local address (see
   * addressOwners). Only meaningful with a `node`.
   */
  setLocalAddresses(owners: ReadonlyMap<string, string>): void {
    this.inputVersion++;
    const next = new Map<string, string>();
    for (const [ip, pod] of owners) {
      const address = parseAddress(ip);
      if (address) next.set(formatAddress(address), pod);
    }
    this.local = next;
  }

  /**
   * The pod that owns each claimed address, sorted by address text. A pod
   * IP outlives its pod: a stale status, a pod the node lost, an address
   * reused after CNI DEL. So an address claimed by several pods goes, in
   * this order, to:
   * 1. on this node, once the registry is known (setLocalAddresses): the pod
   *    the registry wired with it; a claim the registry does not back (a
   *    local pod it does not list, any pod claiming an address it gives to
   *    another) owns nothing;
   * 2. the most recently created claimant (createdAt), then the greater uid;
   *    the pod key only when the input has neither (tests), never otherwise.
   * Terminal and host-network pods claim nothing: their input has no ip
   * (agent/pod-input.ts). The owner keeps the address even without an
   * identity number: it is then nobody's identity (fail closed).
   */
  addressOwners(): Map<string, { pod: string; uid: string | undefined; identity: number | undefined }> {
    const best = new Map<string, PodRec>();
    for (const p of this.cluster.pods.values()) {
      if (p.ip === undefined || !this.backedByRegistry(p)) continue;
      const other = best.get(p.ip);
      if (!other || newerClaim(p, other)) best.set(p.ip, p);
    }
    const ips = [...best.keys()].sort();
    return new Map(ips.map((ip) => {
      const p = best.get(ip)!;
      return [ip, { pod: p.key, uid: p.input.uid, identity: p.group.identity }];
    }));
  }

  /** The pod that owns an address, with its identity (addressOwners, remembered until the next change of pods or identities). */
  podAt(ip: string): { pod: string; identity: number | undefined } | undefined {
    if (this.ownersMemo?.version !== this.inputVersion) this.ownersMemo = { version: this.inputVersion, owners: this.addressOwners() };
    return this.ownersMemo.owners.get(ip);
  }

  /** Pod IP -> identity of its owner (addressOwners; IDENTITY_INIT while it has no number), sorted by address text; then the addresses learned from DNS. */
  ipcache(): Map<string, number> {
    if (this.podIpcacheMemo?.version !== this.inputVersion) {
      const pods = new Map<string, number>();
      // An owner without a number is INIT: a pod, never mistaken for `world`, matched by no selector.
      for (const [ip, owner] of this.addressOwners()) pods.set(ip, owner.identity ?? IDENTITY_INIT);
      this.podIpcacheMemo = { version: this.inputVersion, pods };
    }
    const out = new Map(this.podIpcacheMemo.pods);
    // Addresses learned from DNS (after the pods', in no particular order), unless a pod holds them: a pod is judged as itself.
    for (const [ip, id] of this.fqdn.addressIdentities()) if (!out.has(ip)) out.set(ip, id);
    return out;
  }

  private backedByRegistry(p: PodRec): boolean {
    if (this.local === undefined) return true;
    const wired = this.local.get(p.ip!);
    if (wired !== undefined) return wired === p.key;
    return this.node === undefined || p.input.node !== this.node;
  }

  problems(): Problem[] {
    this.flush();
    const out: Problem[] = [];
    for (const p of this.policies.values()) out.push(...p.ir.problems);
    for (const list of this.endpointProblems.values()) out.push(...list);
    for (const p of this.cluster.pods.values()) {
      if (p.input.ip !== undefined && p.address === undefined) {
        out.push({ code: 'InvalidPodIP', message: `pod IP ${JSON.stringify(p.input.ip)} does not parse: the pod is not an endpoint`, endpoint: p.key });
      }
    }
    return out.sort(compareProblems);
  }

  /** Everything, as the one-shot compile() returns it. */
  snapshot(): CompiledPolicy {
    this.flush();
    const endpoints = new Map<string, EndpointPolicy>();
    for (const k of [...this.outputs.keys()].sort()) endpoints.set(k, this.outputs.get(k)!);
    let total: EntryCount | undefined;
    const sum = (): EntryCount => {
      let policy = 0;
      let cidr = 0;
      for (const e of endpoints.values()) {
        for (const d of [e.ingress, e.egress]) {
          policy += d?.entryCount.policy ?? 0;
          cidr += d?.entryCount.cidr ?? 0;
        }
      }
      return { policy, cidr };
    };
    const out = { endpoints, ipcache: this.ipcache(), missingIdentities: this.missingIdentities(), problems: this.problems() };
    // Computed when first read (see direction.ts).
    return Object.defineProperty(out, 'entryCount', { enumerable: true, get: () => (total ??= sum()) }) as CompiledPolicy;
  }

  // ---- bookkeeping ----

  private acquirePeer(ir: PeerIR, rule: RuleRec): Peer {
    const peer = this.cluster.acquirePeer(ir);
    let users = this.peerUsers.get(peer);
    if (!users) this.peerUsers.set(peer, (users = new Set()));
    users.add(rule);
    return peer;
  }

  private releasePeer(peer: Peer, rule: RuleRec) {
    const users = this.peerUsers.get(peer);
    users?.delete(rule);
    this.cluster.releasePeer(peer);
    if (peer.refs === 0) this.peerUsers.delete(peer);
  }

  private removePolicy(rec: PolicyRec) {
    for (const pod of rec.selected) {
      this.unselectOnly(rec, pod);
      this.dirty.add(pod.key);
    }
    for (const r of LANES.flatMap((lane) => rec[lane] ?? [])) {
      for (const peer of r.peers) this.releasePeer(peer, r);
      if (r.namedAll) this.releasePeer(r.namedAll, r);
      this.namedBlockRules.delete(r);
      this.worldRules.delete(r);
      for (const k of r.fqdnKeys) {
        const users = this.fqdnRules.get(k);
        users?.delete(r);
        if (users?.size === 0) this.fqdnRules.delete(k);
        this.fqdn.release(k);
      }
    }
    for (const slot of rec.slots) {
      this.slots.delete(slot.key);
      slot.result = undefined;
      for (const p of slot.pols) if (p !== rec) p.slots.delete(slot);
    }
    for (const r of rec.ir.egress ?? []) this.dnsRestrictions.delete(ruleRefString(r.ref));
    if (rec.ns) this.nsPolicies.get(rec.ns.name)?.delete(rec);
    else this.clusterPolicies.delete(rec);
    this.policies.delete(rec.ir.key);
    this.invalidated.delete(rec);
  }

  private select(rec: PolicyRec, pod: PodRec) {
    rec.selected.add(pod);
    let pp = this.podPolicies.get(pod);
    if (!pp) this.podPolicies.set(pod, (pp = { set: new Set(), view: undefined }));
    pp.set.add(rec);
    pp.view = undefined;
  }

  /** Removes `rec` from the pod's policies (not the pod from rec.selected). */
  private unselectOnly(rec: PolicyRec, pod: PodRec) {
    const pp = this.podPolicies.get(pod);
    if (!pp) return;
    pp.set.delete(rec);
    pp.view = undefined;
  }

  /** Selects the pod again by every policy that may select it (`namespaceOnly`: by those that look at namespace labels). */
  private reselect(pod: PodRec, namespaceOnly = false) {
    for (const rec of [...(this.nsPolicies.get(pod.ns.name) ?? []), ...this.clusterPolicies]) {
      if (namespaceOnly && rec.ir.nsSelector === undefined) continue;
      const m = selects(rec, pod);
      if (m && !rec.selected.has(pod)) this.select(rec, pod);
      else if (!m && rec.selected.has(pod)) {
        rec.selected.delete(pod);
        this.unselectOnly(rec, pod);
      }
    }
  }

  private policyView(pod: PodRec): PolicyView {
    const pp = this.podPolicies.get(pod);
    if (pp?.view) return pp.view;
    const pols = [...(pp?.set ?? [])].sort(byPolicyKey);
    // A direction is isolated when a selecting policy isolates it; then the
    // allow rules of every selecting policy count (a Palisade policy may
    // allow without isolating). Deny rules count whether or not it is.
    const lane = (l: Lane) => pols.filter((p) => p[l] !== null);
    const isolated = (d: Direction) => pols.some((p) => p[d] !== null && p.ir.isolates[d]);
    const ingress = isolated('ingress') ? lane('ingress') : [];
    const egress = isolated('egress') ? lane('egress') : [];
    const ingressDeny = lane('ingressDeny');
    const egressDeny = lane('egressDeny');
    const named = ingress.some((p) => p.ingressNamed);
    const view: PolicyView = {
      ingress: ingress.length === 0 || named ? undefined : this.slot('ingress', ingress, ''),
      egress: egress.length === 0 ? undefined : this.slot('egress', egress, ''),
      ingressDeny: ingressDeny.length === 0 ? undefined : this.slot('ingressDeny', ingressDeny, ''),
      egressDeny: egressDeny.length === 0 ? undefined : this.slot('egressDeny', egressDeny, ''),
      ingressNamed: named ? new Map() : undefined,
    };
    if (pp) pp.view = view;
    return view;
  }

  /** The shared slot for a direction, its policies (sorted), and the endpoint's named-port signature. */
  private slot(direction: Lane, pols: PolicyRec[], signature: string): DirSlot {
    let key = `${direction}:${signature}:`;
    for (const p of pols) key += `${p.serial},`;
    let slot = this.slots.get(key);
    if (!slot) {
      slot = { key, direction, pols, result: undefined };
      this.slots.set(key, slot);
      for (const p of pols) p.slots.add(slot);
    }
    return slot;
  }

  private podAddressChanged(before: Address | undefined, after: Address | undefined) {
    this.addressVersion++;
    if (this.blockCache.size > 4096) this.blockCache.clear();
    for (const r of this.namedBlockRules) {
      const hit = (a: Address | undefined) => a !== undefined && r.ir.ipBlocks.some((b) => addressInPrefix(b.prefix, a));
      if (hit(before) || hit(after)) this.invalidateRule(r);
    }
  }

  private peerChanged(peer: Peer, what: 'identities' | 'named') {
    for (const r of this.peerUsers.get(peer) ?? []) {
      if (what === 'named' && !(r.direction === 'egress' && r.ir.hasNamedPorts)) continue;
      this.invalidateRule(r);
    }
  }

  private invalidateRule(r: RuleRec) {
    r.stale = true;
    const rec = r.policy;
    if (this.invalidated.has(rec)) return;
    this.invalidated.add(rec);
    for (const slot of rec.slots) slot.result = undefined;
    for (const pod of rec.selected) this.dirty.add(pod.key);
  }

  // ---- compiling ----

  private isEndpoint(pod: PodRec): boolean {
    return pod.ip !== undefined && (this.node === undefined || pod.input.node === this.node);
  }

  private flush() {
    if (this.dirty.size === 0) return;
    const changed: string[] = [];
    for (const key of this.dirty) {
      const pod = this.cluster.pods.get(key);
      const next = pod && this.isEndpoint(pod) ? this.compileEndpoint(pod) : undefined;
      if (!next) this.endpointProblems.delete(key);
      if (endpointEqual(this.outputs.get(key), next)) continue;
      if (next) this.outputs.set(key, next);
      else this.outputs.delete(key);
      changed.push(key);
    }
    this.dirty.clear();
    this.invalidated.clear();
    if (changed.length > 0) {
      this.gen++;
      for (const k of changed) this.changedAt.set(k, this.gen);
    }
    this.collectGarbage();
  }

  private collectGarbage() {
    // Forget old markers of removed endpoints.
    if (this.changedAt.size > this.outputs.size + 1024) {
      for (const [k, g] of this.changedAt) {
        if (!this.outputs.has(k) && g < this.gen - RETAIN_GENERATIONS) {
          this.changedAt.delete(k);
          this.horizon = Math.max(this.horizon, g);
        }
      }
    }
    // Drop shared direction slots no endpoint uses any more.
    if (this.slots.size > 2 * this.podPolicies.size + 1024) {
      const used = new Set<DirSlot>();
      for (const pp of this.podPolicies.values()) {
        for (const lane of LANES) if (pp.view?.[lane]) used.add(pp.view[lane]);
        for (const s of pp.view?.ingressNamed?.values() ?? []) used.add(s);
      }
      for (const [k, slot] of this.slots) {
        if (used.has(slot)) continue;
        this.slots.delete(k);
        for (const p of slot.pols) p.slots.delete(slot);
      }
    }
    if (this.regionsCache.size > 4096) this.regionsCache.clear();
  }

  private compileEndpoint(pod: PodRec): EndpointPolicy {
    const view = this.policyView(pod);
    let ingress = view.ingress;
    if (view.ingressNamed) {
      // Ingress named ports resolve on the endpoint: its named ports are part of the slot.
      const sig = this.signature(pod);
      ingress = view.ingressNamed.get(sig);
      if (!ingress) {
        const pols = [...(this.podPolicies.get(pod)?.set ?? [])].filter((p) => p.ingress !== null).sort(byPolicyKey);
        // (named ingress ports exist in NetworkPolicies only, which always isolate when they have ingress rules)
        view.ingressNamed.set(sig, (ingress = this.slot('ingress', pols, sig)));
      }
    }
    const ing = ingress && this.direction(pod, ingress);
    const eg = view.egress && this.direction(pod, view.egress);
    const ingDeny = view.ingressDeny && this.direction(pod, view.ingressDeny);
    const egDeny = view.egressDeny && this.direction(pod, view.egressDeny);
    let dns = false;
    let failClosed = false;
    for (const p of this.podPolicies.get(pod)?.set ?? []) {
      dns ||= p.hasDns;
      failClosed ||= p.dnsFailClosed;
    }
    const problems = [ing?.problem, eg?.problem, ingDeny?.problem, egDeny?.problem].filter((p) => p !== undefined).map((p) => ({ ...p, endpoint: pod.key }));
    if (problems.length > 0) this.endpointProblems.set(pod.key, problems);
    else if (this.endpointProblems.size > 0) this.endpointProblems.delete(pod.key);
    return {
      endpoint: pod.key,
      ip: pod.ip!,
      node: pod.input.node,
      identityKey: pod.group.key,
      identity: pod.group.identity,
      ingress: ing?.policy,
      egress: eg?.policy,
      ingressDeny: ingDeny?.policy,
      egressDeny: egDeny?.policy,
      ...(dns ? { dns: failClosed ? DNS_REDIRECT_FAIL_CLOSED : DNS_REDIRECT } : {}),
    };
  }

  private signature(pod: PodRec): string {
    let s = this.signatures.get(pod);
    if (!s || s.ports !== pod.input.containerPorts) this.signatures.set(pod, (s = { ports: pod.input.containerPorts, sig: namedSignature(pod.input.containerPorts) }));
    return s.sig;
  }

  private direction(pod: PodRec, slot: DirSlot): DirResult {
    return (slot.result ??= this.buildDirection(pod, slot.direction, slot.pols));
  }

  private buildDirection(pod: PodRec, d: Lane, pols: PolicyRec[]): DirResult {
    // Policies in key order, rules in index order: the concatenation of the
    // rules' (sorted, deduplicated) entries is sorted and deduplicated.
    const segments: Segment[] = [];
    const withItems: RuleOutput[] = [];
    let regionKey = '';
    for (const p of pols) {
      for (const r of p[d]!) {
        const out = this.ruleOutput(r, pod);
        segments.push(out);
        if (out.items.length > 0) {
          withItems.push(out);
          regionKey += `${out.serial},`;
        }
      }
    }
    // Allow lanes: the policies that isolate; deny lanes: those with deny rules.
    const isolatedBy = (d === 'ingress' || d === 'egress' ? pols.filter((p) => p.ir.isolates[d]) : pols).map((p) => p.ir.ref);
    // The regions depend only on the items, which come from the rule
    // outputs: shared by the outputs' serials.
    let regions = this.regionsCache.get(regionKey);
    if (!regions) {
      regions = computeRegions(withItems.length === 1 ? withItems[0]!.items : withItems.flatMap((o) => o.items));
      this.regionsCache.set(regionKey, regions);
    }
    if (!regions.ok) {
      const [a, b] = regions.collision;
      return {
        policy: makeDirectionPolicy(isolatedBy, [], []),
        problem: {
          code: 'RegionIdCollision',
          message: `${d}: prefixes ${a} and ${b} share region id ${regions.regionId}: this direction denies everything (fail closed)`,
        },
      };
    }
    return { policy: makeDirectionPolicy(isolatedBy, segments, regions.regions), problem: undefined };
  }

  private idPeer(id: number): PeerClass {
    let p = this.identityPeers.get(id);
    if (!p) this.identityPeers.set(id, (p = { kind: 'identity', identity: id }));
    return p;
  }

  private readonly peerOf = (id: number) => this.idPeer(id);

  /**
   * (prefix, port) covering exactly the pod addresses inside the block (minus
   * its excepts) whose pod resolves the named port to that port, sorted by
   * port; cached per block and name until a pod's address or ports change.
   */
  private podsInBlock(b: IpBlockIR, name: string, protocol: Protocol): readonly (readonly [Prefix, number])[] {
    const key = `${b.prefix.text}|${b.except.map((e) => e.text).join(',')}|${name}/${protocol}`;
    const cached = this.blockCache.get(key);
    if (cached && cached.version === this.addressVersion) return cached.list;
    const list: [Prefix, number][] = [];
    // The pods by address: those inside the block are contiguous from the first one not below its start.
    const pods = this.podsByAddress();
    let lo = 0;
    let hi = pods.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (comparePrefixes(pods[mid]!.host, b.prefix) < 0) lo = mid + 1;
      else hi = mid;
    }
    // Per port, the host prefixes of the pods that resolve the name to it (in address order).
    const byPort = new Map<number, Prefix[]>();
    for (let i = lo; i < pods.length && addressInPrefix(b.prefix, pods[i]!.pod.address!); i++) {
      const { pod, host } = pods[i]!;
      if (b.except.some((e) => addressInPrefix(e, pod.address!))) continue;
      for (const port of new Set(resolveNamedPort(pod.input.containerPorts, name, protocol))) {
        const hosts = byPort.get(port);
        if (!hosts) byPort.set(port, [host]);
        else if (comparePrefixes(hosts[hosts.length - 1]!, host) !== 0) hosts.push(host);
      }
    }
    // Runs of consecutive pod addresses merge into wider prefixes (exactly the same addresses).
    for (const port of [...byPort.keys()].sort((x, y) => x - y)) for (const prefix of aggregatePrefixes(byPort.get(port)!)) list.push([prefix, port]);
    this.blockCache.set(key, { version: this.addressVersion, list });
    return list;
  }

  /** The pods with an address and their host prefixes, sorted by address (rebuilt after address changes). */
  private podsByAddress(): readonly { pod: PodRec; host: Prefix }[] {
    if (this.byAddress?.version !== this.addressVersion) {
      const list: { pod: PodRec; host: Prefix }[] = [];
      for (const pod of this.cluster.pods.values()) if (pod.address) list.push({ pod, host: hostPrefix(pod.address) });
      list.sort((x, y) => comparePrefixes(x.host, y.host) || (x.pod.key < y.pod.key ? -1 : 1));
      this.byAddress = { version: this.addressVersion, list };
    }
    return this.byAddress.list;
  }

  /** The sorted identities of a rule's selector peers (the previous array when unchanged). */
  private ruleIdentities(r: RuleRec): readonly number[] {
    if (r.peers.length === 0) return NO_IDS;
    if (r.peers.length === 1) return this.cluster.peerIdentities(r.peers[0]!);
    const parts = r.peers.map((peer) => this.cluster.peerIdentities(peer));
    // The peers' arrays are replaced only when they change: same arrays, same union.
    const prev = r.union;
    if (prev && prev.parts.every((p, i) => p === parts[i])) return prev.ids;
    const next = mergeSorted(parts);
    r.union = { parts, ids: prev && sameNumbers(prev.ids, next) ? prev.ids : next };
    return r.union.ids;
  }

  /**
   * A rule's entries that do not depend on the endpoint (everything but
   * ingress named ports), generated in sorted order: ANY entries, then per
   * identity (ascending) its port specs (sorted).
   */
  /** What rule `r` allows for endpoint `pod` (shared by every endpoint, or per resolution of its named ports). */
  private ruleOutput(r: RuleRec, pod: PodRec): RuleOutput {
    if (r.direction === 'ingress' && r.ir.hasNamedPorts) return this.ruleOutputForResolution(r, pod);
    if (r.cache && !r.stale) return r.cache;
    const next = this.computeRuleOutput(r, r.plain);
    r.stale = false;
    // Keep the old output when nothing changed: its entries, if built, stay shared.
    if (r.cache && r.cache.equals(next)) return r.cache;
    return (r.cache = next);
  }

  /**
   * Ingress named ports resolve on the endpoint itself: resolved against its
   * container ports, they join the rule's numeric ports; the output is shared
   * by the endpoints with the same named container ports.
   */
  private ruleOutputForResolution(r: RuleRec, pod: PodRec): RuleOutput {
    // Keyed by what the names resolve to on this pod: endpoints whose named
    // ports differ elsewhere still share the rule's output.
    const resolved: PortSpec[] = [];
    let key = '';
    for (const n of namedPorts(r.ir.ports)) {
      for (const num of resolveNamedPort(pod.input.containerPorts, n.name, n.protocol)) {
        resolved.push({ protocol: n.protocol, port: { from: num, to: num } });
        key += `${n.protocol}/${num},`;
      }
    }
    r.byResolution ??= new Map();
    if (r.stale) {
      r.stale = false;
      for (const v of r.byResolution.values()) v.fresh = false;
    }
    const old = r.byResolution.get(key);
    if (old?.fresh) return old.out;
    const next = this.computeRuleOutput(r, resolved.length === 0 ? r.plain : sortPorts([...r.plain, ...resolved]));
    const out = old && old.out.equals(next) ? old.out : next;
    r.byResolution.set(key, { out, fresh: true });
    return out;
  }

  private computeRuleOutput(r: RuleRec, plain: readonly PortSpec[]): RuleOutput {
    const items: CidrItem[] = [];
    const rule = r.ir.ref;
    if (!r.ir.allPeers) {
      for (const b of r.ir.ipBlocks) {
        for (const pp of plain) items.push({ prefix: b.prefix, except: b.except, protocol: pp.protocol, port: pp.port, rule });
      }
    }
    let ids = r.ir.allPeers || plain.length === 0 ? NO_IDS : this.ruleIdentities(r);
    if (!r.ir.allPeers && plain.length > 0) {
      // Entities are reserved identity classes, below every pod identity;
      // toFQDNs are the identities of learned addresses' selector sets,
      // above them, and `world` includes every learned address.
      const parts: (readonly number[])[] = [];
      if (r.ir.entities.length > 0) parts.push(r.ir.entities);
      if (ids.length > 0) parts.push(ids);
      if (r.fqdnKeys.length > 0) parts.push(this.fqdn.idsFor(r.fqdnKeys));
      if (this.worldRules.has(r)) parts.push(this.fqdn.allIds());
      const nonEmpty = parts.filter((p) => p.length > 0);
      ids = nonEmpty.length === 0 ? NO_IDS : nonEmpty.length === 1 ? nonEmpty[0]! : mergeSorted(nonEmpty);
    }
    const named = namedPorts(r.ir.ports);
    // Egress named ports resolve on the destination: per peer identity, the
    // ports of that identity's pods when they agree, else per pod address
    // (host prefixes, as CIDR items) (cached per peer and name).
    let byIdentity: ReadonlyMap<number, readonly PortSpec[]> | undefined;
    if (r.direction === 'egress' && named.length > 0) {
      const sources: ReadonlyMap<number, readonly PortSpec[]>[] = [];
      for (const peer of r.namedAll ? [r.namedAll] : r.peers) {
        for (const n of named) {
          const resolved = this.cluster.peerNamedPorts(peer, n.name, n.protocol);
          sources.push(resolved.byIdentity);
          for (const [prefix, port] of resolved.hosts) items.push({ prefix, except: NO_EXCEPT, protocol: n.protocol, port: { from: port, to: port }, rule });
        }
      }
      if (sources.length === 1 && ids.length === 0) {
        byIdentity = sources[0];
      } else {
        const merged = new Map<number, PortSpec[]>();
        for (const src of sources) {
          for (const [id, specs] of src) {
            const list = merged.get(id);
            if (list) list.push(...specs);
            else merged.set(id, [...specs]);
          }
        }
        const inIds = new Set(ids);
        for (const [id, extra] of merged) merged.set(id, sortPorts(inIds.has(id) ? [...plain, ...extra] : extra));
        byIdentity = merged;
      }
      // ipBlock peers: exactly the pod addresses inside the block (minus its
      // excepts) whose pod has the named port, as host prefixes.
      if (r.namedBlocks) {
        for (const b of r.ir.ipBlocks) {
          for (const n of named) {
            for (const [prefix, port] of this.podsInBlock(b, n.name, n.protocol)) {
              items.push({ prefix, except: NO_EXCEPT, protocol: n.protocol, port: { from: port, to: port }, rule });
            }
          }
        }
      }
    }
    return new RuleOutput({ rule, any: r.ir.allPeers ? plain : NO_SPECS, ids, plain, named: byIdentity, items, peerOf: this.peerOf, serial: ++this.serial });
  }

}
