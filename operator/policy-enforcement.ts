// Whether a Palisade policy is enforced, and how many endpoints it selects
// (pure): the `Enforced` condition and `status.selectedEndpoints` that the
// operator writes (palisade-policies.ts, policy-status.ts).
//
// An endpoint is a pod the datapath can enforce: it runs on a node, has an
// address, is not terminal (Succeeded, Failed) and not host-network (as the
// agent's pod-input.ts). A policy selects it as the compiler does
// (palisade-ir.ts): the endpointSelector's pod part matches the pod's labels,
// its namespace part (the pseudo-labels) matches the namespace's labels with
// `kubernetes.io/metadata.name` set to the namespace's name, and a
// PalisadeNetworkPolicy selects pods of its own namespace only.
//
// Enforced means: every node that runs a selected endpoint has a Ready agent
// whose PalisadeNode reports `status.realized[<policy kind>]` at or above the
// policy's version (resourceVersions compared as integers, as the agent and
// the scenario runner do). The version to reach is the resourceVersion at
// which the operator first saw the policy's current generation, NOT the
// object's current resourceVersion: every status write bumps that, so
// requiring it would chase our own writes forever (write True, the version
// moves past what the agents realized, write False, ...).
//
// Cost: pods are indexed by namespace and, within one, grouped by label set
// (the replicas of a workload share one), each group counting its endpoints
// per node. Selecting is then one match per (namespace, label set) in the
// policy's reach, not one per pod.

import { NAMESPACE_NAME_LABEL } from '../policy/ids.ts';
import { splitSelector } from '../policy/palisade-ir.ts';
import { validatePalisadePolicy, type PalisadePolicyValidation } from '../policy/palisade-policy.ts';
import { compileSelector, type CompiledSelector } from '../policy/selectors.ts';
import type { LabelSelector, Labels } from '../policy/types.ts';

export const ENFORCED_REASONS = {
  /** True: every node running a selected endpoint has realized this version. */
  enforced: 'Enforced',
  /** True: the policy selects no endpoint, so there is nothing to enforce. */
  noEndpoints: 'NoEndpoints',
  /** False: some node running a selected endpoint has not realized it yet, or its agent is not Ready. */
  pending: 'Pending',
  /** False: some node running a selected endpoint has no agent (no PalisadeNode). */
  noAgent: 'NoAgent',
  /** False: the spec is invalid; agents enforce it fail-closed, not as written. */
  invalid: 'Invalid',
} as const;

/** How many laggard nodes a message names (the rest are counted). */
export const NAMED_NODES = 3;

// ---- endpoints ------------------------------------------------------------------------

/** What of a pod matters to a policy's status; undefined when the pod is no endpoint. */
export interface EndpointFacts {
  namespace: string;
  labels: Labels;
  node: string;
}

/** The fields of a Pod this module reads. */
export interface PodLike {
  metadata?: { namespace?: string; labels?: Record<string, string> };
  spec?: { nodeName?: string; hostNetwork?: boolean };
  status?: { phase?: string; podIP?: string; podIPs?: Array<{ ip?: string }> };
}

const TERMINAL_PHASES = new Set(['Succeeded', 'Failed']);

/** The pod as an endpoint, or undefined: no node or address yet, terminal, or host-network. */
export function endpointFacts(pod: PodLike): EndpointFacts | undefined {
  const namespace = pod.metadata?.namespace;
  const node = pod.spec?.nodeName;
  const ip = pod.status?.podIP ?? pod.status?.podIPs?.[0]?.ip;
  if (!namespace || !node || !ip || TERMINAL_PHASES.has(pod.status?.phase ?? '') || pod.spec?.hostNetwork === true) return undefined;
  return { namespace, labels: pod.metadata?.labels ?? {}, node };
}

/** The endpoints of one namespace sharing one label set. */
interface LabelGroup {
  labels: Labels;
  count: number;
  /** node -> endpoints of this group on it. */
  nodes: Map<string, number>;
}

