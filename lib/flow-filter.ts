// Pure: which flows a query asks for (`kubectl palisade observe` filters,
// and the namespaces RBAC lets the caller see). Criteria are plain JSON, so
// they travel from the plugin through the API server to every agent; each
// criterion narrows (all must hold); lists inside one criterion widen (any
// may hold). A criterion that cannot match anything is an error naming it.
import { isIPv4 } from 'node:net';
import type { Flow, FlowPeer } from './flow.ts';
import { policyText } from './flow.ts';

export interface FlowCriteria {
  /** A flow with a pod of one of these namespaces at either end. */
  namespaces?: string[];
  /** `namespace/name`: the pod at either end, as source, as destination. */
  pods?: string[];
  fromPods?: string[];
  toPods?: string[];
  /** `key=value` or `key` (present): a pod at either end with all of them. */
  labels?: string[];
  identities?: number[];
  /** Addresses or CIDRs, at either end. */
  ips?: string[];
  ports?: number[];
  protocols?: string[];
  verdicts?: Array<Flow['verdict']>;
  reasons?: string[];
  /** `KIND NAMESPACE/NAME` (or `NAMESPACE/NAME` for NetworkPolicy) among the flow's policies. */
  policies?: string[];
  nodes?: string[];
  types?: Array<Flow['type']>;
}

export class CriteriaError extends Error {}

interface Cidr {
  base: number;
  mask: number;
}

function parseCidr(text: string): Cidr {
  const [address = '', bitsText, extra] = text.split('/');
  const bits = bitsText === undefined ? 32 : Number(bitsText);
  if (extra !== undefined || !isIPv4(address) || !Number.isInteger(bits) || bits < 0 || bits > 32 || (bitsText !== undefined && !/^\d+$/.test(bitsText))) {
    throw new CriteriaError(`not an IPv4 address or CIDR: ${JSON.stringify(text)}`);
  }
  const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
  return { base: (ipNumber(address) & mask) >>> 0, mask };
}

function ipNumber(ip: string): number {
  return ip.split('.').reduce((n, part) => (n << 8) + Number(part), 0) >>> 0;
}

const LABEL = /^([A-Za-z0-9][-A-Za-z0-9_./]{0,252})(=([-A-Za-z0-9_.]{0,63}))?$/;
const POD = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?\/[a-z0-9]([-.a-z0-9]*[a-z0-9])?$/;

/** The predicate of the criteria; throws CriteriaError naming a criterion that is malformed. */
export function flowFilter(criteria: FlowCriteria): (flow: Flow) => boolean {
  const checks: Array<(flow: Flow) => boolean> = [];
  const podKey = (p: FlowPeer) => (p.pod ? `${p.pod.namespace}/${p.pod.name}` : undefined);
  const set = <T>(list: T[] | undefined) => (list && list.length > 0 ? new Set(list) : undefined);

  const namespaces = set(criteria.namespaces);
  if (namespaces) checks.push((f) => namespaces.has(f.source.pod?.namespace ?? '') || namespaces.has(f.destination.pod?.namespace ?? ''));
  for (const [list, pick] of [
    [criteria.pods, (f: Flow) => [podKey(f.source), podKey(f.destination)]],
    [criteria.fromPods, (f: Flow) => [podKey(f.source)]],
    [criteria.toPods, (f: Flow) => [podKey(f.destination)]],
  ] as const) {
    const pods = set(list as string[] | undefined);
    if (!pods) continue;
    for (const p of pods) if (!POD.test(p)) throw new CriteriaError(`not a pod as namespace/name: ${JSON.stringify(p)}`);
    checks.push((f) => pick(f).some((k) => k !== undefined && pods.has(k)));
  }
  if (criteria.labels && criteria.labels.length > 0) {
    const wanted = criteria.labels.map((text) => {
      const m = LABEL.exec(text);
      if (!m) throw new CriteriaError(`not a label as key=value or key: ${JSON.stringify(text)}`);
      return { key: m[1]!, value: m[2] === undefined ? undefined : m[3]! };
    });
    const has = (p: FlowPeer) => !!p.labels && wanted.every(({ key, value }) => (value === undefined ? key in p.labels! : p.labels![key] === value));
    checks.push((f) => has(f.source) || has(f.destination));
  }
  const identities = set(criteria.identities);
  if (identities) checks.push((f) => identities.has(f.source.identity) || identities.has(f.destination.identity));
  if (criteria.ips && criteria.ips.length > 0) {
    const cidrs = criteria.ips.map(parseCidr);
    const inAny = (ip: string) => isIPv4(ip) && cidrs.some((c) => ((ipNumber(ip) & c.mask) >>> 0) === c.base);
    checks.push((f) => inAny(f.source.ip) || inAny(f.destination.ip));
  }
  const ports = set(criteria.ports);
  if (ports) {
    for (const p of ports) if (!Number.isInteger(p) || p < 1 || p > 65535) throw new CriteriaError(`not a port: ${p}`);
    checks.push((f) => ports.has(f.destination.port ?? -1) || ports.has(f.source.port ?? -1));
  }
  const protocols = set(criteria.protocols?.map((p) => p.toUpperCase()));
  if (protocols) checks.push((f) => protocols.has(f.protocol));
  const verdicts = set(criteria.verdicts);
  if (verdicts) checks.push((f) => verdicts.has(f.verdict));
  const reasons = set(criteria.reasons?.map((r) => r.toUpperCase()));
  if (reasons) checks.push((f) => reasons.has(f.reason));
  const policies = set(criteria.policies?.map((p) => (p.includes(' ') ? p : `NetworkPolicy ${p}`)));
  if (policies) checks.push((f) => f.policies.some((p) => policies.has(policyText(p))));
  const nodes = set(criteria.nodes);
  if (nodes) checks.push((f) => nodes.has(f.node));
  const types = set(criteria.types);
  if (types) checks.push((f) => types.has(f.type));
  return (flow) => checks.every((check) => check(flow));
}
