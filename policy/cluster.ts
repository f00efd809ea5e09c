// The cluster as the compiler sees it, kept incrementally: namespaces, pods,
// security groups (pods sharing one identity key), identities, and the
// selector peers of the policies with the groups each one matches.
//
// Selector matching happens per GROUP, never per pod per rule: a peer's match
// set is computed once when the peer is first used, and updated only when a
// group appears or disappears (a pod's labels change, a namespace's labels
// change). A new group is tested only against the peers that can match it:
// the podSelector-only peers of its namespace, and the peers whose
// namespaceSelector matches its namespace (kept per namespace).
//
// Changes that alter what a peer contributes to policy entries are reported
// to the listener: 'identities' (a group with an identity number joined or
// left the peer, or a member group's number changed) and 'named' (the named
// container ports of a member group changed).
//
// Make-before-break: a pod relabelled to a label set that has no identity
// number yet, while its current label set has one, is HELD: it stays in its
// current group (same identity, same labels for every selector, its own
// policies included) and its new labels wait in `wanted`. Once the new set
// gets a number (setIdentities) the pod moves in one step; if its current
// number goes first, or its namespace is relabelled, it takes its new labels
// without waiting (no number: fail closed, as for a new pod). Only labels are
// held: address, ports and the rest apply at once.

import { aggregatePrefixes, comparePrefixes, formatAddress, hostPrefix, parseAddress, type Address, type Prefix } from './cidr.ts';
import { identityKey, NAMESPACE_NAME_LABEL } from './ids.ts';
import type { PeerIR } from './ir.ts';
import { LabelIndex } from './label-index.ts';
import type { CompiledSelector } from './selectors.ts';
import type { PortSpec } from './rule-output.ts';
import type { ContainerPort, Labels, PodInput, PortRange, Protocol } from './types.ts';

export interface NsRec {
  name: string;
  /** Always include `kubernetes.io/metadata.name: name`. */
  labels: Labels;
  known: boolean;
  pods: Set<PodRec>;
  groups: Set<Group>;
  scopedPeers: Set<Peer>;
  /** Namespace selectors (of peers) that match this namespace. */
  nsSels: Set<NsSel>;
}

export interface PodRec {
  key: string;
  input: PodInput;
  ns: NsRec;
  address: Address | undefined;
  /** Normalized address text. */
  ip: string | undefined;
  group: Group;
  /** Held (make-before-break): the input whose labels wait for a number; `input` has the labels the pod is judged by. */
  wanted: PodInput | undefined;
}

export interface Group {
  key: string;
  ns: NsRec;
  labels: Labels;
  pods: Set<PodRec>;
  identity: number | undefined;
  peers: Set<Peer>;
  namedSig: string;
  namedCache: Map<string, GroupNamed> | undefined;
}

/** What a named port resolves to on a group's pods: one list when they all agree, else per pod. */
export type GroupNamed = { agree: true; ports: number[] } | { agree: false; pods: Array<{ pod: PodRec; ports: number[] }> };

/**
 * A peer's resolution of a named port: per identity whose pods agree, their
 * ports; for identities whose pods disagree, (host prefix, port) per pod with
 * an address, runs of consecutive addresses merged, sorted by port then prefix.
 */
export interface PeerNamed {
  byIdentity: ReadonlyMap<number, readonly PortSpec[]>;
  hosts: readonly (readonly [Prefix, number])[];
}

export interface NsSel {
  key: string;
  sel: CompiledSelector;
  matched: Set<NsRec>;
  peers: Set<Peer>;
}

export interface Peer {
  ir: PeerIR;
  scope: NsRec | undefined;
  nsSel: NsSel | undefined;
  groups: Set<Group>;
  /** Number of rules using the peer. */
  refs: number;
  /** Sorted identity numbers of the groups; replaced only when its content changes. */
  identities: readonly number[];
  identitiesStale: boolean;
  /** Per `name/protocol`: what that name resolves to on the peer's pods (cleared on change). */
  named: Map<string, PeerNamed> | undefined;
}

export interface ClusterListener {
  peerChanged(peer: Peer, what: 'identities' | 'named'): void;
}

