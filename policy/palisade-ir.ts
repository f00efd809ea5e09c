// A PalisadeNetworkPolicy or PalisadeClusterNetworkPolicy read into the
// compiler's intermediate form (ir.ts), so that the compiler treats every
// kind alike. Pure. The spec has passed validatePalisadePolicy (normalized);
// what still cannot be honoured is dropped from its rule (the rule allows,
// or denies, less) and reported as a problem.
//
// Selectors see pseudo-labels (ids.ts): requirements on
// `io.kubernetes.pod.namespace` and `io.cilium.k8s.namespace.labels.K` are
// requirements on the pod's NAMESPACE labels (`kubernetes.io/metadata.name`
// and K), the rest on the pod's labels. Since a selector is an AND of
// requirements, it splits exactly into a namespace selector and a pod
// selector: the form the cluster state already matches per security group.

import { parseCidr, prefixContains, type Prefix } from './cidr.ts';
import { ENTITY_CLASSES, IDENTITY_ANY, NAMESPACE_LABELS_PSEUDO_PREFIX, NAMESPACE_NAME_LABEL, POD_NAMESPACE_PSEUDO_LABEL, policyRefString } from './ids.ts';
import { peerIR, type IpBlockIR, type PolicyIR, type PortIR, type RuleIR } from './ir.ts';
import type { CidrSet, PalisadeEgressRule, PalisadeIngressRule, PalisadePortRule } from './palisade-policy.ts';
import { compileSelector } from './selectors.ts';
import type { Direction, LabelSelector, LabelSelectorRequirement, PalisadePolicyInput, PolicyRef, Problem, Protocol } from './types.ts';

const PROTOCOLS: readonly Protocol[] = ['TCP', 'UDP', 'SCTP'];

/** The namespace label a pseudo-label stands for, or undefined for a pod label. */
function namespaceKey(key: string): string | undefined {
  if (key === POD_NAMESPACE_PSEUDO_LABEL) return NAMESPACE_NAME_LABEL;
  if (key.startsWith(NAMESPACE_LABELS_PSEUDO_PREFIX) && key.length > NAMESPACE_LABELS_PSEUDO_PREFIX.length) return key.slice(NAMESPACE_LABELS_PSEUDO_PREFIX.length);
  return undefined;
}

export interface SplitSelector {
  pod: LabelSelector;
  ns: LabelSelector;
}

/**
 * Splits a selector over pod labels and pseudo-labels into one over the pod's
 * labels and one over its namespace's. `ownNamespace` set (a
 * PalisadeNetworkPolicy's peer): when the selector does not constrain
 * `io.kubernetes.pod.namespace`, it selects pods of that namespace only.
 */
export function splitSelector(sel: LabelSelector, ownNamespace?: string): SplitSelector {
  const pod: LabelSelectorRequirement[] = [];
  const ns: LabelSelectorRequirement[] = [];
  let constrainsNamespace = false;
  const add = (r: LabelSelectorRequirement) => {
    if (r.key === POD_NAMESPACE_PSEUDO_LABEL) constrainsNamespace = true;
    const k = namespaceKey(r.key);
    if (k === undefined) pod.push(r);
    else ns.push({ ...r, key: k });
  };
  for (const [key, value] of Object.entries(sel.matchLabels ?? {})) add({ key, operator: 'In', values: [value] });
  for (const e of sel.matchExpressions ?? []) add(e);
  if (ownNamespace !== undefined && !constrainsNamespace) ns.push({ key: NAMESPACE_NAME_LABEL, operator: 'In', values: [ownNamespace] });
  return { pod: { matchExpressions: pod }, ns: { matchExpressions: ns } };
}

