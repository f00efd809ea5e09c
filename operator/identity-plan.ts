// Pure: which SecurityIdentity objects to create and delete so that every
// security label set in use has exactly one number, and numbers nobody uses
// go away after a grace period (a pod that is recreated at once keeps its
// identity, and agents never see a number change under a live pod).
import { IDENTITY_POD_MAX, IDENTITY_POD_MIN } from '../policy/ids.ts';

export interface IdentityWanted {
  key: string;
  namespace: string;
  namespaceLabels: Record<string, string>;
  podLabels: Record<string, string>;
}

export interface IdentityHeld {
  id: number;
  key: string;
}

export interface IdentityPlan {
  create: Array<IdentityWanted & { id: number }>;
  delete: number[];
  /** Keys unused as of now, with when they were first seen unused (carried to the next plan). */
  unusedSince: Map<string, number>;
}

export function planIdentities(
  wanted: Iterable<IdentityWanted>,
  held: readonly IdentityHeld[],
  previousUnusedSince: ReadonlyMap<string, number>,
  now: number,
  graceMs: number,
): IdentityPlan {
  const wantedByKey = new Map<string, IdentityWanted>();
  for (const w of wanted) wantedByKey.set(w.key, w);
  const heldKeys = new Set(held.map((h) => h.key));
  const used = new Set(held.map((h) => h.id));

  const create: IdentityPlan['create'] = [];
  let next = IDENTITY_POD_MIN;
  for (const w of [...wantedByKey.values()].sort((a, b) => a.key.localeCompare(b.key))) {
    if (heldKeys.has(w.key)) continue;
    while (used.has(next)) next++;
    if (next > IDENTITY_POD_MAX) throw new Error('security identity space exhausted');
    used.add(next);
    create.push({ ...w, id: next });
  }

  const deletions: number[] = [];
  const unusedSince = new Map<string, number>();
  for (const h of held) {
    if (wantedByKey.has(h.key)) continue;
    const since = previousUnusedSince.get(h.key) ?? now;
    if (now - since >= graceMs) deletions.push(h.id);
    else unusedSince.set(h.key, since);
  }
  return { create, delete: deletions.sort((a, b) => a - b), unusedSince };
}
