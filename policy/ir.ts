// A NetworkPolicy read into the compiler's intermediate form: effective
// policy types, compiled selectors, parsed CIDRs, defaulted ports. Pure and
// independent of the cluster state. Input is expected to have passed
// validate.ts; anything malformed that still arrives is dropped from its rule
// (so it allows nothing: fail closed) and reported as a problem.

import { parseCidr, prefixContains, type Prefix } from './cidr.ts';
import { policyRefString } from './ids.ts';
import type { FqdnSelector } from './palisade-policy.ts';
import { compileSelector, type CompiledSelector } from './selectors.ts';
import type {
  Direction,
  NetworkPolicyInput,
  NetworkPolicyPeer,
  NetworkPolicyPort,
  NetworkPolicySpec,
  PolicyRef,
  PolicyType,
  PortRange,
  Problem,
  Protocol,
  RuleRef,
} from './types.ts';

export type PortIR =
  | { protocol: Protocol; kind: 'all' }
  | { protocol: Protocol; kind: 'range'; range: PortRange }
  | { protocol: Protocol; kind: 'named'; name: string };

/**
 * A selector peer. `scopeNs` set: podSelector alone, pods of that namespace.
 * Otherwise namespaceSelector (with podSelector, or match-all without it).
 * `key` is equal for peers that select the same pods in every cluster state.
 */
export interface PeerIR {
  key: string;
  scopeNs: string | undefined;
  nsSelector: CompiledSelector | undefined;
  podSelector: CompiledSelector;
}

export interface IpBlockIR {
  prefix: Prefix;
  except: Prefix[];
}

export interface RuleIR {
  ref: RuleRef;
  /** `from`/`to` empty or absent (a Palisade rule: only toPorts, or the `all` entity): every peer, pod or not. */
  allPeers: boolean;
  peers: PeerIR[];
  /** Reserved identity classes of a Palisade rule's entities (ids.ts ENTITY_CLASSES), sorted. */
  entities: readonly number[];
  /** toFQDNs (egress of Palisade kinds): addresses learned from DNS answers for names they match. */
  fqdns: readonly FqdnSelector[];
  /**
   * The names this rule lets the selected pods resolve on port 53 (its
   * toPorts' rules.dns; an implicit DNS rule: its FQDN rule's selectors);
   * undefined: any name.
   */
  dnsNames?: readonly FqdnSelector[];
  ipBlocks: IpBlockIR[];
  /** null: `ports` empty or absent, every protocol and port. */
  ports: PortIR[] | null;
  hasNamedPorts: boolean;
}

export interface PolicyIR {
  ref: PolicyRef;
  key: string;
  /** Over the pod's labels. */
  podSelector: CompiledSelector;
  /** Over the labels of the pod's namespace (a Palisade endpointSelector's pseudo-labels); undefined: any. */
  nsSelector: CompiledSelector | undefined;
  /** Selects pods of every namespace (PalisadeClusterNetworkPolicy), not only of its own. */
  clusterWide: boolean;
  /** Whether selecting a pod isolates it in each direction (NetworkPolicy: policyTypes; Palisade: enableDefaultDeny). */
  isolates: { ingress: boolean; egress: boolean };
  /** Allow rules; null: the policy says nothing about this direction (neither isolates nor allows). */
  ingress: RuleIR[] | null;
  egress: RuleIR[] | null;
  /** Deny rules (Palisade kinds); null: none. */
  ingressDeny: RuleIR[] | null;
  egressDeny: RuleIR[] | null;
  problems: Problem[];
}

const PROTOCOLS: readonly string[] = ['TCP', 'UDP', 'SCTP'];

/** The peer that selects every pod of the cluster (used for named egress ports towards all peers). */
export const ALL_PODS_PEER: PeerIR = peerIR(undefined, compileSelector({}), compileSelector({}));

export function peerIR(scopeNs: string | undefined, nsSelector: CompiledSelector | undefined, podSelector: CompiledSelector): PeerIR {
  const key = scopeNs !== undefined ? JSON.stringify(['ns', scopeNs, podSelector.key]) : JSON.stringify(['cluster', nsSelector!.key, podSelector.key]);
  return { key, scopeNs, nsSelector, podSelector };
}

/** policyTypes, or its default: Ingress, plus Egress when the policy has egress rules. */
export function effectivePolicyTypes(spec: NetworkPolicySpec): PolicyType[] {
  if (spec.policyTypes && spec.policyTypes.length > 0) return spec.policyTypes;
  return spec.egress && spec.egress.length > 0 ? ['Ingress', 'Egress'] : ['Ingress'];
}

