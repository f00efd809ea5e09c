// Pure: `kubectl palisade policy trace`: would a new connection be allowed,
// and by which policies and rules? Computed by the compiler the agents use
// (policy/compile.ts) and the datapath's own lookup (policy/evaluate.ts):
// the source pod's egress, then the destination pod's ingress. A side may
// be an address or CIDR outside the cluster (identity world); a CIDR is
// judged for every address in it, in the pieces the policies tell apart.
import { parseAddress, parseCidr, type Prefix } from '../policy/cidr.ts';
import { compile } from '../policy/compile.ts';
import { evaluateDirection, type DirectionVerdict } from '../policy/evaluate.ts';
import { IDENTITY_WORLD } from '../policy/ids.ts';
import type { CompiledPolicy, Direction, EndpointPolicy, NamespaceInput, NetworkPolicyInput, PalisadePolicyInput, PodInput, PolicyRef, Protocol, RuleRef } from '../policy/types.ts';
import { CliError, EXIT, usageError } from './errors.ts';

export type Side =
  | { kind: 'pod'; namespace: string; name: string }
  /** An IPv4 address (`/32`) or CIDR; `text` as the user wrote it, normalized. */
  | { kind: 'address'; text: string; first: number; last: number };

export interface TraceQuery {
  from: Side;
  to: Side;
  protocol: Protocol;
  port: number;
}

/** What the compiler is given: the objects the user could read. */
export interface TraceCluster {
  pods: PodInput[];
  namespaces: NamespaceInput[];
  policies: NetworkPolicyInput[];
  /** PalisadeNetworkPolicies of the pods' namespaces and every PalisadeClusterNetworkPolicy. */
  palisadePolicies?: PalisadePolicyInput[];
  /** Identity key -> number; undefined when SecurityIdentities could not be read. */
  identities: ReadonlyMap<string, number> | undefined;
}

export interface Piece {
  /** The peer: a pod, an address, a CIDR or a range of addresses. */
  peer: string;
  /** An address of the piece (what the kernel check asks about). */
  address: string;
  verdict: DirectionVerdict;
}

export interface HookTrace {
  direction: Direction;
  /** The pod whose hook judges: `ns/name`. */
  endpoint: string;
  node: string | undefined;
  pieces: Piece[];
  allowed: boolean;
}

export interface TraceResult {
  from: string;
  to: string;
  protocol: Protocol;
  port: number;
  /** The source pod's egress; undefined when the source is outside the cluster. */
  egress: HookTrace | undefined;
  /** The destination pod's ingress; undefined when the destination is outside the cluster. */
  ingress: HookTrace | undefined;
  allowed: boolean;
  /** What the answer assumed or could not know. */
  notes: string[];
}

const POD_NAME = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?)\/([a-z0-9]([-.a-z0-9]*[a-z0-9])?)$/;

/** `ns/name`, a bare pod name (in `namespace`), an IPv4 address or an IPv4 CIDR. */
export function parseSide(flag: string, text: string, namespace: string): Side {
  const t = text.trim();
  if (/^[\d.]+(\/.*)?$/.test(t)) {
    const p = parseCidr(t.includes('/') ? t : `${t}/32`);
    if (typeof p === 'string' || p.family !== 4) {
      const what = t.includes('/') ? 'malformed CIDR' : 'malformed IPv4 address';
      throw usageError(`${flag} ${JSON.stringify(text)}: ${what}${p === 'prefix-length' ? ' (the prefix length must be 0 to 32)' : ''}`);
    }
    const first = p.words[0]!;
    return { kind: 'address', text: p.len === 32 ? ipText(first) : p.text, first, last: first + 2 ** (32 - p.len) - 1 };
  }
  const m = POD_NAME.exec(t.includes('/') ? t : `${namespace}/${t}`);
  if (!m) throw usageError(`${flag} ${JSON.stringify(text)}: not a pod (namespace/name), an IPv4 address or a CIDR`);
  return { kind: 'pod', namespace: m[1]!, name: m[3]! };
}