export interface PodChange {
  pod: PodRec;
  labelsChanged: boolean;
  /** Address or container ports changed (or the pod is new). */
  addressOrPortsChanged: boolean;
  oldAddress: Address | undefined;
}

const labelsEqual = (a: Labels, b: Labels) => {
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  return ka.every((k) => Object.prototype.hasOwnProperty.call(b, k) && a[k] === b[k]);
};

const portsEqual = (a: readonly ContainerPort[], b: readonly ContainerPort[]) =>
  a.length === b.length && a.every((p, i) => p.name === b[i]!.name && p.containerPort === b[i]!.containerPort && p.protocol === b[i]!.protocol);

export const sameNumbers = (a: readonly number[], b: readonly number[]) => a === b || (a.length === b.length && a.every((x, i) => x === b[i]));

/** The container port numbers a named port resolves to on one pod: same name AND same protocol. */
export function resolveNamedPort(ports: readonly ContainerPort[], name: string, protocol: Protocol): number[] {
  const out: number[] = [];
  for (const p of ports) if (p.name === name && (p.protocol ?? 'TCP') === protocol) out.push(p.containerPort);
  return out;
}

/**
 * What the group's named ports look like to a peer: the pods' named ports
 * when all pods have the same, else each pod's with its address (a named
 * port then resolves per address: see peerNamedPorts).
 */
function namedSignature(pods: Iterable<PodRec>): string {
  const per: string[] = [];
  for (const p of pods) {
    const named = p.input.containerPorts.filter((c) => c.name).map((c) => `${c.name}/${c.protocol ?? 'TCP'}/${c.containerPort}`);
    per.push([...new Set(named)].sort().join(','));
  }
  if (per.every((x) => x === per[0])) return per[0] ?? '';
  let i = 0;
  const withAddresses: string[] = [];
  for (const p of pods) withAddresses.push(`${p.ip ?? '-'}=${per[i++]}`);
  return withAddresses.sort().join(';');
}

export class ClusterState {
  readonly namespaces = new Map<string, NsRec>();
  readonly pods = new Map<string, PodRec>();
  readonly groups = new Map<string, Group>();
  private readonly groupIndex = new LabelIndex<Group>();
  private readonly nsSels = new Map<string, NsSel>();
  private readonly peers = new Map<string, Peer>();
  private identityMap: ReadonlyMap<string, number> = new Map();
  /** Pods judged by their previous labels until their new label set has a number. */
  private readonly held = new Set<PodRec>();
  private readonly listener: ClusterListener;

  constructor(listener: ClusterListener) {
    this.listener = listener;
  }

  // ---- namespaces ----

  ns(name: string): NsRec {
    let rec = this.namespaces.get(name);
    if (!rec) {
      rec = {
        name,
        labels: { [NAMESPACE_NAME_LABEL]: name },
        known: false,
        pods: new Set(),
        groups: new Set(),
        scopedPeers: new Set(),
        nsSels: new Set(),
      };
      this.namespaces.set(name, rec);
      for (const s of this.nsSels.values()) if (s.sel.matches(rec.labels)) this.linkNsSel(s, rec);
    }
    return rec;
  }

  /**
   * Sets a namespace's labels (undefined: the namespace object is gone).
   * Returns the pods whose identity key changed, and among them the held
   * pods that took their new labels (they must be selected again).
   */
  setNamespaceLabels(name: string, labels: Labels | undefined): { pods: PodRec[]; relabelled: PodRec[] } {
    const ns = this.ns(name);
    const next = { ...labels, [NAMESPACE_NAME_LABEL]: name };
    ns.known = labels !== undefined;
    if (labelsEqual(ns.labels, next)) return { pods: [], relabelled: [] };
    const pods = [...ns.pods];
    for (const p of pods) this.leaveGroup(p);
    // Every key of the namespace changes: a hold's old key means nothing any more.
    const relabelled = pods.filter((p) => p.wanted !== undefined);
    for (const p of relabelled) this.unhold(p);
    ns.labels = next;
    for (const s of this.nsSels.values()) {
      const m = s.sel.matches(next);
      if (m && !s.matched.has(ns)) this.linkNsSel(s, ns);
      else if (!m && s.matched.has(ns)) {
        s.matched.delete(ns);
        ns.nsSels.delete(s);
      }
    }
    for (const p of pods) this.joinGroup(p);
    return { pods, relabelled };
  }