/** What a policy selects: how many endpoints, and how many on each node. */
export interface Selected {
  endpoints: number;
  nodes: ReadonlyMap<string, number>;
}

/** A policy's endpointSelector, compiled: the pods it can select. */
export interface Selection {
  /** undefined: every namespace (a PalisadeClusterNetworkPolicy). */
  namespace: string | undefined;
  pod: CompiledSelector;
  ns: CompiledSelector;
}

/**
 * The selection of a policy's (normalized) endpointSelector; undefined when
 * the selector cannot be compiled (it then selects nothing the compiler could
 * name).
 */
export function policySelection(kind: string, namespace: string | undefined, endpointSelector: LabelSelector): Selection | undefined {
  const split = splitSelector(endpointSelector);
  const pod = compileSelector(split.pod);
  const ns = compileSelector(split.ns);
  if (!pod.valid || !ns.valid) return undefined;
  return { namespace: kind === 'PalisadeClusterNetworkPolicy' ? undefined : (namespace ?? ''), pod, ns };
}

/**
 * The selection of a policy object given its validation. An invalid policy
 * selects what its endpointSelector alone selects when that is valid: agents
 * enforce it fail-closed for those pods (agent/palisade-policy-input.ts);
 * otherwise it selects nothing (undefined).
 */
export function selectionOf(kind: string, namespace: string | undefined, spec: unknown, validation: PalisadePolicyValidation): Selection | undefined {
  let selector: LabelSelector | undefined;
  if (validation.ok) selector = validation.spec.endpointSelector;
  else {
    const raw = typeof spec === 'object' && spec !== null ? (spec as { endpointSelector?: unknown }).endpointSelector : undefined;
    const alone = validatePalisadePolicy({ spec: { endpointSelector: raw } });
    if (alone.ok) selector = alone.spec.endpointSelector;
  }
  return selector ? policySelection(kind, namespace, selector) : undefined;
}

const labelSetKey = (labels: Labels) => JSON.stringify(Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));

/**
 * The endpoints of the cluster, kept up to date by set/delete calls (informer
 * events), indexed by namespace and label set. Every change that can alter
 * what a policy selects in a namespace stamps that namespace with a new epoch,
 * so that a SelectionCache recomputes only the namespaces changed since it
 * last looked.
 */
export class EndpointIndex {
  /** `namespace/name` -> the pod's facts and the key of its group. */
  readonly #pods = new Map<string, { facts: EndpointFacts; group: string }>();
  /** namespace -> label set key -> group. Only namespaces with endpoints. */
  readonly #groups = new Map<string, Map<string, LabelGroup>>();
  /** namespace -> its labels, `kubernetes.io/metadata.name` included. */
  readonly #namespaces = new Map<string, Labels>();
  /** namespace -> the epoch of its last change (kept after its last endpoint goes, so caches see it go). */
  readonly #changedAt = new Map<string, number>();
  #epoch = 0;

  /** Sets (or, with undefined, removes) the pod `namespace/name`; whether what policies select changed. */
  setPod(key: string, facts: EndpointFacts | undefined): boolean {
    const old = this.#pods.get(key);
    if (!old && !facts) return false;
    const group = facts ? labelSetKey(facts.labels) : '';
    if (old && facts && old.group === group && old.facts.node === facts.node && old.facts.namespace === facts.namespace) return false;
    if (old) this.#remove(old.facts, old.group);
    if (!facts) {
      this.#pods.delete(key);
      return true;
    }
    this.#pods.set(key, { facts, group });
    let groups = this.#groups.get(facts.namespace);
    if (!groups) this.#groups.set(facts.namespace, (groups = new Map()));
    let g = groups.get(group);
    if (!g) groups.set(group, (g = { labels: facts.labels, count: 0, nodes: new Map() }));
    g.count++;
    g.nodes.set(facts.node, (g.nodes.get(facts.node) ?? 0) + 1);
    this.#touch(facts.namespace);
    return true;
  }

  deletePod(key: string): boolean {
    return this.setPod(key, undefined);
  }

