// Pure: `kubectl palisade observe`'s flags turned into requests to the
// aggregated API (docs/adr/0006-flows.md): the namespaces to ask in, the
// criteria (lib/flow-filter.ts) and the time window. Everything the user
// typed is checked here, before any request, so that a malformed filter
// fails at once and names what is wrong.
import { REASON } from '../datapath/abi.ts';
import type { Flow } from '../lib/flow.ts';
import { CriteriaError, flowFilter, type FlowCriteria } from '../lib/flow-filter.ts';
import { parseDuration } from './duration.ts';
import { usageError } from './errors.ts';
import { FLOW_OUTPUTS, type FlowOutput } from './format.ts';

export const FLOWS_API = '/apis/flows.palisade.io/v1alpha1';

/** The flags as commander collects them (repeatable ones as lists). */
export interface ObserveFlags {
  namespace?: string[];
  allNamespaces?: boolean;
  pod?: string[];
  fromPod?: string[];
  toPod?: string[];
  label?: string[];
  identity?: string[];
  ip?: string[];
  port?: string[];
  protocol?: string[];
  verdict?: string[];
  reason?: string[];
  policy?: string[];
  node?: string[];
  type?: string[];
  follow?: boolean;
  last?: string;
  since?: string;
  output?: string;
}

export interface ObservePlan {
  /** One request per namespace, merged; `undefined`: one request across the cluster. */
  scopes: Array<string | undefined>;
  criteria: FlowCriteria;
  last?: number;
  /** Flows at or after this time (ms since the epoch). */
  sinceMs?: number;
  follow: boolean;
  output: FlowOutput;
  /** `ns/name` of every pod a filter names: each must exist. */
  pods: string[];
}

export const PROTOCOLS = ['TCP', 'UDP', 'SCTP', 'ICMP'] as const;
export const VERDICTS: ReadonlyArray<Flow['verdict']> = ['forwarded', 'dropped'];
export const TYPES: ReadonlyArray<Flow['type']> = ['new', 'drop', 'end', 'update', 'drop-summary'];
export const REASONS = Object.keys(REASON);

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const POLICY = /^(?:([A-Za-z][A-Za-z0-9]*) )?(?:([a-z0-9]([-a-z0-9]*[a-z0-9])?)\/)?([a-z0-9]([-.a-z0-9]*[a-z0-9])?)$/;

function oneOf<T extends string>(flag: string, values: string[] | undefined, allowed: readonly T[], normalize = (v: string) => v): T[] | undefined {
  if (!values || values.length === 0) return undefined;
  return values.map((v) => {
    const n = normalize(v);
    if (!(allowed as readonly string[]).includes(n)) throw usageError(`${flag} ${JSON.stringify(v)}: must be one of ${allowed.join(', ')}`);
    return n as T;
  });
}

function integers(flag: string, values: string[] | undefined, min: number, max: number): number[] | undefined {
  if (!values || values.length === 0) return undefined;
  return values.map((v) => {
    const n = Number(v);
    if (!/^\d+$/.test(v.trim()) || n < min || n > max) throw usageError(`${flag} ${JSON.stringify(v)}: must be a whole number from ${min} to ${max}`);
    return n;
  });
}

export interface ObserveContext {
  /** The kubeconfig context's namespace (`default` when it names none). */
  namespace: string;
  nowMs: number;
}