export function policyIR(input: NetworkPolicyInput): PolicyIR {
  const ref: PolicyRef = { namespace: input.namespace, name: input.name };
  const key = policyRefString(ref);
  const problems: Problem[] = [];
  const problem = (code: Problem['code'], message: string) => problems.push({ code, message, policy: key });
  const spec = input.spec;
  const podSelector = compileSelector(spec.podSelector);
  if (!podSelector.valid) problem('InvalidSelector', 'spec.podSelector is invalid: the policy selects no pod');
  const types = effectivePolicyTypes(spec);

  const rule = (direction: Direction, index: number, peers: NetworkPolicyPeer[] | undefined, ports: NetworkPolicyPort[] | undefined): RuleIR => {
    const where = `spec.${direction}[${index}]`;
    const r: RuleIR = {
      ref: { namespace: input.namespace, name: input.name, direction, index },
      allPeers: !peers || peers.length === 0,
      peers: [],
      entities: [],
      fqdns: [],
      ipBlocks: [],
      ports: !ports || ports.length === 0 ? null : [],
      hasNamedPorts: false,
    };
    (peers ?? []).forEach((peer, i) => {
      const at = `${where}.${direction === 'ingress' ? 'from' : 'to'}[${i}]`;
      const hasSelector = peer.podSelector !== undefined || peer.namespaceSelector !== undefined;
      if (peer.ipBlock !== undefined) {
        if (hasSelector) return problem('InvalidPeer', `${at}: ipBlock with a selector: peer ignored`);
        const cidr = parseCidr(peer.ipBlock.cidr);
        if (typeof cidr === 'string') return problem('InvalidCIDR', `${at}.ipBlock.cidr ${JSON.stringify(peer.ipBlock.cidr)}: ${cidr}: peer ignored`);
        const except: Prefix[] = [];
        for (const e of peer.ipBlock.except ?? []) {
          const p = parseCidr(e);
          // An except that is not inside the cidr cannot be honoured as written: drop the peer.
          if (typeof p === 'string' || !prefixContains(cidr, p) || p.len === cidr.len) {
            return problem('InvalidCIDR', `${at}.ipBlock.except ${JSON.stringify(e)}: not a strict subset of the cidr: peer ignored`);
          }
          except.push(p);
        }
        r.ipBlocks.push({ prefix: cidr, except });
        return;
      }
      if (!hasSelector) return problem('InvalidPeer', `${at}: empty peer: ignored`);
      const pod = compileSelector(peer.podSelector);
      const ns = peer.namespaceSelector === undefined ? undefined : compileSelector(peer.namespaceSelector);
      if (!pod.valid || (ns && !ns.valid)) return problem('InvalidSelector', `${at}: invalid selector: peer ignored`);
      r.peers.push(peerIR(ns ? undefined : input.namespace, ns, pod));
    });
    (ports ?? []).forEach((p, i) => {
      const at = `${where}.ports[${i}]`;
      const protocol = p.protocol ?? 'TCP';
      if (!PROTOCOLS.includes(protocol)) return problem('InvalidPort', `${at}: unknown protocol ${JSON.stringify(protocol)}: port ignored`);
      if (p.port === undefined) return r.ports!.push({ protocol, kind: 'all' });
      if (typeof p.port === 'string') {
        r.hasNamedPorts = true;
        return r.ports!.push({ protocol, kind: 'named', name: p.port });
      }
      const to = p.endPort ?? p.port;
      if (!Number.isInteger(p.port) || !Number.isInteger(to) || p.port < 1 || to > 65535 || to < p.port) {
        return problem('InvalidPort', `${at}: invalid port range ${p.port}-${to}: port ignored`);
      }
      r.ports!.push({ protocol, kind: 'range', range: { from: p.port, to } });
    });
    return r;
  };

  return {
    ref,
    key,
    podSelector,
    nsSelector: undefined,
    clusterWide: false,
    isolates: { ingress: types.includes('Ingress'), egress: types.includes('Egress') },
    ingress: types.includes('Ingress') ? (spec.ingress ?? []).map((x, i) => rule('ingress', i, x.from, x.ports)) : null,
    egress: types.includes('Egress') ? (spec.egress ?? []).map((x, i) => rule('egress', i, x.to, x.ports)) : null,
    ingressDeny: null,
    egressDeny: null,
    problems,
  };
}
