// Pure: a datapath flow event (datapath/abi.ts FlowEvent) made into the
// flow users read (lib/flow.ts): pods, namespaces and labels for both ends,
// the policy and rule behind the verdict (an allow rule, or a deny rule of
// a Palisade policy), and for a default deny every policy that isolates
// the pod in that direction. What the context does not
// know (a pod already gone) is left out, never guessed.
import { DIRECTION, FLOW_FLAG, FLOW_TYPE, IDENTITY, isDrop, REASON, reasonName, type FlowEvent } from '../../datapath/abi.ts';
import { protocolName, rfc3339Nanos, tcpFlagNames, type Flow, type FlowPeer, type PolicyName } from '../../lib/flow.ts';
import { policyRefString } from '../../policy/ids.ts';
import { defaultRuleNumber, ruleId } from '../datapath-plan.ts';
import type { PolicyRef, RuleRef } from '../../policy/types.ts';

export interface PodFacts {
  namespace: string;
  name: string;
  labels: Record<string, string>;
}

/** What the agent knows that a flow event does not carry. */
export interface FlowContext {
  node: string;
  /** The pod (`namespace/name`) of a local endpoint's host veth. */
  endpoint(ifindex: number): string | undefined;
  /** The pod (`namespace/name`) that owns an address. */
  owner(ip: string): string | undefined;
  pod(key: string): PodFacts | undefined;
  /** The rules and default rules whose datapath number is `id`. */
  rules: RuleIndex;
  /** The policies that isolate a pod in a direction; undefined when none does. */
  isolatedBy(pod: string, direction: 'ingress' | 'egress'): readonly PolicyRef[] | undefined;
  /** The policies with deny rules that select a pod in a direction (EndpointPolicy ingressDeny/egressDeny); undefined when none, or not known. */
  deniedBy?(pod: string, direction: 'ingress' | 'egress'): readonly PolicyRef[] | undefined;
  /**
   * The policies whose allow rules apply to a pod in a direction: the
   * isolating ones and the Palisade policies that allow without isolating
   * (enableDefaultDeny false); undefined when not isolated, or not known.
   */
  allowedBy?(pod: string, direction: 'ingress' | 'egress'): readonly PolicyRef[] | undefined;
  /** The names an address was learned for from DNS answers (frozen, shared); empty when none. */
  dnsNamesOf?(address: string): readonly string[];
}

/** How many rules a policy has in each list (its spec's ingress, egress, ingressDeny and egressDeny). */
export interface RuleCounts {
  ingress: number;
  egress: number;
  /** Palisade policies only: spec.ingressDeny and spec.egressDeny. */
  ingressDeny?: number;
  egressDeny?: number;
}

/**
 * Datapath rule numbers (agent/datapath-plan.ts ruleId and the default rule
 * of each isolating policy) back to the rules they name, from the policies'
 * rule counts. Policies are NetworkPolicies or Palisade's kinds (PolicyRef
 * kind), whose deny rules have numbers of their own (RuleRef deny: the hash
 * of `pnp:ns/name/ingressDeny/0`). Numbers are 32-bit hashes: a number may
 * name several rules, and the flow takes the one of a policy that selects
 * its endpoint.
 */
export class RuleIndex {
  readonly #byId = new Map<number, Array<RuleRef | { policy: PolicyRef; direction: 'ingress' | 'egress'; default: true }>>();
  readonly #policies = new Map<string, RuleCounts>();

  setPolicy(policy: PolicyRef, rules: RuleCounts): void {
    this.deletePolicy(policy);
    // Only the reference's own fields: a PolicyRef may arrive as a larger object.
    const ref: PolicyRef = { ...(policy.kind ? { kind: policy.kind } : {}), namespace: policy.namespace, name: policy.name };
    this.#policies.set(policyRefString(ref), rules);
    for (const direction of ['ingress', 'egress'] as const) {
      for (let index = 0; index < rules[direction]; index++) this.#add(ruleId({ ...ref, direction, index }), { ...ref, direction, index });
      const denies = rules[direction === 'ingress' ? 'ingressDeny' : 'egressDeny'] ?? 0;
      for (let index = 0; index < denies; index++) this.#add(ruleId({ ...ref, direction, index, deny: true }), { ...ref, direction, index, deny: true });
      this.#add(defaultRuleNumber(ref, direction), { policy: ref, direction, default: true });
    }
  }