  #touch(namespace: string): void {
    this.#changedAt.set(namespace, ++this.#epoch);
  }

  #remove(facts: EndpointFacts, group: string): void {
    const groups = this.#groups.get(facts.namespace)!;
    const g = groups.get(group)!;
    g.count--;
    const left = g.nodes.get(facts.node)! - 1;
    if (left === 0) g.nodes.delete(facts.node);
    else g.nodes.set(facts.node, left);
    if (g.count === 0) groups.delete(group);
    if (groups.size === 0) this.#groups.delete(facts.namespace);
    this.#touch(facts.namespace);
  }

  /** Sets (or, with undefined, forgets) a namespace's labels; whether what policies select may have changed. */
  setNamespace(name: string, labels: Labels | undefined): boolean {
    const before = this.#namespaces.get(name);
    if (labels === undefined) this.#namespaces.delete(name);
    else this.#namespaces.set(name, { ...labels, [NAMESPACE_NAME_LABEL]: name });
    const after = this.#namespaces.get(name);
    if (labelSetKey(before ?? {}) === labelSetKey(after ?? {})) return false;
    if (!this.#groups.has(name)) return false; // nothing to select there: no cache holds anything for it
    this.#touch(name);
    return true;
  }

  /** A namespace's labels as selectors see them (a namespace not seen yet: its name alone). */
  namespaceLabels(name: string): Labels {
    return this.#namespaces.get(name) ?? { [NAMESPACE_NAME_LABEL]: name };
  }

  get endpoints(): number {
    return this.#pods.size;
  }

  /** The epoch of the last change. */
  get epoch(): number {
    return this.#epoch;
  }

  /** The namespaces changed after `epoch` (every namespace that ever had an endpoint, for -1). */
  *changedSince(epoch: number): Iterable<string> {
    for (const [namespace, at] of this.#changedAt) if (at > epoch) yield namespace;
  }

  changedAt(namespace: string): number {
    return this.#changedAt.get(namespace) ?? 0;
  }

  /** What `selection` selects in one namespace now. */
  selectIn(selection: Selection, namespace: string): Selected {
    const nodes = new Map<string, number>();
    let endpoints = 0;
    const groups = this.#groups.get(namespace);
    if ((selection.namespace !== undefined && selection.namespace !== namespace) || !groups || !selection.ns.matches(this.namespaceLabels(namespace))) {
      return { endpoints, nodes };
    }
    for (const g of groups.values()) {
      if (!selection.pod.matches(g.labels)) continue;
      endpoints += g.count;
      for (const [node, n] of g.nodes) nodes.set(node, (nodes.get(node) ?? 0) + n);
    }
    return { endpoints, nodes };
  }

  /** What `selection` selects now (from scratch; SelectionCache does it incrementally). */
  select(selection: Selection): Selected {
    const nodes = new Map<string, number>();
    let endpoints = 0;
    const namespaces = selection.namespace !== undefined ? [selection.namespace] : this.#groups.keys();
    for (const namespace of namespaces) {
      const part = this.selectIn(selection, namespace);
      endpoints += part.endpoints;
      for (const [node, n] of part.nodes) nodes.set(node, (nodes.get(node) ?? 0) + n);
    }
    return { endpoints, nodes };
  }
}

/** A selection's identity: equal for selections that select the same. */
const selectionKey = (s: Selection) => JSON.stringify([s.namespace ?? null, s.pod.key, s.ns.key]);

/**
 * What each policy selects, kept per namespace and summed, so that a sync
 * after a few pod events recomputes only the namespaces those events touched
 * (one pod change: one namespace per cluster-wide policy, nothing for the
 * namespaced policies of other namespaces).
 */
export class SelectionCache {
  readonly #index: EndpointIndex;
  readonly #entries = new Map<
    string,
    { key: string; epoch: number; parts: Map<string, Selected>; endpoints: number; nodes: Map<string, number> }
  >();

  constructor(index: EndpointIndex) {
    this.#index = index;
  }

  /** What the policy `id` (its uid) with `selection` selects now. The map returned is live: read it before the next call. */
  select(id: string, selection: Selection): Selected {
    const key = selectionKey(selection);
    let e = this.#entries.get(id);
    if (!e || e.key !== key) this.#entries.set(id, (e = { key, epoch: -1, parts: new Map(), endpoints: 0, nodes: new Map() }));
    if (e.epoch === this.#index.epoch) return e;
    const namespaces = selection.namespace !== undefined ? [selection.namespace] : this.#index.changedSince(e.epoch);
    for (const namespace of namespaces) {
      if (this.#index.changedAt(namespace) <= e.epoch) continue;
      const before = e.parts.get(namespace);
      const after = this.#index.selectIn(selection, namespace);
      if (before) add(e, before, -1);
      add(e, after, 1);
      if (after.endpoints > 0) e.parts.set(namespace, after);
      else e.parts.delete(namespace);
    }
    e.epoch = this.#index.epoch;
    return e;
  }

  /** Drops what is kept for a policy that is gone. */
  forget(id: string): void {
    this.#entries.delete(id);
  }
}

function add(total: { endpoints: number; nodes: Map<string, number> }, part: Selected, sign: 1 | -1): void {
  total.endpoints += sign * part.endpoints;
  for (const [node, n] of part.nodes) {
    const left = (total.nodes.get(node) ?? 0) + sign * n;
    if (left === 0) total.nodes.delete(node);
    else total.nodes.set(node, left);
  }
}

// ---- agents ---------------------------------------------------------------------------

/** A node's agent as its PalisadeNode reports it. */
export interface AgentState {
  ready: boolean;
  /** Per kind, the resourceVersion up to which the agent enforces every change. */
  realized: Readonly<Record<string, string>>;
}

/** The fields of a PalisadeNode this module reads. */
export interface PalisadeNodeLike {
  metadata?: { name?: string };
  status?: { realized?: Record<string, string>; conditions?: Array<{ type?: string; status?: string }> };
}

export function agentState(node: PalisadeNodeLike): AgentState {
  const ready = node.status?.conditions?.find((c) => c.type === 'Ready')?.status === 'True';
  return { ready, realized: node.status?.realized ?? {} };
}

/** A resourceVersion as an integer; undefined when it is not one (resourceVersions are opaque by contract). */
export function parseVersion(rv: string | undefined): bigint | undefined {
  if (rv === undefined || !/^[0-9]+$/.test(rv)) return undefined;
  return BigInt(rv);
}

/**
 * The version the nodes must realize for a policy: the resourceVersion at
 * which its current generation was first seen. `seen` is the caller's memory
 * (uid -> generation and version); returns the version, updating `seen`.
 */
export function targetVersion(seen: Map<string, { generation: number; version: string }>, uid: string, generation: number, resourceVersion: string): string {
  const known = seen.get(uid);
  if (known && known.generation === generation) return known.version;
  seen.set(uid, { generation, version: resourceVersion });
  return resourceVersion;
}

// ---- the verdict ----------------------------------------------------------------------

export interface EnforcementInput {
  /** The policy's kind: the key of `status.realized` to read. */
  kind: string;
  /** The version to realize (targetVersion). */
  version: string;
  /** Whether the spec is valid (the Valid condition). */
  valid: boolean;
  /** What the policy selects; undefined when its endpointSelector is unusable (it then selects nothing). */
  selected: Selected | undefined;
  /** node name -> its agent; a node missing here has no PalisadeNode. */
  agents: ReadonlyMap<string, AgentState>;
}

export interface EnforcementVerdict {
  selectedEndpoints: number;
  status: 'True' | 'False';
  reason: string;
  message: string;
  /** False while some node has yet to realize the version: only then can an agent's newer realized version change the verdict. */
  settled: boolean;
}

/** Each agent's realized versions, parsed once per state (a sync judges every policy against the same states). */
const realizedVersions = new WeakMap<AgentState, Map<string, bigint | undefined>>();

/** Why a node has not realized the version, or undefined when it has. */
function lag(agent: AgentState | undefined, kind: string, version: bigint | undefined): 'no agent' | string | undefined {
  if (!agent) return 'no agent';
  if (!agent.ready) return 'agent not Ready';
  let parsed = realizedVersions.get(agent);
  if (!parsed) realizedVersions.set(agent, (parsed = new Map()));
  if (!parsed.has(kind)) parsed.set(kind, parseVersion(agent.realized[kind]));
  const realized = parsed.get(kind);
  if (realized === undefined) return `has realized no ${kind} yet`;
  if (version === undefined || realized < version) return 'has not realized it yet';
  return undefined;
}

const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

/** `a (why), b (why), c (why) and 2 more`. */
function named(list: ReadonlyArray<[string, string]>): string {
  const shown = list.slice(0, NAMED_NODES).map(([node, why]) => `${node} (${why})`).join(', ');
  return list.length > NAMED_NODES ? `${shown} and ${list.length - NAMED_NODES} more` : shown;
}

/** The Enforced condition and the selected-endpoint count of one policy. */
export function enforcementVerdict(input: EnforcementInput): EnforcementVerdict {
  const { selected } = input;
  const version = parseVersion(input.version);
  const at = `resourceVersion ${input.version}`;
  let realization: { done: boolean; noAgent: boolean; text: string };
  if (!selected) {
    // A valid spec whose selector still does not compile selects nothing (as in the compiler).
    realization = input.valid
      ? { done: true, noAgent: false, text: 'its endpointSelector selects no pod' }
      : { done: true, noAgent: false, text: 'its endpointSelector is invalid too, so it selects no pod' };
  } else if (selected.endpoints === 0) {
    realization = { done: true, noAgent: false, text: 'it selects no endpoint (no running pod with an address matches it)' };
  } else {
    const missing: Array<[string, string]> = [];
    const lagging: Array<[string, string]> = [];
    for (const node of selected.nodes.keys()) {
      const why = lag(input.agents.get(node), input.kind, version);
      if (why === 'no agent') missing.push([node, 'no PalisadeNode']);
      else if (why !== undefined) lagging.push([node, why]);
    }
    const byName = (a: [string, string], b: [string, string]) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0);
    missing.sort(byName);
    lagging.sort(byName);
    const nodes = selected.nodes.size;
    const where = `of the ${plural(nodes, 'node')} that ${nodes === 1 ? 'runs' : 'run'} its ${plural(selected.endpoints, 'selected endpoint')}`;
    if (missing.length === 0 && lagging.length === 0) {
      realization = { done: true, noAgent: false, text: `every node that runs one of its ${plural(selected.endpoints, 'selected endpoint')} (${plural(nodes, 'node')}) has realized ${at}` };
    } else {
      const parts: string[] = [];
      if (missing.length > 0) parts.push(`no Palisade agent on ${missing.length} ${where}: ${named(missing)}`);
      if (lagging.length > 0) parts.push(`${at} not yet realized on ${lagging.length} ${where}: ${named(lagging)}`);
      realization = { done: false, noAgent: missing.length > 0, text: parts.join('; ') };
    }
  }
  const selectedEndpoints = selected ? selected.endpoints : 0;
  const settled = realization.done;
  if (!input.valid) {
    return {
      selectedEndpoints,
      status: 'False',
      reason: ENFORCED_REASONS.invalid,
      message: `the spec is invalid (see Valid): agents enforce it fail-closed for the endpoints it selects (isolated both ways, nothing allowed), not as written; ${realization.text}`,
      settled,
    };
  }
  if (!selected || selected.endpoints === 0) return { selectedEndpoints, status: 'True', reason: ENFORCED_REASONS.noEndpoints, message: `nothing to enforce: ${realization.text}`, settled };
  if (realization.done) return { selectedEndpoints, status: 'True', reason: ENFORCED_REASONS.enforced, message: realization.text, settled };
  return { selectedEndpoints, status: 'False', reason: realization.noAgent ? ENFORCED_REASONS.noAgent : ENFORCED_REASONS.pending, message: realization.text, settled };
}