export const ipText = (n: number) => [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
const sideText = (s: Side) => (s.kind === 'pod' ? `${s.namespace}/${s.name}` : s.text);

/** The compiler's answer for the query over the cluster's objects. */
export function trace(q: TraceQuery, cluster: TraceCluster): TraceResult {
  const notes: string[] = [];
  let identities = cluster.identities;
  if (!identities) {
    // Without the allocator's numbers, give every label set one: selectors match as they would once allocated.
    const keys = compile({ ...cluster, identities: new Map() }).missingIdentities;
    identities = new Map(keys.map((k, i) => [k, 256 + i]));
    notes.push('SecurityIdentities could not be read (RBAC): assumed every pod has its identity; identity numbers shown are placeholders');
  }
  const compiled = compile({ ...cluster, identities });
  const from = resolve(q.from, cluster, compiled, notes);
  const to = resolve(q.to, cluster, compiled, notes);
  if (from.kind === 'address' && to.kind === 'address') throw usageError('policy trace needs a pod on at least one side');
  for (const ep of [from, to]) {
    if (ep.kind === 'pod' && ep.endpoint.identity === undefined) {
      notes.push(`${ep.endpoint.endpoint} has no security identity yet: no selector matches it until the operator allocates one (fail closed)`);
    }
  }
  const hook = (ep: Resolved, direction: Direction, peer: Resolved): HookTrace | undefined => {
    if (ep.kind !== 'pod') return undefined;
    const dp = ep.endpoint[direction];
    const deny = ep.endpoint[direction === 'ingress' ? 'ingressDeny' : 'egressDeny'];
    const pieces: Piece[] =
      peer.kind === 'pod'
        ? [{ peer: podPeerText(peer.endpoint, compiled), address: peer.endpoint.ip, verdict: judge(dp, peer.endpoint.ip, compiled, q, deny) }]
        : cidrPieces(dp, peer.side, compiled, q, deny);
    return { direction, endpoint: ep.endpoint.endpoint, node: ep.endpoint.node, pieces, allowed: pieces.every((p) => p.verdict.decision !== 'deny') };
  };
  const egress = hook(from, 'egress', to);
  const ingress = hook(to, 'ingress', from);
  return {
    from: describeSide(from, compiled),
    to: describeSide(to, compiled),
    protocol: q.protocol,
    port: q.port,
    egress,
    ingress,
    allowed: (egress?.allowed ?? true) && (ingress?.allowed ?? true),
    notes,
  };
}

type Resolved = { kind: 'pod'; endpoint: EndpointPolicy } | { kind: 'address'; side: Extract<Side, { kind: 'address' }> };

function resolve(side: Side, cluster: TraceCluster, compiled: CompiledPolicy, notes: string[]): Resolved {
  if (side.kind === 'address') {
    // An address that a pod owns is that pod, on both hooks, as the datapath sees it.
    if (side.first === side.last) {
      const owner = [...compiled.endpoints.values()].find((e) => e.ip === side.text);
      if (owner) {
        notes.push(`${side.text} is the address of pod ${owner.endpoint}`);
        return { kind: 'pod', endpoint: owner };
      }
    }
    return { kind: 'address', side };
  }
  const key = sideText(side);
  const pod = cluster.pods.find((p) => p.namespace === side.namespace && p.name === side.name);
  if (!pod) throw new CliError(EXIT.NOT_FOUND, `unknown pod ${key}`);
  const endpoint = compiled.endpoints.get(key);
  if (!endpoint) throw new CliError(EXIT.NOT_FOUND, `pod ${key} has no address: it is not running (pending, finished or host-network), so nothing reaches it`);
  return { kind: 'pod', endpoint };
}

function judge(dp: EndpointPolicy['ingress'], address: string, compiled: CompiledPolicy, q: TraceQuery, deny?: EndpointPolicy['ingressDeny']): DirectionVerdict {
  const parsed = parseAddress(address);
  if (!parsed) throw new CliError(EXIT.OTHER, `not an address: ${address}`);
  return evaluateDirection(dp, { address: parsed, identity: compiled.ipcache.get(address) ?? IDENTITY_WORLD }, q.protocol, q.port, deny);
}

function podPeerText(ep: EndpointPolicy, compiled: CompiledPolicy): string {
  const identity = compiled.ipcache.get(ep.ip);
  return `${ep.endpoint} (${ep.ip}${identity === undefined ? ', no identity' : `, identity ${identity}`})`;
}

function describeSide(r: Resolved, compiled: CompiledPolicy): string {
  if (r.kind === 'address') return `${r.side.text} (outside the cluster)`;
  const e = r.endpoint;
  const identity = compiled.ipcache.get(e.ip);
  return `${e.endpoint} (${e.ip}${e.node ? ` on ${e.node}` : ''}${identity === undefined ? '' : `, identity ${identity}`})`;
}

/**
 * The verdicts over the addresses of a CIDR, as few pieces as the policy
 * tells apart. A direction's verdict for an outside address changes only
 * where one of its CIDR regions begins or ends (identity and any-peer
 * entries are the same for every world address), so judging the first
 * address after each such boundary covers every address.
 */
export function cidrPieces(dp: EndpointPolicy['ingress'], side: Extract<Side, { kind: 'address' }>, compiled: CompiledPolicy, q: TraceQuery, deny?: EndpointPolicy['ingressDeny']): Piece[] {
  const bounds = new Set([side.first]);
  for (const region of [...(dp?.cidrRegions ?? []), ...(deny?.cidrRegions ?? [])]) {
    const p = parseCidr(region.prefix);
    if (typeof p === 'string' || p.family !== 4) continue;
    const [lo, hi] = range(p);
    if (lo > side.first && lo <= side.last) bounds.add(lo);
    if (hi + 1 > side.first && hi + 1 <= side.last) bounds.add(hi + 1);
  }
  const starts = [...bounds].sort((a, b) => a - b);
  // Consecutive ranges with the same verdict are one range; ranges with the same verdict are shown together.
  const groups = new Map<string, { verdict: DirectionVerdict; ranges: Array<[number, number]> }>();
  starts.forEach((start, i) => {
    const end = i + 1 < starts.length ? starts[i + 1]! - 1 : side.last;
    const verdict = judge(dp, ipText(start), compiled, q, deny);
    const key = JSON.stringify(verdict);
    const g = groups.get(key) ?? { verdict, ranges: [] };
    const previous = g.ranges.at(-1);
    if (previous && previous[1] + 1 === start) previous[1] = end;
    else g.ranges.push([start, end]);
    groups.set(key, g);
  });
  return [...groups.values()].map((g) => ({
    peer: g.ranges.map(([lo, hi]) => (lo === side.first && hi === side.last ? side.text : rangeText(lo, hi))).join(', '),
    address: ipText(g.ranges[0]![0]),
    verdict: g.verdict,
  }));
}

function range(p: Prefix): [number, number] {
  const lo = p.words[0]!;
  return [lo, lo + 2 ** (32 - p.len) - 1];
}

/** A range as a CIDR when it is one, else `first - last`. */
export function rangeText(lo: number, hi: number): string {
  const size = hi - lo + 1;
  const len = 32 - Math.log2(size);
  return Number.isInteger(len) && lo % size === 0 ? (len === 32 ? ipText(lo) : `${ipText(lo)}/${len}`) : `${ipText(lo)} - ${ipText(hi)}`;
}

const policyRef = (p: PolicyRef) => (p.kind === 'PalisadeClusterNetworkPolicy' ? `${p.kind} ${p.name}` : `${p.kind ?? 'NetworkPolicy'} ${p.namespace}/${p.name}`);
const ruleText = (r: RuleRef) =>
  `${policyRef(r)}, ${r.direction}${r.deny ? 'Deny' : ''} rule ${r.index}${r.implicitDns ? ' (the DNS queries its toFQDNs need)' : ''}`;
const viaText = (v: { via?: string; region?: string }) =>
  v.via === 'identity' ? 'it selects the peer' : v.via === 'any' ? 'it matches every peer' : v.via === 'cluster' ? 'the peer is in the cluster' : `CIDR region ${v.region}`;

/** Why one hook lets a peer through or not. */
export function verdictText(v: DirectionVerdict, h: Pick<HookTrace, 'direction' | 'endpoint'>): string {
  switch (v.decision) {
    case 'unselected':
      return `allowed: no policy selects ${h.endpoint} for ${h.direction} (not isolated)`;
    case 'allow':
      return `allowed by ${ruleText(v.rule)} (${viaText(v)})`;
    case 'deny':
      if (v.rule) return `denied by ${ruleText(v.rule)} (${viaText(v)}): a deny rule wins over every allow`;
      return `denied: default deny, no rule of ${v.isolatedBy.map(policyRef).join(', ')} allows it`;
  }
}

const hookName = (h: HookTrace) => `${h.direction} of ${h.endpoint}`;

/** The trace as the user reads it. */
export function renderTrace(r: TraceResult): string {
  const lines = [`${r.protocol}/${r.port} from ${r.from} to ${r.to}`, ''];
  if (!r.egress) lines.push('egress: the source is outside the cluster, no Palisade hook judges it');
  for (const h of [r.egress, r.ingress]) {
    if (!h) continue;
    const only = h.pieces.length === 1 ? h.pieces[0]! : undefined;
    if (only) {
      lines.push(`${hookName(h)}: ${verdictText(only.verdict, h)}`);
      continue;
    }
    const allowedPieces = h.pieces.filter((p) => p.verdict.decision !== 'deny').length;
    lines.push(`${hookName(h)}: ${h.allowed ? 'allowed' : allowedPieces === 0 ? 'denied' : 'denied for part of it'}`);
    for (const p of h.pieces) lines.push(`  ${p.peer}: ${verdictText(p.verdict, h)}`);
  }
  if (!r.ingress) lines.push('ingress: the destination is outside the cluster, no Palisade hook judges it');
  lines.push('');
  const denied = [r.egress, r.ingress].filter((h): h is HookTrace => !!h && !h.allowed);
  lines.push(denied.length === 0 ? 'verdict: allowed' : `verdict: denied at the ${denied.map(hookName).join(' and at the ')}`);
  for (const n of r.notes) lines.push(`note: ${n}`);
  return `${lines.join('\n')}\n`;
}

/** A question for a node's kernel maps: what they say of the connection at one hook (the verdicts API). */
export interface KernelQuestion {
  namespace: string;
  pod: string;
  direction: Direction;
  peer: string;
  protocol: Protocol;
  port: number;
  /** What the compiler says. */
  allowed: boolean;
}

export function kernelQuestions(r: TraceResult): KernelQuestion[] {
  return [r.egress, r.ingress].flatMap((h) => {
    if (!h) return [];
    const [namespace, pod] = h.endpoint.split('/') as [string, string];
    return h.pieces.map((p) => ({ namespace, pod, direction: h.direction, peer: p.address, protocol: r.protocol, port: r.port, allowed: p.verdict.decision !== 'deny' }));
  });
}

/** The verdicts API's answer: the datapath reason a new connection gets from the node's maps. */
export interface KernelAnswer {
  node?: string;
  reason: string;
}

const KERNEL_ALLOWS = new Set(['ALLOW_POLICY', 'PASS_UNSELECTED']);

/** A warning for every question the kernel maps answer differently from the compiler. */
export function kernelDisagreements(questions: readonly KernelQuestion[], answers: readonly KernelAnswer[]): string[] {
  return questions.flatMap((q, i) => {
    const a = answers[i];
    if (!a || KERNEL_ALLOWS.has(a.reason) === q.allowed) return [];
    return [
      `the kernel maps of ${a.node ?? 'the node'} disagree: ${a.reason} for the ${q.direction} of ${q.namespace}/${q.pod} ${q.direction === 'egress' ? 'to' : 'from'} ${q.peer} ${q.protocol}/${q.port}, where the policies say ${q.allowed ? 'allowed' : 'denied'}; the agent may not have realized the latest change yet (kubectl palisade status)`,
    ];
  });
}