  deletePolicy(policy: PolicyRef): void {
    const key = policyRefString(policy);
    if (!this.#policies.delete(key)) return;
    for (const [id, list] of this.#byId) {
      const kept = list.filter((r) => policyRefString('policy' in r ? r.policy : r) !== key);
      if (kept.length === 0) this.#byId.delete(id);
      else this.#byId.set(id, kept);
    }
  }

  lookup(id: number): ReadonlyArray<RuleRef | { policy: PolicyRef; direction: 'ingress' | 'egress'; default: true }> {
    return this.#byId.get(id) ?? [];
  }

  #add(id: number, rule: RuleRef | { policy: PolicyRef; direction: 'ingress' | 'egress'; default: true }): void {
    const list = this.#byId.get(id);
    if (list) list.push(rule);
    else this.#byId.set(id, [rule]);
  }
}

const TYPES: Record<number, Flow['type']> = {
  [FLOW_TYPE.NEW]: 'new',
  [FLOW_TYPE.DROP]: 'drop',
  [FLOW_TYPE.END]: 'end',
  [FLOW_TYPE.UPDATE]: 'update',
  [FLOW_TYPE.DROP_SUMMARY]: 'drop-summary',
};

/** A policy as flows name it: its kind (NetworkPolicy when the reference has none), namespace (none for a cluster policy) and name. */
const networkPolicy = (p: PolicyRef): PolicyName => (p.namespace ? { kind: p.kind ?? 'NetworkPolicy', namespace: p.namespace, name: p.name } : { kind: p.kind ?? 'NetworkPolicy', name: p.name });
const sameRef = (a: PolicyRef, b: PolicyRef) => (a.kind ?? '') === (b.kind ?? '') && a.namespace === b.namespace && a.name === b.name;

// The parts many flows share are made once and frozen (lib/flow-json.ts
// writes a frozen part's JSON once): per pod its name and labels, per
// isolating set and per rule the policy names, per value the TCP flag
// names. Each is derived from an object the context hands out and never
// changes (a pod's facts are replaced, not edited), and is kept only as
// long as that object (WeakMap), so nothing here grows with time.
const podParts = new WeakMap<PodFacts, { pod: { namespace: string; name: string }; labels: Record<string, string> }>();
const isolatingNames = new WeakMap<readonly PolicyRef[], readonly PolicyName[]>();
const ruleParts = new WeakMap<RuleRef, { rule: NonNullable<Flow['rule']>; policies: readonly PolicyName[] }>();
const flagNames: Array<readonly string[] | undefined> = [];
const endpoints = new Map<string, { namespace: string; name: string }>();

function podPart(facts: PodFacts) {
  let part = podParts.get(facts);
  if (!part) {
    part = { pod: Object.freeze({ namespace: facts.namespace, name: facts.name }), labels: Object.freeze({ ...facts.labels }) };
    podParts.set(facts, part);
  }
  return part;
}

function isolatingPolicies(isolatedBy: readonly PolicyRef[]): readonly PolicyName[] {
  let names = isolatingNames.get(isolatedBy);
  if (!names) {
    names = Object.freeze(isolatedBy.map((p) => Object.freeze(networkPolicy(p))));
    isolatingNames.set(isolatedBy, names);
  }
  return names;
}

function rulePart(rule: RuleRef) {
  let part = ruleParts.get(rule);
  if (!part) {
    const policy = Object.freeze(networkPolicy(rule));
    part = { rule: Object.freeze({ ...networkPolicy(rule), direction: rule.direction, index: rule.index, ...(rule.deny ? { deny: true } : {}) }), policies: Object.freeze([policy]) };
    ruleParts.set(rule, part);
  }
  return part;
}

function tcpFlags(flags: number): readonly string[] {
  return (flagNames[flags & 0xff] ??= Object.freeze(tcpFlagNames(flags & 0xff)));
}

function endpointPart(key: string): { namespace: string; name: string } {
  let part = endpoints.get(key);
  if (!part) {
    // Local endpoints are few; a bound keeps pods long gone from piling up.
    if (endpoints.size >= 4096) endpoints.clear();
    part = Object.freeze(splitKey(key));
    endpoints.set(key, part);
  }
  return part;
}

const NO_POLICIES: readonly PolicyName[] = Object.freeze([]);

/** The flow of `event`; `packets` overrides the event's count (a drop's share of its key's running total). */
export function enrichFlow(event: FlowEvent, context: FlowContext, packets?: bigint): Flow {
  const flow = enrichConnection(event, context, packets);
  // An address learned from DNS (an FQDN identity: 2^30 | h): the names it was learned for (last, as docs/flows.md orders keys).
  const egress = event.direction !== DIRECTION.INGRESS;
  const remoteIdentity = egress ? event.dstIdentity : event.srcIdentity;
  if (remoteIdentity >= FQDN_IDENTITY_BIT && remoteIdentity < 2 ** 31 && context.dnsNamesOf) {
    const names = context.dnsNamesOf(egress ? event.daddr : event.saddr);
    if (names.length > 0) flow.fqdn = names;
  }
  return flow;
}

