// Pure: what a node's XDP prefilter may drop (docs/adr/0013-xdp-prefilter.md).
//
// The prefilter drops, on the uplink, frames whose source every pod of the
// node denies on every port and protocol, before the kernel builds a socket
// buffer; the tc programs still enforce everything. It must never drop what
// the tc programs would let through, so it takes only deny rules that
// provably deny a source to EVERY pod, whatever the port and protocol:
//
//   - of a PalisadeClusterNetworkPolicy (a PalisadeNetworkPolicy selects
//     one namespace's pods) whose endpointSelector is `{}` (every pod: any
//     label requirement, pseudo-labels included, could leave one out);
//   - in ingressDeny (a deny wins over every allow, isolated or not);
//   - without toPorts, or with a toPorts entry of port 0 and protocol ANY
//     (every port of every protocol, as palisade-ir.ts reads it);
//   - whose peers are only fromCIDR, fromCIDRSet (excepts honoured) and
//     fromEntities [world]: nothing of fromEndpoints or the other entities
//     (a rule of mixed peers is left to tc whole, though its CIDR part would
//     do: simpler to explain, and rare).
//
// Of those rules it computes the exact set of denied addresses, the union
// of each block's prefix minus its excepts, as DISJOINT prefixes (no holes:
// the datapath's LPM map then drops exactly on a match, and writing or
// deleting an entry only ever widens or narrows that set, which is what lets
// the agent change it without a moment of dropping more than both the old
// and the new policy), each attributed to the first rule (by policy name,
// then rule index) that denies it, adjacent prefixes of one rule merged.
// And a `world` flag: the first rule naming world, whose addresses the
// datapath knows as those with no ipcache entry.

import { parseAddress, parseCidr, prefixContains, type Prefix } from './cidr.ts';
import type { CidrSet, PalisadeIngressRule } from './palisade-policy.ts';
import type { LabelSelector, PalisadePolicyInput, RuleRef } from './types.ts';

export interface PrefilterPrefix {
  /** IPv4 prefix, e.g. `203.0.113.0/24`. */
  prefix: string;
  /** The deny rule that denies it (the first, when several do). */
  rule: RuleRef;
}

export interface PrefilterPlan {
  /** Disjoint IPv4 prefixes sorted by address: every address in one is denied to every pod of every node, on every port and protocol. */
  prefixes: PrefilterPrefix[];
  /** The first qualifying rule naming `world` (undefined: none). */
  world: RuleRef | undefined;
  /** The qualifying rules, in attribution order. */
  rules: RuleRef[];
}

/** Whether a selector selects every pod: no label requirement at all. */
export function selectsEveryPod(selector: LabelSelector): boolean {
  return Object.keys(selector.matchLabels ?? {}).length === 0 && (selector.matchExpressions ?? []).length === 0;
}

/** Whether a deny rule matches every port of every protocol (no toPorts, or an entry of port 0 and protocol ANY). */
function everyPort(rule: PalisadeIngressRule): boolean {
  return rule.toPorts === undefined || rule.toPorts.some((pr) => pr.ports.some((p) => p.port === 0 && p.protocol === 'ANY'));
}

/** An IPv4 prefix as a 32-bit base (host bits cleared) and a length. */
interface P4 {
  base: number;
  len: number;
}

interface Block {
  prefix: P4;
  except: P4[];
}

/** A qualifying rule: its blocks and whether it names world. */
export interface PrefilterRule {
  rule: RuleRef;
  blocks: Array<{ prefix: string; except: string[] }>;
  world: boolean;
}

const toP4 = (p: Prefix): P4 => ({ base: p.words[0]! >>> 0, len: p.len });
const mask = (len: number) => (len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0);
const contains = (outer: P4, inner: P4) => outer.len <= inner.len && ((inner.base & mask(outer.len)) >>> 0) === outer.base;
const text = (p: P4) => `${p.base >>> 24}.${(p.base >>> 16) & 255}.${(p.base >>> 8) & 255}.${p.base & 255}/${p.len}`;
const compareP4 = (a: P4, b: P4) => a.base - b.base || a.len - b.len;

/** A CIDR set as the compiler reads it (palisade-ir.ts cidrBlock): IPv4 only; a set with an except that is not strictly inside its cidr is ignored. */
function block(set: CidrSet): Block | undefined {
  const cidr = parseCidr(set.cidr);
  if (typeof cidr === 'string' || cidr.family !== 4) return undefined;
  const except: P4[] = [];
  for (const e of set.except ?? []) {
    const p = parseCidr(e);
    if (typeof p === 'string' || !prefixContains(cidr, p) || p.len === cidr.len) return undefined;
    except.push(toP4(p));
  }
  return { prefix: toP4(cidr), except };
}

/** The deny rules the prefilter may enforce, in attribution order (policy name, then rule index). */
export function prefilterRules(policies: readonly PalisadePolicyInput[]): PrefilterRule[] {
  return qualifying(policies).map(({ rule, blocks, world }) => ({
    rule,
    world,
    blocks: blocks.map((b) => ({ prefix: text(b.prefix), except: b.except.map(text) })),
  }));
}