/** A port entry of a rule as PortIRs; 'all' when it means every protocol and port. */
function portIRs(p: PalisadePortRule['ports'][number]): PortIR[] | 'all' {
  const protocols = p.protocol === 'ANY' ? PROTOCOLS : [p.protocol as Protocol];
  if (p.port === 0) return p.protocol === 'ANY' ? 'all' : protocols.map((protocol) => ({ protocol, kind: 'all' }));
  const range = { from: p.port, to: p.endPort ?? p.port };
  return protocols.map((protocol) => ({ protocol, kind: 'range', range }));
}

/** The cluster's DNS servers, as a peer of the implicit DNS rule of an FQDN rule. */
export interface DnsServers {
  namespace: string;
  podSelector: LabelSelector;
}

/** The default: the pods labelled `k8s-app: kube-dns` in `kube-system`. */
export const DEFAULT_DNS_SERVERS: DnsServers = { namespace: 'kube-system', podSelector: { matchLabels: { 'k8s-app': 'kube-dns' } } };

const DNS_PORTS: PortIR[] = [
  { protocol: 'TCP', kind: 'range', range: { from: 53, to: 53 } },
  { protocol: 'UDP', kind: 'range', range: { from: 53, to: 53 } },
];

export function palisadePolicyIR(input: PalisadePolicyInput, dnsServers: DnsServers = DEFAULT_DNS_SERVERS): PolicyIR {
  const clusterWide = input.kind === 'PalisadeClusterNetworkPolicy';
  const ref: PolicyRef = { kind: input.kind, namespace: clusterWide ? '' : input.namespace, name: input.name };
  const key = policyRefString(ref);
  const problems: Problem[] = [];
  const problem = (code: Problem['code'], message: string) => problems.push({ code, message, policy: key });
  const spec = input.spec;
  const own = clusterWide ? undefined : ref.namespace;
  const selected = splitSelector(spec.endpointSelector);
  const podSelector = compileSelector(selected.pod);
  const nsSelector = compileSelector(selected.ns);
  if (!podSelector.valid || !nsSelector.valid) problem('InvalidSelector', 'spec.endpointSelector is invalid: the policy selects no pod');

  const cidrBlock = (at: string, set: CidrSet): IpBlockIR | undefined => {
    const cidr = parseCidr(set.cidr);
    if (typeof cidr === 'string') return void problem('InvalidCIDR', `${at}.cidr ${JSON.stringify(set.cidr)}: ${cidr}: peer ignored`);
    const except: Prefix[] = [];
    for (const e of set.except ?? []) {
      const p = parseCidr(e);
      if (typeof p === 'string' || !prefixContains(cidr, p) || p.len === cidr.len) {
        return void problem('InvalidCIDR', `${at}.except ${JSON.stringify(e)}: not a strict subset of the cidr: peer ignored`);
      }
      except.push(p);
    }
    return { prefix: cidr, except };
  };

  const rule = (direction: Direction, deny: boolean, index: number, r: PalisadeIngressRule & PalisadeEgressRule): RuleIR => {
    const field = `${direction}${deny ? 'Deny' : ''}`;
    const where = `spec.${field}[${index}]`;
    const from = direction === 'ingress' ? 'from' : 'to';
    const endpoints = (direction === 'ingress' ? r.fromEndpoints : r.toEndpoints) ?? [];
    const entities = (direction === 'ingress' ? r.fromEntities : r.toEntities) ?? [];
    const cidrs = (direction === 'ingress' ? r.fromCIDR : r.toCIDR) ?? [];
    const cidrSets = (direction === 'ingress' ? r.fromCIDRSet : r.toCIDRSet) ?? [];
    const fqdns = direction === 'egress' ? (r.toFQDNs ?? []) : [];
    const hasPeerField = endpoints.length + entities.length + cidrs.length + cidrSets.length + fqdns.length > 0;
    const out: RuleIR = {
      ref: { kind: input.kind, namespace: ref.namespace, name: input.name, direction, index, ...(deny ? { deny: true as const } : {}) },
      // Only toPorts: every peer on those ports. No peer field and no toPorts: nothing (see below).
      allPeers: !hasPeerField && r.toPorts !== undefined,
      peers: [],
      entities: [],
      fqdns,
      ipBlocks: [],
      ports: null,
      hasNamedPorts: false,
    };
    endpoints.forEach((sel, i) => {
      const split = splitSelector(sel, own);
      const pod = compileSelector(split.pod);
      const ns = compileSelector(split.ns);
      if (!pod.valid || !ns.valid) return problem('InvalidSelector', `${where}.${from}Endpoints[${i}]: invalid selector: peer ignored`);
      out.peers.push(peerIR(undefined, ns, pod));
    });
    const classes = new Set<number>();
    for (const e of entities) for (const id of ENTITY_CLASSES[e]) classes.add(id);
    if (classes.has(IDENTITY_ANY)) out.allPeers = true;
    classes.delete(IDENTITY_ANY);
    out.entities = [...classes].sort((a, b) => a - b);
    cidrs.forEach((cidr, i) => {
      const b = cidrBlock(`${where}.${from}CIDR[${i}]`, { cidr });
      if (b) out.ipBlocks.push(b);
    });
    cidrSets.forEach((set, i) => {
      const b = cidrBlock(`${where}.${from}CIDRSet[${i}]`, set);
      if (b) out.ipBlocks.push(b);
    });
    if (!hasPeerField && r.toPorts === undefined) {
      out.ports = []; // matches nothing
    } else if (r.toPorts !== undefined) {
      const ports: PortIR[] = [];
      let all = false;
      // rules.dns restrict the names resolved through this rule, unless another entry opens port 53 without them.
      const restricted = r.toPorts.filter((pr) => pr.rules !== undefined);
      const open53 = r.toPorts.some((pr) => pr.rules === undefined && pr.ports.some((p) => p.protocol !== 'SCTP' && (p.port === 0 || (p.port <= 53 && 53 <= (p.endPort ?? p.port)))));
      if (restricted.length > 0 && !open53) out.dnsNames = restricted.flatMap((pr) => pr.rules!.dns);
      for (const pr of r.toPorts) {
        for (const p of pr.ports) {
          const irs = portIRs(p);
          if (irs === 'all') all = true;
          else ports.push(...irs);
        }
      }
      out.ports = all ? null : ports;
    }
    return out;
  };

  // An egress allow rule with toFQDNs also allows the DNS queries that teach
  // it addresses (POLICY-API.md, "differs"): a rule of its own right after it.
  const dnsServersPeer = peerIR(undefined, compileSelector({ matchLabels: { [NAMESPACE_NAME_LABEL]: dnsServers.namespace } }), compileSelector(dnsServers.podSelector));
  const implicitDns = (r: RuleIR): RuleIR => ({
    ...r,
    ref: { ...r.ref, implicitDns: true },
    dnsNames: r.fqdns,
    allPeers: false,
    peers: [dnsServersPeer],
    entities: [],
    fqdns: [],
    ipBlocks: [],
    ports: DNS_PORTS,
  });

  const lane = (direction: Direction, deny: boolean, rules: (PalisadeIngressRule & PalisadeEgressRule)[], isolates: boolean): RuleIR[] | null => {
    if (rules.length === 0 && !(isolates && !deny)) return null;
    const out: RuleIR[] = [];
    rules.forEach((r, i) => {
      const ir = rule(direction, deny, i, r);
      out.push(ir);
      if (!deny && ir.fqdns.length > 0) out.push(implicitDns(ir));
    });
    return out;
  };

  return {
    ref,
    key,
    podSelector,
    nsSelector,
    clusterWide,
    isolates: { ...spec.enableDefaultDeny },
    ingress: lane('ingress', false, spec.ingress, spec.enableDefaultDeny.ingress),
    egress: lane('egress', false, spec.egress, spec.enableDefaultDeny.egress),
    ingressDeny: lane('ingress', true, spec.ingressDeny, false),
    egressDeny: lane('egress', true, spec.egressDeny, false),
    problems,
  };
}
