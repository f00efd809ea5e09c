// An inverted index of labelled items (label key -> value -> items), used to
// find the candidates of a selector without scanning every item.

import type { CompiledSelector } from './selectors.ts';
import type { Labels } from './types.ts';

export class LabelIndex<T> {
  private readonly byKey = new Map<string, { count: number; values: Map<string, Set<T>> }>();

  add(item: T, labels: Labels): void {
    for (const [k, v] of Object.entries(labels)) {
      let slot = this.byKey.get(k);
      if (!slot) this.byKey.set(k, (slot = { count: 0, values: new Map() }));
      let set = slot.values.get(v);
      if (!set) slot.values.set(v, (set = new Set()));
      if (!set.has(item)) {
        set.add(item);
        slot.count++;
      }
    }
  }

  remove(item: T, labels: Labels): void {
    for (const [k, v] of Object.entries(labels)) {
      const slot = this.byKey.get(k);
      const set = slot?.values.get(v);
      if (!slot || !set?.delete(item)) continue;
      slot.count--;
      if (set.size === 0) slot.values.delete(v);
      if (slot.count === 0) this.byKey.delete(k);
    }
  }

  /**
   * A superset of the items `sel` matches, from its most selective In or
   * Exists requirement; undefined when it has none (every item is a candidate).
   */
  candidates(sel: CompiledSelector): Iterable<T> | undefined {
    let best: Set<T>[] | undefined;
    let bestSize = Infinity;
    for (const r of sel.requirements) {
      const slot = this.byKey.get(r.key);
      let sets: Set<T>[];
      if (r.op === 'In') sets = r.values.flatMap((v) => slot?.values.get(v) ?? []);
      else if (r.op === 'Exists') sets = slot ? [...slot.values.values()] : [];
      else continue;
      const size = sets.reduce((n, s) => n + s.size, 0);
      if (size < bestSize) {
        best = sets;
        bestSize = size;
      }
    }
    if (!best) return undefined;
    if (best.length === 1) return best[0]!;
    return best.flatMap((s) => [...s]);
  }
}