function qualifying(policies: readonly PalisadePolicyInput[]): Array<{ rule: RuleRef; blocks: Block[]; world: boolean }> {
  const out: Array<{ rule: RuleRef; blocks: Block[]; world: boolean }> = [];
  const cluster = policies
    .filter((p) => p.kind === 'PalisadeClusterNetworkPolicy' && selectsEveryPod(p.spec.endpointSelector))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const policy of cluster) {
    policy.spec.ingressDeny.forEach((r, index) => {
      const entities = r.fromEntities ?? [];
      if ((r.fromEndpoints ?? []).length > 0 || entities.some((e) => e !== 'world') || !everyPort(r)) return;
      const blocks = [...(r.fromCIDR ?? []).map((cidr) => ({ cidr })), ...(r.fromCIDRSet ?? [])].flatMap((set) => block(set) ?? []);
      const world = entities.includes('world');
      if (blocks.length === 0 && !world) return;
      out.push({ rule: { kind: 'PalisadeClusterNetworkPolicy', namespace: '', name: policy.name, direction: 'ingress', index, deny: true }, blocks, world });
    });
  }
  return out;
}

export function prefilterPlan(policies: readonly PalisadePolicyInput[]): PrefilterPlan {
  const rules = qualifying(policies);
  // The regions (regions.ts): every prefix and except of every block. The
  // most specific region holding an address decides, for every block, whether
  // the block holds it; so a region is denied by the first rule with a block
  // whose prefix contains the region and none of whose excepts does.
  const byKey = new Map<string, P4>();
  for (const r of rules) {
    for (const b of r.blocks) for (const p of [b.prefix, ...b.except]) byKey.set(`${p.base}/${p.len}`, p);
  }
  const regions = [...byKey.values()].sort(compareP4);
  const children = new Map<P4, P4[]>(regions.map((p) => [p, []]));
  const stack: P4[] = [];
  for (const p of regions) {
    while (stack.length > 0 && !contains(stack[stack.length - 1]!, p)) stack.pop();
    if (stack.length > 0) children.get(stack[stack.length - 1]!)!.push(p);
    stack.push(p);
  }
  const denied: Array<{ p: P4; rule: number }> = [];
  for (const region of regions) {
    const rule = rules.findIndex((r) => r.blocks.some((b) => contains(b.prefix, region) && !b.except.some((e) => contains(e, region))));
    if (rule < 0) continue;
    for (const p of subtract(region, children.get(region)!)) denied.push({ p, rule });
  }
  denied.sort((a, b) => compareP4(a.p, b.p));
  return {
    prefixes: merge(denied).map(({ p, rule }) => ({ prefix: text(p), rule: rules[rule]!.rule })),
    world: rules.find((r) => r.world)?.rule,
    rules: rules.map((r) => r.rule),
  };
}

/** `p` minus the prefixes `holes` (each strictly inside p), as disjoint prefixes in address order. */
function subtract(p: P4, holes: readonly P4[]): P4[] {
  if (holes.length === 0) return [p];
  if (holes.some((h) => h.len === p.len)) return [];
  const half = 1 << (31 - p.len);
  const lo = { base: p.base, len: p.len + 1 };
  const hi = { base: (p.base + (half >>> 0)) >>> 0, len: p.len + 1 };
  return [lo, hi].flatMap((h) => subtract(h, holes.filter((x) => contains(h, x))));
}

/** Sorted disjoint prefixes with adjacent halves of one prefix, of the same rule, merged (repeatedly). */
function merge(sorted: ReadonlyArray<{ p: P4; rule: number }>): Array<{ p: P4; rule: number }> {
  const stack: Array<{ p: P4; rule: number }> = [];
  for (const item of sorted) {
    let cur = item;
    for (;;) {
      const top = stack[stack.length - 1];
      if (!top || top.rule !== cur.rule || top.p.len !== cur.p.len || top.p.len === 0) break;
      const parent = { base: (top.p.base & mask(top.p.len - 1)) >>> 0, len: top.p.len - 1 };
      if (parent.base !== top.p.base || !contains(parent, cur.p)) break; // top must be the lower half, cur the upper
      stack.pop();
      cur = { p: parent, rule: cur.rule };
    }
    stack.push(cur);
  }
  return stack;
}

/** The rule under which the plan drops frames from `address` (its prefix's; or world's when `isWorld`), or undefined. */
export function prefilterDenies(plan: PrefilterPlan, address: string, isWorld = false): RuleRef | undefined {
  const a = parseAddress(address);
  if (!a || a.family !== 4) return undefined;
  const host = { base: a.words[0]! >>> 0, len: 32 };
  const hit = plan.prefixes.find((e) => {
    const p = parseCidr(e.prefix) as Prefix;
    return contains(toP4(p), host);
  });
  return hit?.rule ?? (isWorld ? plan.world : undefined);
}
