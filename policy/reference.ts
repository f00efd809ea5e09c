// A deliberately plain reading of the NetworkPolicy v1 semantics, written
// independently of the compiler (its own selector matching and CIDR
// arithmetic) and slow on purpose: every question scans every policy. The
// property tests check the compiled output against it.
//
// A connection from A to B on (protocol, port) is allowed when
//   - A is not a pod, or no policy selects A for Egress, or some egress rule
//     of a policy selecting A matches (peer B, protocol, port); and
//   - B is not a pod, or no policy selects B for Ingress, or some ingress
//     rule of a policy selecting B matches (peer A, protocol, port).
// A rule matches when (it has no peers, or one of its peers matches) and (it
// has no ports, or one of its ports matches). Named ports are looked up on
// the destination pod (B), in both directions.
//
// With Palisade's kinds (../shared/POLICY-API.md, read literally): a pod is
// isolated in a direction when a NetworkPolicy isolates it or a selecting
// Palisade policy enables default deny there; a deny rule of a selecting
// Palisade policy that matches refuses, whatever allows; an isolated pod
// allows what any allow rule of any selecting policy of either kind allows.
// Selectors see the pod's labels plus its pseudo-labels.

import { parseAddress } from './cidr.ts';
import type { PalisadeEgressRule, PalisadeIngressRule } from './palisade-policy.ts';
import type { LabelSelector, Labels, NamespaceInput, NetworkPolicyInput, NetworkPolicyPeer, NetworkPolicyPort, PalisadePolicyInput, PodInput, Protocol } from './types.ts';

export type Party = { pod: PodInput } | { ip: string };

const NAME_LABEL = 'kubernetes.io/metadata.name';

function matches(sel: LabelSelector, labels: Labels): boolean {
  for (const [k, v] of Object.entries(sel.matchLabels ?? {})) if (!Object.keys(labels).includes(k) || labels[k] !== v) return false;
  for (const e of sel.matchExpressions ?? []) {
    const has = Object.keys(labels).includes(e.key);
    const values = e.values ?? [];
    if (e.operator === 'In' && !(has && values.includes(labels[e.key]!))) return false;
    if (e.operator === 'NotIn' && has && values.includes(labels[e.key]!)) return false;
    if (e.operator === 'Exists' && !has) return false;
    if (e.operator === 'DoesNotExist' && has) return false;
  }
  return true;
}

function toBig(ip: string): { family: 4 | 6; value: bigint } | undefined {
  const a = parseAddress(ip);
  if (!a) return undefined;
  let v = 0n;
  for (const w of a.words) v = (v << 32n) | BigInt(w);
  return { family: a.family, value: v };
}

function inCidr(ip: string, cidr: string): boolean {
  const [addr, len] = cidr.split('/');
  const a = toBig(ip);
  const net = toBig(addr!);
  if (!a || !net || a.family !== net.family) return false;
  const width = a.family === 4 ? 32n : 128n;
  const shift = width - BigInt(Number(len));
  return a.value >> shift === net.value >> shift;
}

/** What else a connection may meet: Palisade policies, the nodes' addresses (by node name), the API server's addresses. */
export interface ReferenceExtras {
  palisade?: readonly PalisadePolicyInput[];
  /** Names learned from DNS answers (lowercase, no trailing dot) -> addresses. */
  dnsNames?: ReadonlyMap<string, readonly string[]>;
  /** The DNS servers of FQDN rules' implicit DNS rule. */
  dnsServers?: { namespace: string; podSelector: LabelSelector };
  nodeAddresses?: Readonly<Record<string, string>>;
  apiServerAddresses?: readonly string[];
}

