// Label selectors (metav1.LabelSelector): matching and a canonical form.
// matchLabels and matchExpressions are ANDed; an empty selector matches
// everything; NotIn and DoesNotExist match when the key is absent.

import type { LabelSelector, Labels } from './types.ts';

export type Requirement =
  | { key: string; op: 'In' | 'NotIn'; values: readonly string[] }
  | { key: string; op: 'Exists' | 'DoesNotExist' };

export interface CompiledSelector {
  /** Canonical text: equal for selectors that mean the same (matchLabels k=v is `k In (v)`). */
  readonly key: string;
  /** The requirements, sorted; empty: matches everything. */
  readonly requirements: readonly Requirement[];
  /** false when the selector has an unknown operator or In/NotIn without values: it matches nothing. */
  readonly valid: boolean;
  matches(labels: Labels): boolean;
}

const hasOwn = (labels: Labels, key: string) => Object.prototype.hasOwnProperty.call(labels, key);

function requirementMatches(r: Requirement, labels: Labels): boolean {
  const present = hasOwn(labels, r.key);
  switch (r.op) {
    case 'In':
      return present && r.values.includes(labels[r.key]!);
    case 'NotIn':
      return !present || !r.values.includes(labels[r.key]!);
    case 'Exists':
      return present;
    case 'DoesNotExist':
      return !present;
  }
}

function requirementText(r: Requirement): string {
  return 'values' in r ? `${JSON.stringify(r.key)} ${r.op} ${JSON.stringify(r.values)}` : `${r.op} ${JSON.stringify(r.key)}`;
}

const MATCH_NOTHING: CompiledSelector = {
  key: '!invalid',
  requirements: [],
  valid: false,
  matches: () => false,
};

/** Compiles a selector; `undefined` is the empty selector (matches everything). */
export function compileSelector(sel: LabelSelector | undefined): CompiledSelector {
  const reqs: Requirement[] = [];
  for (const [key, value] of Object.entries(sel?.matchLabels ?? {})) reqs.push({ key, op: 'In', values: [value] });
  for (const e of sel?.matchExpressions ?? []) {
    const values = e.values ?? [];
    switch (e.operator) {
      case 'In':
      case 'NotIn':
        if (values.length === 0) return MATCH_NOTHING;
        reqs.push({ key: e.key, op: e.operator, values: [...new Set(values)].sort() });
        break;
      case 'Exists':
      case 'DoesNotExist':
        if (values.length > 0) return MATCH_NOTHING;
        reqs.push({ key: e.key, op: e.operator });
        break;
      default:
        return MATCH_NOTHING;
    }
  }
  const byText = new Map<string, Requirement>();
  for (const r of reqs) byText.set(requirementText(r), r);
  const texts = [...byText.keys()].sort();
  const requirements = texts.map((t) => byText.get(t)!);
  const key = texts.join(',');
  if (requirements.length === 0) return { key, requirements, valid: true, matches: () => true };
  return {
    key,
    requirements,
    valid: true,
    matches: (labels) => {
      for (const r of requirements) if (!requirementMatches(r, labels)) return false;
      return true;
    },
  };
}

/** Whether `sel` selects an object with `labels`. */
export function selectorMatches(sel: LabelSelector | undefined, labels: Labels): boolean {
  return compileSelector(sel).matches(labels);
}
