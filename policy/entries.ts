// Policy entries: the total order used for deterministic output, deduplication,
// equality, and the number of datapath map entries a set of entries needs.

import type { CidrRegion, DirectionPolicy, EntryCount, EntryProtocol, PeerClass, PolicyEntry, PolicyRef, RuleRef } from './types.ts';

const PROTOCOL_ORDER: Record<EntryProtocol, number> = { ANY: 0, TCP: 1, UDP: 2, SCTP: 3 };

const peerOrder = (p: PeerClass) => (p.kind === 'any' ? 0 : p.kind === 'identity' ? 1 : 2);
const peerValue = (p: PeerClass) => (p.kind === 'any' ? 0 : p.kind === 'identity' ? p.identity : p.regionId);

const cmpStr = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

export function compareRules(a: RuleRef, b: RuleRef): number {
  if (a === b) return 0;
  return cmpStr(a.namespace, b.namespace) || cmpStr(a.name, b.name) || cmpStr(a.direction, b.direction) || a.index - b.index;
}

export const comparePolicyRefs = (a: PolicyRef, b: PolicyRef) => cmpStr(a.namespace, b.namespace) || cmpStr(a.name, b.name);

/** Peer class, peer number, protocol, port range ('any' first), rule. */
export function compareEntries(a: PolicyEntry, b: PolicyEntry): number {
  if (a === b) return 0;
  let d = peerOrder(a.peer) - peerOrder(b.peer) || peerValue(a.peer) - peerValue(b.peer);
  if (d) return d;
  d = PROTOCOL_ORDER[a.protocol] - PROTOCOL_ORDER[b.protocol];
  if (d) return d;
  if (a.port !== b.port) {
    if (a.port === 'any') return -1;
    if (b.port === 'any') return 1;
    d = a.port.from - b.port.from || a.port.to - b.port.to;
    if (d) return d;
  }
  return compareRules(a.rule, b.rule);
}

/** Sorts in place and removes duplicates (entries equal in every field). */
export function sortDedup(entries: PolicyEntry[]): PolicyEntry[] {
  entries.sort(compareEntries);
  let w = 0;
  for (let i = 0; i < entries.length; i++) {
    if (w > 0 && compareEntries(entries[w - 1]!, entries[i]!) === 0) continue;
    entries[w++] = entries[i]!;
  }
  entries.length = w;
  return entries;
}

export function entriesEqual(a: readonly PolicyEntry[], b: readonly PolicyEntry[]): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (compareEntries(a[i]!, b[i]!) !== 0) return false;
  return true;
}

export function directionEqual(a: DirectionPolicy | undefined, b: DirectionPolicy | undefined): boolean {
  if (a === b) return true;
  if (!a || !b) return false;
  if (a.isolatedBy.length !== b.isolatedBy.length || a.cidrRegions.length !== b.cidrRegions.length) return false;
  for (let i = 0; i < a.isolatedBy.length; i++) if (comparePolicyRefs(a.isolatedBy[i]!, b.isolatedBy[i]!) !== 0) return false;
  for (let i = 0; i < a.cidrRegions.length; i++) {
    const x = a.cidrRegions[i]!;
    const y = b.cidrRegions[i]!;
    if (x.prefix !== y.prefix || x.regionId !== y.regionId || !entriesEqual(x.entries, y.entries)) return false;
  }
  return entriesEqual(a.entries, b.entries);
}

/** Number of distinct ports covered by inclusive ranges. */
export function distinctPorts(ranges: readonly { from: number; to: number }[]): number {
  const sorted = [...ranges].sort((a, b) => a.from - b.from);
  let count = 0;
  let end = -1;
  for (const r of sorted) {
    if (r.to <= end) continue;
    count += r.to - Math.max(r.from, end + 1) + 1;
    end = r.to;
  }
  return count;
}

/**
 * The `pal_policy` entries one direction needs, per ADR 0001: per peer class a
 * summary entry; nothing more when some entry allows every protocol (`ALL`);
 * else per protocol one "all ports" entry when a rule allows every port of
 * it, or else one entry per distinct port (ranges expanded). `cidr` counts
 * the `pal_policy_cidr` prefixes (one per region).
 */
export function entryCount(entries: readonly PolicyEntry[], regions: readonly CidrRegion[]): EntryCount {
  const classes = new Map<string, PolicyEntry[]>();
  const add = (e: PolicyEntry) => {
    const k = `${e.peer.kind}:${peerValue(e.peer)}`;
    const list = classes.get(k);
    if (list) list.push(e);
    else classes.set(k, [e]);
  };
  entries.forEach(add);
  for (const r of regions) r.entries.forEach(add);
  let policy = 0;
  for (const list of classes.values()) {
    policy += 1;
    if (list.some((e) => e.protocol === 'ANY')) continue;
    for (const proto of ['TCP', 'UDP', 'SCTP'] as const) {
      const mine = list.filter((e) => e.protocol === proto);
      if (mine.length === 0) continue;
      if (mine.some((e) => e.port === 'any')) policy += 1;
      else policy += distinctPorts(mine.map((e) => e.port as { from: number; to: number }));
    }
  }
  return { policy, cidr: regions.length };
}