export function allowed(
  policies: readonly NetworkPolicyInput[],
  pods: readonly PodInput[],
  namespaces: readonly NamespaceInput[],
  from: Party,
  to: Party,
  protocol: Protocol,
  port: number,
  extras: ReferenceExtras = {},
): boolean {
  // An address that is a pod's IP is that pod.
  const resolve = (p: Party): { pod: PodInput | undefined; ip: string } => {
    if ('pod' in p) return { pod: p.pod, ip: p.pod.ip ?? '' };
    const big = toBig(p.ip);
    const pod = pods.find((q) => q.ip !== undefined && big !== undefined && toBig(q.ip)?.value === big.value && toBig(q.ip)?.family === big.family);
    return { pod, ip: p.ip };
  };
  const src = resolve(from);
  const dst = resolve(to);

  const nsLabels = (name: string): Labels => ({ ...namespaces.find((n) => n.name === name)?.labels, [NAME_LABEL]: name });

  const types = (p: NetworkPolicyInput) =>
    p.spec.policyTypes && p.spec.policyTypes.length > 0 ? p.spec.policyTypes : p.spec.egress && p.spec.egress.length > 0 ? ['Ingress', 'Egress'] : ['Ingress'];

  const peerMatches = (policy: NetworkPolicyInput, peer: NetworkPolicyPeer, other: { pod: PodInput | undefined; ip: string }) => {
    if (peer.ipBlock) {
      return inCidr(other.ip, peer.ipBlock.cidr) && !(peer.ipBlock.except ?? []).some((e) => inCidr(other.ip, e));
    }
    const pod = other.pod;
    if (!pod) return false;
    const nsOk = peer.namespaceSelector ? matches(peer.namespaceSelector, nsLabels(pod.namespace)) : pod.namespace === policy.namespace;
    const podOk = peer.podSelector ? matches(peer.podSelector, pod.labels) : true;
    return nsOk && podOk;
  };

  const portMatches = (p: NetworkPolicyPort, destination: PodInput | undefined) => {
    const proto = p.protocol ?? 'TCP';
    if (proto !== protocol) return false;
    if (p.port === undefined) return true;
    if (typeof p.port === 'number') return p.port <= port && port <= (p.endPort ?? p.port);
    return destination !== undefined && destination.containerPorts.some((c) => c.name === p.port && c.protocol === proto && c.containerPort === port);
  };

  // ---- Palisade's kinds ----
  const palisade = extras.palisade ?? [];
  const nodeIps = Object.values(extras.nodeAddresses ?? {});
  const apiServers = extras.apiServerAddresses ?? [];
  const POD_NS = 'io.kubernetes.pod.namespace';
  const withPseudoLabels = (pod: PodInput): Labels => {
    const out: Record<string, string> = { ...pod.labels, [POD_NS]: pod.namespace };
    for (const [k, v] of Object.entries(nsLabels(pod.namespace))) out[`io.cilium.k8s.namespace.labels.${k}`] = v;
    return out;
  };
  // A literal reading of matchName and matchPattern.
  const fqdnMatches = (f: { matchName: string } | { matchPattern: string }, name: string): boolean => {
    if ('matchName' in f) return f.matchName.toLowerCase().replace(/\.$/, '') === name;
    const pattern = f.matchPattern.toLowerCase().replace(/\.$/, '');
    if (pattern === '*') return true;
    const nameLabels = name.split('.');
    let patternLabels = pattern.split('.');
    if (patternLabels[0] === '**') {
      patternLabels = patternLabels.slice(1);
      if (nameLabels.length <= patternLabels.length) return false;
      nameLabels.splice(0, nameLabels.length - patternLabels.length);
    }
    if (nameLabels.length !== patternLabels.length) return false;
    return patternLabels.every((pl, i) => {
      const parts = pl.split('*');
      const label = nameLabels[i]!;
      if (parts.length === 1) return label === pl;
      if (!label.startsWith(parts[0]!) || !label.endsWith(parts[parts.length - 1]!) || label.length < parts[0]!.length + parts[parts.length - 1]!.length) return false;
      let at = parts[0]!.length;
      for (const mid of parts.slice(1, -1)) {
        const found = label.indexOf(mid, at);
        if (found < 0 || found + mid.length > label.length - parts[parts.length - 1]!.length) return false;
        at = found + mid.length;
      }
      return true;
    });
  };
  const mentionsNamespace = (sel: LabelSelector) =>
    Object.keys(sel.matchLabels ?? {}).includes(POD_NS) || (sel.matchExpressions ?? []).some((e) => e.key === POD_NS);
  const palisadeSelects = (p: PalisadePolicyInput, pod: PodInput) =>
    (p.kind === 'PalisadeClusterNetworkPolicy' || p.namespace === pod.namespace) && matches(p.spec.endpointSelector, withPseudoLabels(pod));
  const entityMatches = (entity: string, self: PodInput, other: { pod: PodInput | undefined; ip: string }) => {
    const node = nodeIps.includes(other.ip);
    const api = apiServers.includes(other.ip);
    switch (entity) {
      case 'all':
        return true;
      case 'world':
        return !other.pod && !node && !api;
      case 'cluster':
        return other.pod !== undefined || node || api;
      case 'host':
        return self.node !== undefined && extras.nodeAddresses?.[self.node] === other.ip;
      case 'remote-node':
        return node && (self.node === undefined || extras.nodeAddresses?.[self.node] !== other.ip);
      case 'kube-apiserver':
        return api;
    }
    return false;
  };
  const palisadeRuleMatches = (p: PalisadePolicyInput, r: PalisadeIngressRule & PalisadeEgressRule, ingress: boolean, self: PodInput, other: { pod: PodInput | undefined; ip: string }) => {
    const endpoints = (ingress ? r.fromEndpoints : r.toEndpoints) ?? [];
    const entities = (ingress ? r.fromEntities : r.toEntities) ?? [];
    const cidrs = (ingress ? r.fromCIDR : r.toCIDR) ?? [];
    const sets = (ingress ? r.fromCIDRSet : r.toCIDRSet) ?? [];
    const fqdns = ingress ? [] : (r.toFQDNs ?? []);
    const portOk =
      r.toPorts === undefined ||
      r.toPorts.some((pr) => pr.ports.some((q) => (q.protocol === 'ANY' || q.protocol === protocol) && (q.port === 0 || (q.port <= port && port <= (q.endPort ?? q.port)))));
    if (endpoints.length + entities.length + cidrs.length + sets.length + fqdns.length === 0) return r.toPorts !== undefined && portOk;
    const peerOk =
      endpoints.some(
        (sel) =>
          other.pod !== undefined &&
          matches(sel, withPseudoLabels(other.pod)) &&
          (p.kind === 'PalisadeClusterNetworkPolicy' || mentionsNamespace(sel) || other.pod.namespace === p.namespace),
      ) ||
      entities.some((e) => entityMatches(e, self, other)) ||
      cidrs.some((c) => inCidr(other.ip, c)) ||
      sets.some((s) => inCidr(other.ip, s.cidr) && !(s.except ?? []).some((e) => inCidr(other.ip, e)));
    // toFQDNs: an address learned for a name the selector matches, outside the cluster (a pod, node or API server address is judged as such).
    const fqdnOk =
      !other.pod && !nodeIps.includes(other.ip) && !apiServers.includes(other.ip) &&
      fqdns.some((f) => [...(extras.dnsNames ?? [])].some(([name, ips]) => ips.includes(other.ip) && fqdnMatches(f, name)));
    return (peerOk || fqdnOk) && portOk;
  };

  const directionAllows = (self: PodInput, direction: 'Ingress' | 'Egress', other: { pod: PodInput | undefined; ip: string }) => {
    const ingress = direction === 'Ingress';
    const selectingPalisade = palisade.filter((p) => palisadeSelects(p, self));
    if (selectingPalisade.some((p) => (ingress ? p.spec.ingressDeny : p.spec.egressDeny).some((r) => palisadeRuleMatches(p, r, ingress, self, other)))) return false;
    const selecting = policies.filter(
      (p) => p.namespace === self.namespace && matches(p.spec.podSelector, self.labels) && types(p).includes(direction),
    );
    const palisadeIsolates = selectingPalisade.some((p) => p.spec.enableDefaultDeny[ingress ? 'ingress' : 'egress']);
    if (selecting.length === 0 && !palisadeIsolates) return true;
    if (selectingPalisade.some((p) => (ingress ? p.spec.ingress : p.spec.egress).some((r) => palisadeRuleMatches(p, r, ingress, self, other)))) return true;
    // An egress rule with toFQDNs also allows DNS to the DNS servers on TCP and UDP 53.
    const dns = extras.dnsServers ?? { namespace: 'kube-system', podSelector: { matchLabels: { 'k8s-app': 'kube-dns' } } };
    const isDnsServer = other.pod !== undefined && other.pod.namespace === dns.namespace && matches(dns.podSelector, other.pod.labels);
    if (!ingress && isDnsServer && port === 53 && protocol !== 'SCTP' && selectingPalisade.some((p) => p.spec.egress.some((r) => (r.toFQDNs ?? []).length > 0))) return true;
    const destination = direction === 'Ingress' ? self : other.pod;
    return selecting.some((p) => {
      const rules = direction === 'Ingress' ? (p.spec.ingress ?? []).map((r) => ({ peers: r.from, ports: r.ports })) : (p.spec.egress ?? []).map((r) => ({ peers: r.to, ports: r.ports }));
      return rules.some(
        (r) =>
          (!r.peers || r.peers.length === 0 || r.peers.some((peer) => peerMatches(p, peer, other))) &&
          (!r.ports || r.ports.length === 0 || r.ports.some((q) => portMatches(q, destination))),
      );
    });
  };

  if (src.pod && !directionAllows(src.pod, 'Egress', dst)) return false;
  if (dst.pod && !directionAllows(dst.pod, 'Ingress', src)) return false;
  return true;
}
