// Plain data types of the policy compiler: its inputs (NetworkPolicy as in the
// networking.k8s.io/v1 API, pods, namespaces) and its output (abstract
// per-endpoint policy entries that another module translates into the maps of
// docs/adr/0001-datapath-maps.md).

import type { DnsServers } from './palisade-ir.ts';
import type { PalisadePolicySpec } from './palisade-policy.ts';

export type Protocol = 'TCP' | 'UDP' | 'SCTP';
export type PolicyType = 'Ingress' | 'Egress';
export type Direction = 'ingress' | 'egress';
export type Labels = Readonly<Record<string, string>>;

// ---- inputs ---------------------------------------------------------------

export interface LabelSelectorRequirement {
  key: string;
  operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';
  values?: string[];
}

/** metav1.LabelSelector. `{}` (or both fields empty) selects everything. */
export interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: LabelSelectorRequirement[];
}

export interface IPBlock {
  cidr: string;
  except?: string[];
}

/** Exactly one of ipBlock, or podSelector and/or namespaceSelector (validated). */
export interface NetworkPolicyPeer {
  podSelector?: LabelSelector;
  namespaceSelector?: LabelSelector;
  ipBlock?: IPBlock;
}

export interface NetworkPolicyPort {
  /** TCP when absent. */
  protocol?: Protocol;
  /** A number, or a container port name (IANA_SVC_NAME). Absent: every port of the protocol. */
  port?: number | string;
  /** Inclusive end of a numeric range starting at `port`. */
  endPort?: number;
}

export interface NetworkPolicyIngressRule {
  from?: NetworkPolicyPeer[];
  ports?: NetworkPolicyPort[];
}

export interface NetworkPolicyEgressRule {
  to?: NetworkPolicyPeer[];
  ports?: NetworkPolicyPort[];
}

export interface NetworkPolicySpec {
  podSelector: LabelSelector;
  policyTypes?: PolicyType[];
  ingress?: NetworkPolicyIngressRule[];
  egress?: NetworkPolicyEgressRule[];
}

export interface NetworkPolicyInput {
  namespace: string;
  name: string;
  spec: NetworkPolicySpec;
}

/** A PalisadeNetworkPolicy or PalisadeClusterNetworkPolicy, its spec validated and normalized (validatePalisadePolicy). */
export interface PalisadePolicyInput {
  kind: PalisadePolicyKind;
  /** '' for a PalisadeClusterNetworkPolicy. */
  namespace: string;
  name: string;
  spec: PalisadePolicySpec;
}

export interface ContainerPort {
  name?: string;
  containerPort: number;
  protocol: Protocol;
}

export interface PodInput {
  namespace: string;
  name: string;
  labels: Labels;
  /** The pod IP (IPv4 or IPv6). A pod without one is not an endpoint and not reachable. */
  ip?: string;
  node?: string;
  containerPorts: ContainerPort[];
  /**
   * metadata.uid and metadata.creationTimestamp (ms since the epoch): when
   * two pods claim one address, the most recently created owns it, the
   * greater uid on a tie (see Compiler.addressOwners). Absent: oldest.
   */
  uid?: string;
  createdAt?: number;
}

export interface NamespaceInput {
  name: string;
  labels: Labels;
}

// ---- outputs --------------------------------------------------------------

/** The kind of a policy; absent in a reference: a NetworkPolicy. */
export type PalisadePolicyKind = 'PalisadeNetworkPolicy' | 'PalisadeClusterNetworkPolicy';

export interface PolicyRef {
  /** Absent: a networking.k8s.io/v1 NetworkPolicy. */
  kind?: PalisadePolicyKind;
  /** '' for a PalisadeClusterNetworkPolicy. */
  namespace: string;
  name: string;
}

/**
 * A rule of a policy; string form `ns/name/ingress/2` for a NetworkPolicy,
 * `pnp:ns/name/egressDeny/0` and `pcnp:name/ingress/1` for Palisade's kinds
 * (see ruleRefString).
 */
export interface RuleRef {
  kind?: PalisadePolicyKind;
  namespace: string;
  name: string;
  direction: Direction;
  /** Index of the rule in spec.ingress or spec.egress (spec.ingressDeny or spec.egressDeny when `deny`). */
  index: number;
  /** A rule of spec.ingressDeny or spec.egressDeny: what it matches is dropped, whatever allows it. */
  deny?: true;
  /**
   * The DNS queries an egress rule with toFQDNs allows by itself (to the
   * cluster's DNS servers on UDP and TCP 53), named after that rule:
   * `pnp:ns/name/egress/0/dns`.
   */
  implicitDns?: true;
}