function enrichConnection(event: FlowEvent, context: FlowContext, packets?: bigint): Flow {
  const direction = event.direction === DIRECTION.INGRESS ? 'ingress' : 'egress';
  const endpoint = context.endpoint(event.ifindex);
  const isolatedBy = endpoint ? context.isolatedBy(endpoint, direction) : undefined;
  const hasPorts = event.protocol === 6 || event.protocol === 17 || event.protocol === 132;
  const peer = (ip: string, port: number, identity: number): FlowPeer => {
    const owner = context.owner(ip);
    const facts = owner ? context.pod(owner) : undefined;
    if (!facts) return hasPorts ? { ip, port, identity, entity: entityOf(identity) } : { ip, identity, entity: entityOf(identity) };
    const { pod, labels } = podPart(facts);
    return hasPorts ? { ip, port, identity, pod, labels } : { ip, identity, pod, labels };
  };
  const dropped = isDrop(event.reason);
  const flow: Flow = {
    time: rfc3339Nanos(event.timeNs),
    node: context.node,
    type: TYPES[event.type] ?? 'new',
    verdict: dropped ? 'dropped' : 'forwarded',
    reason: reasonName(event.reason) ?? String(event.reason),
    direction,
    ...(endpoint ? { endpoint: endpointPart(endpoint) } : {}),
    protocol: protocolName(event.protocol),
    source: peer(event.saddr, event.sport, event.srcIdentity),
    destination: peer(event.daddr, event.dport, event.dstIdentity),
    ...(event.protocol === 6 && event.tcpFlags ? { tcpFlags: tcpFlags(event.tcpFlags) } : {}),
    ...(event.flags & FLOW_FLAG.SERVICE ? { service: { ip: event.natAddr, port: event.natPort } } : {}),
    packets: Number(packets ?? event.packets),
    bytes: Number(event.bytes),
    isolated: isolatedBy !== undefined,
    policies: NO_POLICIES,
  };
  if (event.flags & FLOW_FLAG.DEFAULT_DENY) {
    flow.defaultDeny = true;
    flow.policies = isolatedBy ? isolatingPolicies(isolatedBy) : NO_POLICIES;
    return flow;
  }
  // A drop that names a rule other than the default one was decided by a deny rule (DROP_POLICY_DENY, DROP_REVOKED
  // by a deny rule, or DROP_PREFILTER: the XDP prefilter, whose event names the endpoint's veth and the deny rule that
  // put the source there, ADR 0013); anything else by an allow rule. A rule is taken from a policy that selects the endpoint in its
  // lane (the allow lane's isolating policies, the deny lane's), or from any when the lane's policies are not known.
  const denied = event.reason === REASON.DROP_POLICY_DENY || event.reason === REASON.DROP_REVOKED || event.reason === REASON.DROP_PREFILTER;
  const deniedBy = endpoint ? context.deniedBy?.(endpoint, direction) : undefined;
  const candidates = context.rules.lookup(event.ruleId).filter((r): r is RuleRef => !('default' in r) && r.direction === direction && (r.deny === true) === denied);
  const selecting = denied ? deniedBy : ((endpoint ? context.allowedBy?.(endpoint, direction) : undefined) ?? isolatedBy);
  const rule = candidates.find((r) => selecting?.some((p) => sameRef(p, r))) ?? (selecting ? undefined : candidates[0]);
  if (rule && event.ruleId !== 0) {
    const part = rulePart(rule);
    flow.rule = part.rule;
    flow.policies = part.policies;
  }
  return flow;
}

const FQDN_IDENTITY_BIT = 2 ** 30;

function entityOf(identity: number): FlowPeer['entity'] {
  if (identity === IDENTITY.HOST || identity === IDENTITY.HOST_KUBE_APISERVER) return 'host';
  if (identity === IDENTITY.REMOTE_NODE || identity === IDENTITY.REMOTE_NODE_KUBE_APISERVER) return 'remote-node';
  if (identity === IDENTITY.KUBE_APISERVER) return 'kube-apiserver';
  if (identity === IDENTITY.INIT) return 'init';
  return 'world';
}

function splitKey(key: string): { namespace: string; name: string } {
  const slash = key.indexOf('/');
  return { namespace: key.slice(0, slash), name: key.slice(slash + 1) };
}