export function planObserve(flags: ObserveFlags, ctx: ObserveContext): ObservePlan {
  for (const ns of flags.namespace ?? []) if (!DNS_LABEL.test(ns)) throw usageError(`-n ${JSON.stringify(ns)}: not a namespace name`);
  const namespaces = [...new Set(flags.namespace ?? [])];
  // A bare name is in the namespace given with -n, if just one, else the context's (as kubectl reads names).
  const home = namespaces.length === 1 ? namespaces[0]! : ctx.namespace;
  const qualify = (v: string) => (v.includes('/') ? v : `${home}/${v}`);
  const pods = flags.pod?.map(qualify);
  const fromPods = flags.fromPod?.map(qualify);
  const toPods = flags.toPod?.map(qualify);

  const criteria: FlowCriteria = {};
  const put = <K extends keyof FlowCriteria>(key: K, value: FlowCriteria[K] | undefined) => {
    if (value !== undefined && (value as unknown[]).length > 0) criteria[key] = value;
  };
  put('pods', pods);
  put('fromPods', fromPods);
  put('toPods', toPods);
  put('labels', flags.label);
  put('identities', integers('--identity', flags.identity, 0, 2 ** 32 - 1));
  put('ips', flags.ip);
  put('ports', integers('--port', flags.port, 1, 65535));
  put('protocols', oneOf('--protocol', flags.protocol, PROTOCOLS, (v) => v.toUpperCase()));
  put('verdicts', oneOf('--verdict', flags.verdict, VERDICTS, (v) => v.toLowerCase()));
  put('reasons', oneOf('--reason', flags.reason, REASONS, (v) => v.toUpperCase()));
  put('policies', flags.policy?.map((p) => {
    const m = POLICY.exec(p.trim());
    if (!m) throw usageError(`--policy ${JSON.stringify(p)}: write it as ns/name (a NetworkPolicy) or "KIND ns/name"`);
    const [, kind, namespace, , name] = m;
    // Without a kind it is a NetworkPolicy, which lives in a namespace.
    return kind ? `${kind} ${namespace ? `${namespace}/` : ''}${name}` : `NetworkPolicy ${namespace ?? home}/${name}`;
  }));
  put('nodes', flags.node?.map((n) => {
    if (!/^[a-z0-9]([-.a-z0-9]*[a-z0-9])?$/.test(n)) throw usageError(`--node ${JSON.stringify(n)}: not a node name`);
    return n;
  }));
  put('types', oneOf('--type', flags.type, TYPES, (v) => v.toLowerCase()));
  try {
    flowFilter(criteria);
  } catch (error) {
    if (error instanceof CriteriaError) throw usageError(`invalid filter: ${error.message}`);
    throw error;
  }

  const output = oneOf('-o', flags.output === undefined ? undefined : [flags.output], FLOW_OUTPUTS)?.[0] ?? 'table';
  const last = flags.last === undefined ? undefined : integers('--last', [flags.last], 0, Number.MAX_SAFE_INTEGER)![0];
  let sinceMs: number | undefined;
  if (flags.since !== undefined) {
    try {
      sinceMs = ctx.nowMs - parseDuration(flags.since);
    } catch (error) {
      throw usageError(`--since: ${(error as Error).message}`);
    }
  }
  // Following without --last or --since starts now, rather than replaying every stored flow first.
  if (flags.follow && last === undefined && sinceMs === undefined) sinceMs = ctx.nowMs;

  return {
    scopes: scopes(flags, namespaces, [pods, fromPods, toPods], ctx.namespace),
    criteria,
    ...(last === undefined ? {} : { last }),
    ...(sinceMs === undefined ? {} : { sinceMs }),
    follow: flags.follow === true,
    output,
    pods: [...new Set([...(pods ?? []), ...(fromPods ?? []), ...(toPods ?? [])])],
  };
}

/**
 * Where to ask: -A across the cluster (it wins over -n, as in kubectl);
 * else every -n; else, when pods are named, their namespaces (every flow
 * must have one of them: the pod filter of fewest namespaces is enough, so
 * that a user allowed in just one namespace can follow its pods' traffic to
 * others); else the context's namespace.
 */
function scopes(flags: ObserveFlags, namespaces: string[], podLists: Array<string[] | undefined>, contextNamespace: string): Array<string | undefined> {
  if (flags.allNamespaces) return [undefined];
  if (namespaces.length > 0) return namespaces;
  const candidates = podLists.filter((l): l is string[] => !!l && l.length > 0).map((l) => [...new Set(l.map((p) => p.split('/')[0]!))].sort());
  if (candidates.length > 0) return candidates.reduce((best, c) => (c.length < best.length ? c : best));
  return [contextNamespace];
}

/** The API path of one request of the plan. */
export function flowsPath(plan: ObservePlan, scope: string | undefined): string {
  const q = new URLSearchParams({ criteria: JSON.stringify(plan.criteria) });
  if (plan.last !== undefined) q.set('last', String(plan.last));
  if (plan.sinceMs !== undefined) q.set('since', String(Math.floor(plan.sinceMs)));
  if (plan.follow) q.set('follow', 'true');
  return `${FLOWS_API}${scope === undefined ? '' : `/namespaces/${scope}`}/flows?${q}`;
}

/** Nodes named by --node that no agent answered for: a filter that cannot match. */
export function unknownNodes(plan: ObservePlan, nodes: readonly string[]): string[] {
  return (plan.criteria.nodes ?? []).filter((n) => !nodes.includes(n));
}