/**
 * The peer class of an entry, as in the ADR's `pal_policy` key:
 * - identity: a pod identity (256 .. 2^24-1);
 * - any: every peer, pod or not (identity 0 in the map);
 * - region: a CIDR region of this endpoint and direction (`2^31 | h`), found by
 *   longest-prefix match of the peer address over DirectionPolicy.cidrRegions.
 *
 * ipBlock peers are never emitted as a single "cidr" class: an ipBlock with
 * excepts is not one prefix. They become regions (see regions.ts).
 */
export type PeerClass =
  | { kind: 'identity'; identity: number }
  | { kind: 'any' }
  | { kind: 'region'; regionId: number };

export type EntryProtocol = Protocol | 'ANY';
export type PortRange = { from: number; to: number };

export interface PolicyEntry {
  peer: PeerClass;
  protocol: EntryProtocol;
  /** Inclusive range, or every port. Always 'any' when protocol is 'ANY'. */
  port: PortRange | 'any';
  rule: RuleRef;
}

export interface CidrRegion {
  /** Normalized prefix, e.g. `10.0.0.0/8`, `fd00::/64`. */
  prefix: string;
  family: 4 | 6;
  /** `2^31 | (FNV-1a-32(prefix) & 0x7fffffff)` (see regionId in ids.ts). */
  regionId: number;
  /** Entries whose peer is `{kind: 'region', regionId}`; may be empty (an except hole). */
  entries: PolicyEntry[];
}

/** Map entries the datapath needs for one direction (see entryCount in entries.ts). */
export interface EntryCount {
  /** `pal_policy` hash entries: summaries, per-protocol and per-port entries (ranges expanded). */
  policy: number;
  /** `pal_policy_cidr` LPM entries: one per region. */
  cidr: number;
}

export interface DirectionPolicy {
  /** The policies that select the endpoint for this direction, sorted. */
  isolatedBy: PolicyRef[];
  /** Identity and ANY entries, sorted and deduplicated. */
  entries: PolicyEntry[];
  /** The endpoint's CIDR regions in this direction, sorted by family, address, length. */
  cidrRegions: CidrRegion[];
  entryCount: EntryCount;
}

export interface EndpointPolicy {
  /** `namespace/name` */
  endpoint: string;
  ip: string;
  node: string | undefined;
  identityKey: string;
  /** undefined while the allocator has no number for identityKey. */
  identity: number | undefined;
  /** undefined: no policy isolates the pod for ingress (every peer allowed, deny rules aside). */
  ingress: DirectionPolicy | undefined;
  egress: DirectionPolicy | undefined;
  /**
   * The deny rules of the Palisade policies that select the pod, per
   * direction (undefined: none). Entries and regions as for the allow side;
   * what they match is dropped before any allow is looked at, whether or not
   * the direction is isolated. `isolatedBy` lists the policies with deny
   * rules in that direction.
   */
  ingressDeny: DirectionPolicy | undefined;
  egressDeny: DirectionPolicy | undefined;
  /**
   * Present when a selecting policy has FQDN rules (toFQDNs, allow or deny)
   * or DNS rules (rules.dns): the pod's DNS queries go through the node's
   * DNS proxy, which learns the answers and enforces the DNS rules.
   * `failClosed`: some selecting rule has rules.dns, which must not be
   * bypassed: while no proxy runs, the pod's queries are dropped rather than
   * sent to the server unchecked.
   */
  dns?: { redirect: true; failClosed?: true };
}

export interface Problem {
  code: 'InvalidCIDR' | 'InvalidSelector' | 'InvalidPort' | 'InvalidPeer' | 'InvalidPodIP' | 'RegionIdCollision';
  message: string;
  /** `namespace/name` of the policy concerned, if any. */
  policy?: string;
  /** `namespace/name` of the endpoint concerned, if any. */
  endpoint?: string;
}

export interface CompiledPolicy {
  /** Every endpoint (pod with an IP, on the node if one was given), in key order. */
  endpoints: Map<string, EndpointPolicy>;
  /** Pod IP -> identity for every pod address of the cluster (IDENTITY_INIT while its pod has no number) (pal_ipcache4 and pal_ipcache). */
  ipcache: Map<string, number>;
  /** Identity keys of pods that have no number yet, sorted. */
  missingIdentities: string[];
  problems: Problem[];
  /** Sum over endpoints and directions. */
  entryCount: EntryCount;
}

export interface CompileInput {
  policies: readonly NetworkPolicyInput[];
  palisadePolicies?: readonly PalisadePolicyInput[];
  /** Names learned from DNS answers, with their addresses. */
  dnsNames?: ReadonlyMap<string, readonly string[]>;
  /** The DNS servers an FQDN rule's implicit DNS rule allows (default: `k8s-app: kube-dns` in `kube-system`). */
  dnsServers?: DnsServers;
  pods: readonly PodInput[];
  namespaces: readonly NamespaceInput[];
  identities: ReadonlyMap<string, number>;
  /** Only pods on this node are endpoints; all pods are peers. */
  node?: string;
}