  private linkNsSel(s: NsSel, ns: NsRec) {
    s.matched.add(ns);
    ns.nsSels.add(s);
  }

  // ---- pods ----

  setPod(input: PodInput): PodChange | undefined {
    const key = `${input.namespace}/${input.name}`;
    const address = input.ip === undefined ? undefined : parseAddress(input.ip);
    const ip = address && formatAddress(address);
    const old = this.pods.get(key);
    if (!old) {
      const ns = this.ns(input.namespace);
      const pod = { key, input, ns, address, ip, wanted: undefined } as PodRec;
      this.pods.set(key, pod);
      ns.pods.add(pod);
      this.joinGroup(pod);
      return { pod, labelsChanged: true, addressOrPortsChanged: true, oldAddress: undefined };
    }
    // Make-before-break: new labels without a number wait while the current ones have one.
    // (`input` of a held pod has the labels of its group: compare with those.)
    old.wanted = undefined;
    this.held.delete(old);
    if (
      !labelsEqual(old.input.labels, input.labels) &&
      old.group.identity !== undefined &&
      this.identityMap.get(identityKey(old.ns.labels, input.labels)) === undefined
    ) {
      old.wanted = input;
      this.held.add(old);
      input = { ...input, labels: old.input.labels };
    }
    const labelsChanged = !labelsEqual(old.input.labels, input.labels);
    const portsChanged = !portsEqual(old.input.containerPorts, input.containerPorts);
    const addressChanged = old.ip !== ip;
    const ownerChanged = old.input.uid !== input.uid || old.input.createdAt !== input.createdAt;
    if (!labelsChanged && !portsChanged && !addressChanged && !ownerChanged && old.input.node === input.node) return undefined;
    const oldAddress = old.address;
    if (labelsChanged) this.leaveGroup(old);
    old.input = input;
    old.address = address;
    old.ip = ip;
    if (labelsChanged) this.joinGroup(old);
    // An address matters to named ports when the group's pods disagree on them (see namedSignature).
    else if (portsChanged || addressChanged) this.groupPortsChanged(old.group);
    return { pod: old, labelsChanged, addressOrPortsChanged: portsChanged || addressChanged, oldAddress };
  }

  deletePod(key: string): PodRec | undefined {
    const pod = this.pods.get(key);
    if (!pod) return undefined;
    this.held.delete(pod);
    this.leaveGroup(pod);
    pod.ns.pods.delete(pod);
    this.pods.delete(key);
    return pod;
  }

  // ---- groups ----

  private joinGroup(pod: PodRec) {
    const ns = pod.ns;
    const key = identityKey(ns.labels, pod.input.labels);
    let g = this.groups.get(key);
    if (!g) {
      g = {
        key,
        ns,
        labels: pod.input.labels,
        pods: new Set([pod]),
        identity: this.identityMap.get(key),
        peers: new Set(),
        namedSig: namedSignature([pod]),
        namedCache: undefined,
      };
      this.groups.set(key, g);
      ns.groups.add(g);
      this.groupIndex.add(g, g.labels);
      pod.group = g;
      const test = (peer: Peer) => {
        if (!peer.ir.podSelector.matches(g!.labels)) return;
        peer.groups.add(g!);
        g!.peers.add(peer);
        if (g!.identity !== undefined) this.identitiesChanged(peer);
      };
      ns.scopedPeers.forEach(test);
      for (const s of ns.nsSels) s.peers.forEach(test);
      return;
    }
    g.pods.add(pod);
    pod.group = g;
    this.groupPortsChanged(g);
  }

  private leaveGroup(pod: PodRec) {
    const g = pod.group;
    g.pods.delete(pod);
    if (g.pods.size > 0) return this.groupPortsChanged(g);
    this.groups.delete(g.key);
    g.ns.groups.delete(g);
    this.groupIndex.remove(g, g.labels);
    for (const peer of g.peers) {
      peer.groups.delete(g);
      if (g.identity !== undefined) this.identitiesChanged(peer);
    }
    g.peers.clear();
  }

