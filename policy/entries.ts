// Policy entries: the total order used for deterministic output, deduplication,
// equality, and the number of datapath map entries a set of entries needs.

import type { CidrRegion, EntryCount, EntryProtocol, PeerClass, PolicyEntry, PolicyRef, PortRange, RuleRef } from './types.ts';

const PROTOCOL_ORDER: Record<EntryProtocol, number> = { ANY: 0, TCP: 1, UDP: 2, SCTP: 3 };

const peerOrder = (p: PeerClass) => (p.kind === 'any' ? 0 : p.kind === 'identity' ? 1 : 2);
const peerValue = (p: PeerClass) => (p.kind === 'any' ? 0 : p.kind === 'identity' ? p.identity : p.regionId);

const cmpStr = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

export function compareRules(a: RuleRef, b: RuleRef): number {
  if (a === b) return 0;
  return (
    comparePolicyRefs(a, b) ||
    cmpStr(a.direction, b.direction) ||
    Number(a.deny ?? false) - Number(b.deny ?? false) ||
    a.index - b.index ||
    Number(a.implicitDns ?? false) - Number(b.implicitDns ?? false)
  );
}

/** NetworkPolicies first, then PalisadeNetworkPolicies, then PalisadeClusterNetworkPolicies; then namespace, name. */
export const comparePolicyRefs = (a: PolicyRef, b: PolicyRef) => cmpStr(a.kind ?? '', b.kind ?? '') || cmpStr(a.namespace, b.namespace) || cmpStr(a.name, b.name);

/**
 * The order of entries: rule (namespace, name, direction, index), then peer
 * class (any, identity, region) and number, protocol (ANY, TCP, UDP, SCTP),
 * port range ('any' first). Rule-major, so that the entries of a direction
 * are the concatenation of its rules' entries, each computed once.
 */
export function compareEntries(a: PolicyEntry, b: PolicyEntry): number {
  if (a === b) return 0;
  return compareRules(a.rule, b.rule) || compareEntryPeerPort(a, b);
}

/** The order within one rule: peer class and number, protocol, port range. */
export function compareEntryPeerPort(a: PolicyEntry, b: PolicyEntry): number {
  const d = peerOrder(a.peer) - peerOrder(b.peer) || peerValue(a.peer) - peerValue(b.peer);
  return d || comparePorts(a, b);
}

/** Protocol (ANY, TCP, UDP, SCTP), then port range ('any' first). */
export function comparePorts(a: { protocol: EntryProtocol; port: PortRange | 'any' }, b: { protocol: EntryProtocol; port: PortRange | 'any' }): number {
  const d = PROTOCOL_ORDER[a.protocol] - PROTOCOL_ORDER[b.protocol];
  if (d || a.port === b.port) return d;
  if (a.port === 'any') return -1;
  if (b.port === 'any') return 1;
  return a.port.from - b.port.from || a.port.to - b.port.to;
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
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i] && compareEntries(a[i]!, b[i]!) !== 0) return false;
  return true;
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

const classKey = (p: PeerClass) => (p.kind === 'any' ? -1 : p.kind === 'identity' ? p.identity : p.regionId);

/** Distinct ports of flattened inclusive ranges [from, to, from, to, ...] (sorted in place by from). */
function distinctFlat(flat: number[]): number {
  const n = flat.length / 2;
  if (n === 1) return flat[1]! - flat[0]! + 1;
  // Insertion sort of the pairs by `from`: the lists are short.
  for (let i = 1; i < n; i++) {
    const f = flat[2 * i]!;
    const t = flat[2 * i + 1]!;
    let j = i - 1;
    while (j >= 0 && flat[2 * j]! > f) {
      flat[2 * j + 2] = flat[2 * j]!;
      flat[2 * j + 3] = flat[2 * j + 1]!;
      j--;
    }
    flat[2 * j + 2] = f;
    flat[2 * j + 3] = t;
  }
  let count = 0;
  let end = -1;
  for (let i = 0; i < n; i++) {
    const f = flat[2 * i]!;
    const t = flat[2 * i + 1]!;
    if (t <= end) continue;
    count += t - Math.max(f, end + 1) + 1;
    end = t;
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
  // Per class slot: flags (bit 0 ALL, bits 1..3 all ports of TCP/UDP/SCTP),
  // and per (slot, protocol) the first port range inline, further ones in a list.
  const slots = new Map<number, number>();
  const flags: number[] = [];
  const first: number[] = [];
  const more: (number[] | undefined)[] = [];
  let lastPeer: PeerClass | undefined;
  let slot = -1;
  const lists: (readonly PolicyEntry[])[] = [entries];
  for (const r of regions) lists.push(r.entries);
  for (const list of lists) {
    for (let i = 0; i < list.length; i++) {
      const e = list[i]!;
      // Entries of one class are mostly adjacent (sorted within each rule).
      if (e.peer !== lastPeer) {
        lastPeer = e.peer;
        const k = classKey(e.peer);
        const found = slots.get(k);
        if (found === undefined) {
          slot = flags.length;
          slots.set(k, slot);
          flags.push(0);
          first.push(-1, -1, -1, -1, -1, -1);
          more.push(undefined, undefined, undefined);
        } else {
          slot = found;
        }
      }
      const f = flags[slot]!;
      if (f & 1) continue;
      const p = e.protocol;
      if (p === 'ANY') {
        flags[slot] = 1;
        continue;
      }
      const proto = p === 'TCP' ? 0 : p === 'UDP' ? 1 : 2;
      const bit = 2 << proto;
      if (f & bit) continue;
      const port = e.port;
      if (port === 'any') {
        flags[slot] = f | bit;
        continue;
      }
      const at = 6 * slot + 2 * proto;
      if (first[at] === -1) {
        first[at] = port.from;
        first[at + 1] = port.to;
      } else if (first[at] !== port.from || first[at + 1] !== port.to) {
        const m = more[3 * slot + proto];
        if (m) m.push(port.from, port.to);
        else more[3 * slot + proto] = [port.from, port.to];
      }
    }
  }
  let policy = 0;
  for (let s = 0; s < flags.length; s++) {
    policy += 1;
    const f = flags[s]!;
    if (f & 1) continue;
    for (let proto = 0; proto < 3; proto++) {
      if (f & (2 << proto)) {
        policy += 1;
        continue;
      }
      const at = 6 * s + 2 * proto;
      if (first[at] === -1) continue;
      const m = more[3 * s + proto];
      policy += m ? distinctFlat([first[at]!, first[at + 1]!, ...m]) : first[at + 1]! - first[at]! + 1;
    }
  }
  return { policy, cidr: regions.length };
}

