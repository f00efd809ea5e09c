// The compiled policy of one endpoint in one direction, built from shared
// pieces: the entries are the concatenation of per-rule SEGMENTS (a rule's
// entries, computed once and shared by every endpoint the rule applies to),
// materialized into one array when `entries` is first read. Equality is
// decided on the segments, so finding which endpoints a change really
// altered neither builds nor compares their entries one by one.
// `entryCount` is likewise computed when first read. Both are enumerable,
// memoized own properties: a DirectionPolicy reads (and compares,
// serializes, clones) like a plain object.

import { comparePolicyRefs, compareRules, entriesEqual, entryCount } from './entries.ts';
import type { CidrRegion, DirectionPolicy, EntryCount, PolicyEntry, PolicyRef, RuleRef } from './types.ts';

/** One rule's entries (sorted, deduplicated; possibly empty), produced on demand. */
export interface Segment {
  readonly rule: RuleRef;
  entries(): readonly PolicyEntry[];
  /** Whether `other` (a segment of an equal rule) has the same entries; cheap, without building them. */
  sameAs(other: Segment): boolean;
}

const segmentsOf = new WeakMap<DirectionPolicy, readonly Segment[]>();

/** `segments` in rule order: their concatenation is sorted. */
export function makeDirectionPolicy(isolatedBy: PolicyRef[], segments: readonly Segment[], cidrRegions: CidrRegion[]): DirectionPolicy {
  let entries: PolicyEntry[] | undefined;
  let count: EntryCount | undefined;
  const dp: DirectionPolicy = {
    isolatedBy,
    get entries(): PolicyEntry[] {
      if (!entries) {
        const parts = segments.map((s) => s.entries()).filter((e) => e.length > 0);
        entries = parts.length === 1 ? (parts[0] as PolicyEntry[]) : ([] as PolicyEntry[]).concat(...parts);
      }
      return entries;
    },
    cidrRegions,
    get entryCount(): EntryCount {
      return (count ??= entryCount(dp.entries, cidrRegions));
    },
  };
  segmentsOf.set(dp, segments);
  return dp;
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
  const sa = segmentsOf.get(a);
  const sb = segmentsOf.get(b);
  // Same rules in the same order: each rule's entries are in its own
  // segment (entries carry their rule), so the segments decide.
  if (sa && sb && sa.length === sb.length && sa.every((s, i) => compareRules(s.rule, sb[i]!.rule) === 0)) {
    return sa.every((s, i) => s.sameAs(sb[i]!));
  }
  return entriesEqual(a.entries, b.entries);
}