  private groupPortsChanged(g: Group) {
    g.namedCache = undefined;
    const sig = namedSignature(g.pods);
    if (sig === g.namedSig) return;
    g.namedSig = sig;
    if (g.identity === undefined) return;
    for (const peer of g.peers) {
      peer.named = undefined;
      this.listener.peerChanged(peer, 'named');
    }
  }

  private identitiesChanged(peer: Peer) {
    peer.identitiesStale = true;
    peer.named = undefined;
    this.listener.peerChanged(peer, 'identities');
  }

  /** The ports `name`/`protocol` resolves to on the group's pods: one list if they all agree, else per pod. */
  groupNamedPorts(g: Group, name: string, protocol: Protocol): GroupNamed {
    const k = `${name}/${protocol}`;
    g.namedCache ??= new Map();
    let named = g.namedCache.get(k);
    if (!named) {
      const pods = [...g.pods].map((pod) => ({ pod, ports: [...new Set(resolveNamedPort(pod.input.containerPorts, name, protocol))].sort((a, b) => a - b) }));
      const first = pods[0]?.ports ?? [];
      named = pods.every((p) => sameNumbers(p.ports, first)) ? { agree: true, ports: first } : { agree: false, pods };
      g.namedCache.set(k, named);
    }
    return named;
  }

  // ---- identities ----

  /** Stops holding a pod's labels: its input becomes the wanted one (the caller moves it between groups). */
  private unhold(pod: PodRec) {
    pod.input = pod.wanted!;
    pod.wanted = undefined;
    this.held.delete(pod);
  }

  /** The identity keys held pods wait for (their new label sets), unsorted. */
  pendingKeys(): string[] {
    return [...this.held].map((p) => identityKey(p.ns.labels, p.wanted!.labels));
  }

  /**
   * Replaces the identity numbers. Returns the pods whose own identity
   * changed, and among them the held pods that took their new labels (their
   * new set got a number, or their current one lost it): they must be
   * selected again.
   */
  setIdentities(map: ReadonlyMap<string, number>): { changed: PodRec[]; relabelled: PodRec[] } {
    // A copy: later changes to the caller's map take effect at the next call only.
    this.identityMap = new Map(map);
    const changed: PodRec[] = [];
    for (const g of this.groups.values()) {
      const id = map.get(g.key);
      if (id === g.identity) continue;
      g.identity = id;
      for (const peer of g.peers) this.identitiesChanged(peer);
      changed.push(...g.pods);
    }
    const relabelled: PodRec[] = [];
    for (const pod of [...this.held]) {
      if (map.get(identityKey(pod.ns.labels, pod.wanted!.labels)) === undefined && pod.group.identity !== undefined) continue;
      // One step: the pod leaves its old group and joins its new one before anything is read.
      this.leaveGroup(pod);
      this.unhold(pod);
      this.joinGroup(pod);
      relabelled.push(pod);
      changed.push(pod);
    }
    return { changed, relabelled };
  }

  // ---- peers ----

  /** The shared peer for `ir` (created with its match set on first use). */
  acquirePeer(ir: PeerIR): Peer {
    let peer = this.peers.get(ir.key);
    if (peer) {
      peer.refs++;
      return peer;
    }
    peer = { ir, scope: undefined, nsSel: undefined, groups: new Set(), refs: 1, identities: [], identitiesStale: true, named: undefined };
    const add = (g: Group) => {
      peer!.groups.add(g);
      g.peers.add(peer!);
    };
    if (ir.scopeNs !== undefined) {
      const ns = this.ns(ir.scopeNs);
      peer.scope = ns;
      ns.scopedPeers.add(peer);
      for (const g of ns.groups) if (ir.podSelector.matches(g.labels)) add(g);
    } else {
      const s = this.acquireNsSel(ir.nsSelector!);
      peer.nsSel = s;
      s.peers.add(peer);
      const candidates = this.groupIndex.candidates(ir.podSelector);
      if (candidates) {
        for (const g of candidates) if (s.matched.has(g.ns) && ir.podSelector.matches(g.labels)) add(g);
      } else {
        for (const ns of s.matched) for (const g of ns.groups) if (ir.podSelector.matches(g.labels)) add(g);
      }
    }
    this.peers.set(ir.key, peer);
    return peer;
  }

