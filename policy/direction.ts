// The compiled policy of one endpoint in one direction, built from shared
// pieces: the entries are the concatenation of per-rule SEGMENTS (a rule's
// entries, computed once and shared by every endpoint the rule applies to),
// materialized into one array when `entries` is first read. Equality is
// decided on the segments, so finding which endpoints a change really
// altered neither builds nor compares their entries one by one.
// `entryCount` is likewise computed when first read. Both are enumerable,
// memoized own properties: a DirectionPolicy reads (and compares,
// serializes, clones) like a plain object; its internals are private fields.

import { comparePolicyRefs, compareRules, entriesEqual, entryCount } from './entries.ts';
import type { CidrRegion, DirectionPolicy, EntryCount, PolicyEntry, PolicyRef, RuleRef } from './types.ts';

/** One rule's entries (sorted, deduplicated; possibly empty), produced on demand. */
export interface Segment {
  readonly rule: RuleRef;
  entries(): readonly PolicyEntry[];
  /** Whether `other` (a segment of an equal rule) has the same entries; cheap, without building them. */
  sameAs(other: Segment): boolean;
}

class CompiledDirection {
  declare readonly entries: PolicyEntry[];
  declare readonly entryCount: EntryCount;
  readonly isolatedBy: PolicyRef[];
  readonly cidrRegions: CidrRegion[];
  readonly #segments: readonly Segment[];
  #entries: PolicyEntry[] | undefined;
  #count: EntryCount | undefined;

  constructor(isolatedBy: PolicyRef[], segments: readonly Segment[], cidrRegions: CidrRegion[]) {
    this.isolatedBy = isolatedBy;
    Object.defineProperty(this, 'entries', CompiledDirection.ENTRIES);
    this.cidrRegions = cidrRegions;
    Object.defineProperty(this, 'entryCount', CompiledDirection.COUNT);
    this.#segments = segments;
  }

  // Shared descriptors (no closure per object): own, enumerable, computed once.
  static readonly ENTRIES: PropertyDescriptor = {
    enumerable: true,
    get(this: CompiledDirection): PolicyEntry[] {
      if (!this.#entries) {
        const parts: (readonly PolicyEntry[])[] = [];
        for (const s of this.#segments) {
          const e = s.entries();
          if (e.length > 0) parts.push(e);
        }
        this.#entries = parts.length === 1 ? (parts[0] as PolicyEntry[]) : ([] as PolicyEntry[]).concat(...parts);
      }
      return this.#entries;
    },
  };

  static readonly COUNT: PropertyDescriptor = {
    enumerable: true,
    get(this: CompiledDirection): EntryCount {
      return (this.#count ??= entryCount(this.entries, this.cidrRegions));
    },
  };

  static segmentsOf(dp: DirectionPolicy): readonly Segment[] | undefined {
    return dp instanceof CompiledDirection ? dp.#segments : undefined;
  }
}

/** `segments` in rule order: their concatenation is sorted. */
export function makeDirectionPolicy(isolatedBy: PolicyRef[], segments: readonly Segment[], cidrRegions: CidrRegion[]): DirectionPolicy {
  return new CompiledDirection(isolatedBy, segments, cidrRegions);
}

function regionsEqual(a: readonly CidrRegion[], b: readonly CidrRegion[]): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (x.prefix !== y.prefix || x.regionId !== y.regionId || !entriesEqual(x.entries, y.entries)) return false;
  }
  return true;
}

export function directionEqual(a: DirectionPolicy | undefined, b: DirectionPolicy | undefined): boolean {
  if (a === b) return true;
  if (!a || !b) return false;
  if (a.isolatedBy.length !== b.isolatedBy.length) return false;
  for (let i = 0; i < a.isolatedBy.length; i++) if (comparePolicyRefs(a.isolatedBy[i]!, b.isolatedBy[i]!) !== 0) return false;
  if (!regionsEqual(a.cidrRegions, b.cidrRegions)) return false;
  const sa = CompiledDirection.segmentsOf(a);
  const sb = CompiledDirection.segmentsOf(b);
  // Same rules in the same order: each rule's entries are in its own
  // segment (entries carry their rule), so the segments decide.
  if (sa && sb && sa.length === sb.length) {
    let sameRules = true;
    for (let i = 0; i < sa.length && sameRules; i++) sameRules = sa[i]!.rule === sb[i]!.rule || compareRules(sa[i]!.rule, sb[i]!.rule) === 0;
    // Equal segments make equal entries; unequal ones may still (a named port that now
    // resolves to a number the rule already had): the entries decide then.
    if (sameRules && sa.every((seg, i) => seg === sb[i] || seg.sameAs(sb[i]!))) return true;
  }
  return entriesEqual(a.entries, b.entries);
}
