// CIDR regions of one endpoint and direction (ADR 0001, `pal_policy_cidr`).
//
// The regions are the prefixes that appear in the endpoint's CIDR items (each
// item's prefix and its excepts). The datapath finds, by longest-prefix match,
// the most specific region P containing the peer address a, and allows what
// the entries of P allow. An item applies to P when its prefix contains P and
// none of its excepts contains P.
//
// Why this is exact (the chain property): all region prefixes that contain
// one address a are nested (two prefixes that share an address are nested),
// so they form a chain ordered by length, and P is its longest element.
// For any region prefix Q:  a ∈ Q  <=>  Q ⊇ P.  (=> because Q is in the chain
// and P is the longest element; <= because a ∈ P ⊆ Q.) Every item prefix and
// every except is a region prefix, so "a ∈ cidr and a ∉ every except" is
// decided by P alone: every address whose most specific region is P gets
// exactly the same verdict from every item. An address in no region is in no
// item's prefix, so no CIDR rule applies to it.

import { comparePrefixes, prefixContains, type Prefix } from './cidr.ts';
import { sortDedup } from './entries.ts';
import { regionId } from './ids.ts';
import type { CidrRegion, EntryProtocol, PeerClass, PolicyEntry, PortRange, RuleRef } from './types.ts';

/** A rule's allowance for the addresses of `prefix` minus its excepts. */
export interface CidrItem {
  prefix: Prefix;
  except: readonly Prefix[];
  protocol: EntryProtocol;
  port: PortRange | 'any';
  rule: RuleRef;
}

export type RegionsResult =
  | { ok: true; regions: CidrRegion[] }
  | { ok: false; collision: [string, string]; regionId: number };

export function computeRegions(items: readonly CidrItem[]): RegionsResult {
  if (items.length === 0) return { ok: true, regions: [] };
  const byText = new Map<string, Prefix>();
  for (const it of items) {
    byText.set(it.prefix.text, it.prefix);
    for (const e of it.except) byText.set(e.text, e);
  }
  const prefixes = [...byText.values()].sort(comparePrefixes);
  const ids = new Map<number, string>();
  const index = new Map<string, number>();
  const peers: PeerClass[] = [];
  const lists: PolicyEntry[][] = [];
  for (let i = 0; i < prefixes.length; i++) {
    const p = prefixes[i]!;
    const id = regionId(p.text);
    const other = ids.get(id);
    if (other !== undefined) return { ok: false, collision: [other, p.text], regionId: id };
    ids.set(id, p.text);
    index.set(p.text, i);
    peers.push({ kind: 'region', regionId: id });
    lists.push([]);
  }
  for (const it of items) {
    // The regions inside it.prefix follow it contiguously in the sorted order
    // (a shorter prefix at the same address sorts before it and contains it).
    for (let j = index.get(it.prefix.text)!; j < prefixes.length; j++) {
      const r = prefixes[j]!;
      if (!prefixContains(it.prefix, r)) break;
      if (it.except.some((e) => prefixContains(e, r))) continue;
      lists[j]!.push({ peer: peers[j]!, protocol: it.protocol, port: it.port, rule: it.rule });
    }
  }
  return {
    ok: true,
    regions: prefixes.map((p, i) => ({
      prefix: p.text,
      family: p.family,
      regionId: (peers[i] as { regionId: number }).regionId,
      entries: sortDedup(lists[i]!),
    })),
  };
}
