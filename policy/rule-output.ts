// What one rule allows, independently of the endpoint it applies to, kept
// compact: the identities (the peers' sorted identity arrays, shared and
// replaced only when their content changes), the port specs, and the CIDR
// items. The rule's PolicyEntry objects are created only when first read,
// once per rule, and shared by every endpoint the rule applies to.

import type { Segment } from './direction.ts';
import { comparePorts, compareRules } from './entries.ts';
import type { CidrItem } from './regions.ts';
import type { EntryProtocol, PeerClass, PolicyEntry, PortRange, RuleRef } from './types.ts';

export type PortSpec = { protocol: EntryProtocol; port: PortRange | 'any' };

const ANY_PEER: PeerClass = { kind: 'any' };

export const sameSpecs = (a: readonly PortSpec[], b: readonly PortSpec[]) =>
  a === b || (a.length === b.length && a.every((x, i) => comparePorts(x, b[i]!) === 0));

const sameNumbers = (a: readonly number[], b: readonly number[]) => a === b || (a.length === b.length && a.every((x, i) => x === b[i]));

function itemsEqual(a: readonly CidrItem[], b: readonly CidrItem[]): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (x.prefix.text !== y.prefix.text || x.protocol !== y.protocol || compareRules(x.rule, y.rule) !== 0) return false;
    if (x.except !== y.except && (x.except.length !== y.except.length || x.except.some((e, j) => e.text !== y.except[j]!.text))) return false;
    if (x.port !== y.port && (x.port === 'any' || y.port === 'any' || x.port.from !== y.port.from || x.port.to !== y.port.to)) return false;
  }
  return true;
}

export interface RuleOutputFields {
  rule: RuleRef;
  /** Specs allowed to every peer (the rule has no peers listed). */
  any: readonly PortSpec[];
  /** Identities allowed on `plain`, sorted. */
  ids: readonly number[];
  plain: readonly PortSpec[];
  /** Identities whose specs differ from `plain` (egress named ports): their complete sorted specs. */
  named: ReadonlyMap<number, readonly PortSpec[]> | undefined;
  items: readonly CidrItem[];
  /** The shared PeerClass object of an identity. */
  peerOf: (id: number) => PeerClass;
  /** A number unique to this output within its compiler (a cache key). */
  serial: number;
}

export class RuleOutput implements Segment {
  readonly rule: RuleRef;
  readonly any: readonly PortSpec[];
  readonly ids: readonly number[];
  readonly plain: readonly PortSpec[];
  readonly named: ReadonlyMap<number, readonly PortSpec[]> | undefined;
  readonly items: readonly CidrItem[];
  readonly serial: number;
  private readonly peerOf: (id: number) => PeerClass;
  private memo: PolicyEntry[] | undefined;

  constructor(f: RuleOutputFields) {
    this.rule = f.rule;
    this.any = f.any;
    this.ids = f.ids;
    this.plain = f.plain;
    this.named = f.named && f.named.size > 0 ? f.named : undefined;
    this.items = f.items;
    this.serial = f.serial;
    this.peerOf = f.peerOf;
  }

  /** The rule's entries, sorted (ANY first, then by identity, protocol, port) and deduplicated. */
  entries(): readonly PolicyEntry[] {
    if (this.memo) return this.memo;
    const out: PolicyEntry[] = [];
    const rule = this.rule;
    for (const pp of this.any) out.push({ peer: ANY_PEER, protocol: pp.protocol, port: pp.port, rule });
    const emit = (id: number, specs: readonly PortSpec[]) => {
      const peer = this.peerOf(id);
      for (const pp of specs) out.push({ peer, protocol: pp.protocol, port: pp.port, rule });
    };
    if (!this.named) {
      for (const id of this.ids) emit(id, this.plain);
    } else {
      const all = [...new Set([...this.ids, ...this.named.keys()])].sort((a, b) => a - b);
      for (const id of all) emit(id, this.named.get(id) ?? this.plain);
    }
    return (this.memo = out);
  }

  /** Same entries and same CIDR items. */
  equals(o: RuleOutput): boolean {
    return this === o || (this.sameEntries(o) && itemsEqual(this.items, o.items));
  }

  /** Same entries (the CIDR items aside: directions compare their regions separately). */
  sameEntries(o: RuleOutput): boolean {
    if (this === o) return true;
    if (compareRules(this.rule, o.rule) !== 0 || !sameSpecs(this.any, o.any) || !sameNumbers(this.ids, o.ids)) return false;
    if (!sameSpecs(this.plain, o.plain)) return false;
    if (!this.named || !o.named || this.named === o.named) return this.named === o.named;
    if (this.named.size !== o.named.size) return false;
    for (const [id, specs] of this.named) {
      const other = o.named.get(id);
      if (!other || !sameSpecs(specs, other)) return false;
    }
    return true;
  }

  sameAs(other: Segment): boolean {
    return other instanceof RuleOutput && this.sameEntries(other);
  }
}