  releasePeer(peer: Peer): void {
    if (--peer.refs > 0) return;
    this.peers.delete(peer.ir.key);
    for (const g of peer.groups) g.peers.delete(peer);
    peer.groups.clear();
    peer.scope?.scopedPeers.delete(peer);
    const s = peer.nsSel;
    if (s) {
      s.peers.delete(peer);
      if (s.peers.size === 0) {
        this.nsSels.delete(s.key);
        for (const ns of s.matched) ns.nsSels.delete(s);
      }
    }
  }

  private acquireNsSel(sel: CompiledSelector): NsSel {
    let s = this.nsSels.get(sel.key);
    if (s) return s;
    s = { key: sel.key, sel, matched: new Set(), peers: new Set() };
    for (const ns of this.namespaces.values()) if (sel.matches(ns.labels)) this.linkNsSel(s, ns);
    this.nsSels.set(sel.key, s);
    return s;
  }

  /**
   * What `name`/`protocol` resolves to on the peer's pods (groups with an
   * identity number only: fail closed). Where all pods of an identity agree,
   * per identity its ports, as sorted port specs; where they do not (two
   * pods with equal labels giving the name different numbers), per pod
   * address its own ports, as host prefixes (CIDR regions of the rule), so
   * that each pod is reachable on its own ports only, as the spec says.
   * Cached on the peer: every rule using the peer with that named port
   * shares it.
   */
  peerNamedPorts(peer: Peer, name: string, protocol: Protocol): PeerNamed {
    const key = `${name}/${protocol}`;
    peer.named ??= new Map();
    let named = peer.named.get(key);
    if (!named) {
      const m = new Map<number, PortSpec[]>();
      const byPort = new Map<number, Prefix[]>();
      for (const g of peer.groups) {
        if (g.identity === undefined) continue;
        const resolved = this.groupNamedPorts(g, name, protocol);
        if (!resolved.agree) {
          for (const { pod, ports } of resolved.pods) {
            if (!pod.address) continue;
            for (const port of ports) {
              const list = byPort.get(port);
              if (list) list.push(hostPrefix(pod.address));
              else byPort.set(port, [hostPrefix(pod.address)]);
            }
          }
          continue;
        }
        if (resolved.ports.length === 0) continue;
        let list = m.get(g.identity);
        if (!list) m.set(g.identity, (list = []));
        for (const port of resolved.ports) if (!list.some((s) => s.port !== 'any' && s.port.from === port)) list.push({ protocol, port: { from: port, to: port } });
      }
      for (const list of m.values()) list.sort((a, b) => (a.port as PortRange).from - (b.port as PortRange).from);
      const hosts: (readonly [Prefix, number])[] = [];
      for (const port of [...byPort.keys()].sort((a, b) => a - b)) {
        const prefixes = byPort.get(port)!.sort(comparePrefixes).filter((p, i, all) => i === 0 || comparePrefixes(all[i - 1]!, p) !== 0);
        for (const prefix of aggregatePrefixes(prefixes)) hosts.push([prefix, port]);
      }
      named = { byIdentity: m, hosts };
      peer.named.set(key, named);
    }
    return named;
  }

  /** The sorted identity numbers of the peer's groups (groups without a number are left out: fail closed). */
  peerIdentities(peer: Peer): readonly number[] {
    if (peer.identitiesStale) {
      peer.identitiesStale = false;
      const set = new Set<number>();
      for (const g of peer.groups) if (g.identity !== undefined) set.add(g.identity);
      const next = [...set].sort((a, b) => a - b);
      // Keep the array when nothing changed: rule outputs compare it by reference.
      if (!sameNumbers(next, peer.identities)) peer.identities = next;
    }
    return peer.identities;
  }
}
