// Pure: which SecurityIdentity objects to create and delete so that every
// security label set in use has exactly one number, and numbers nobody uses
// go away after a grace period (a pod that is recreated at once keeps its
// identity, and a pod that just left a label set may still be judged by its
// old number on nodes that have not seen the change yet).
//
// `held` is what exists as far as the controller knows: its informer's cache
// plus what it wrote itself that the cache has not shown yet. Planning from
// the cache alone would hand the same number out twice while the cache lags
// behind our own writes: the cause of the 409 storms under label churn.
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
  /** The object's uid, when known: deletions are conditional on it. */
  uid?: string;
}

export interface IdentityPlan {
  create: Array<IdentityWanted & { id: number }>;
  delete: IdentityHeld[];
  /** Keys unused as of now, with when they were first seen unused (carried to the next plan). */
  unusedSince: Map<string, number>;
  /** When the next unused identity's grace period ends (undefined: none pending). */
  nextExpiry: number | undefined;
}

/** `now` and the unusedSince times are on one monotonic clock (ms). */
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
  for (const w of [...wantedByKey.values()].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))) {
    if (heldKeys.has(w.key)) continue;
    while (used.has(next)) next++;
    if (next > IDENTITY_POD_MAX) throw new Error('security identity space exhausted');
    used.add(next);
    create.push({ ...w, id: next });
  }

  const deletions: IdentityHeld[] = [];
  const unusedSince = new Map<string, number>();
  let nextExpiry: number | undefined;
  for (const h of held) {
    if (wantedByKey.has(h.key)) continue;
    // First seen unused now, by this replica: a fresh identity, or one a new
    // leader inherits, gets the whole grace period.
    const since = previousUnusedSince.get(h.key) ?? now;
    if (now - since >= graceMs) {
      deletions.push(h);
    } else {
      unusedSince.set(h.key, since);
      nextExpiry = Math.min(nextExpiry ?? Infinity, since + graceMs);
    }
  }
  return { create, delete: deletions.sort((a, b) => a.id - b.id), unusedSince, nextExpiry };
}

/**
 * Pure: the identities that exist as far as we know. The informer's cache lags
 * behind our own writes, so what we created (or found existing) and what we
 * deleted is laid over it until the cache shows it. Returns the overlays still
 * needed.
 */
export function knownIdentities(
  cache: readonly IdentityHeld[],
  written: ReadonlyMap<number, IdentityHeld>,
  deleted: ReadonlyMap<number, IdentityHeld>,
): { held: IdentityHeld[]; written: Map<number, IdentityHeld>; deleted: Map<number, IdentityHeld> } {
  const byId = new Map(cache.map((h) => [h.id, h]));
  const stillDeleted = new Map<number, IdentityHeld>();
  for (const [id, gone] of deleted) {
    // Until the cache drops it (or shows a newer object of that number), hide it.
    const shown = byId.get(id);
    if (!shown || shown.key !== gone.key || (shown.uid && gone.uid && shown.uid !== gone.uid)) continue;
    byId.delete(id);
    stillDeleted.set(id, gone);
  }
  const stillWritten = new Map<number, IdentityHeld>();
  for (const [id, ours] of written) {
    if (byId.has(id)) continue; // the cache shows it (or a newer object of that number): it wins
    byId.set(id, ours);
    stillWritten.set(id, ours);
  }
  return { held: [...byId.values()], written: stillWritten, deleted: stillDeleted };
}
