// What the compiler knows of DNS: the names learned from answers (name ->
// addresses; the agent adds, replaces and expires them), the FQDN selectors
// of the policies, and from both the identity of every learned address.
//
// Like Cilium's, the scheme gives each address the identity of its SET of
// matching selectors (the selectors that match any of its names), so that a
// rule's entries name a handful of set identities, not every address: a new
// address for a known set costs one ipcache entry and no policy entry. An
// identity is `2^30 | h(set key)`, probing onwards on a collision (ids.ts).
// Every change is incremental: a name touches its own addresses; a selector
// is matched against every name once, when it first appears.

import { formatAddress, parseAddress } from './cidr.ts';
import { fqdnIdentity, nextFqdnIdentity } from './ids.ts';
import { fqdnKey, fqdnMatcher, normalizeName } from './fqdn.ts';
import type { FqdnSelector } from './palisade-policy.ts';

interface Selector {
  matches: (name: string) => boolean;
  refs: number;
}

interface AddressSet {
  id: number;
  /** The selector keys, sorted. */
  selectors: readonly string[];
  addresses: Set<string>;
}

export interface FqdnListener {
  /** The identities of these selectors changed (a set appeared or went); `world` rules see every set. */
  setsChanged(selectorKeys: ReadonlySet<string>): void;
}

export class FqdnState {
  readonly #selectors = new Map<string, Selector>();
  /** name -> its addresses and the selectors matching it */
  readonly #names = new Map<string, { addresses: readonly string[]; selectors: Set<string> }>();
  readonly #addressNames = new Map<string, Set<string>>();
  /** address -> key of its selector set (only addresses some selector matches) */
  readonly #addressSet = new Map<string, string>();
  /** address -> the identity of its set (kept with #addressSet) */
  readonly #addressIds = new Map<string, number>();
  readonly #sets = new Map<string, AddressSet>();
  readonly #ids = new Map<number, string>();
  readonly #listener: FqdnListener;
  readonly #namesOf = new Map<string, readonly string[]>();
  #sortedIds: number[] | undefined;

  constructor(listener: FqdnListener) {
    this.#listener = listener;
  }

  /** Registers a use of the selector; returns its key. */
  acquire(sel: FqdnSelector): string {
    const key = fqdnKey(sel);
    const known = this.#selectors.get(key);
    if (known) {
      known.refs++;
      return key;
    }
    const s: Selector = { matches: fqdnMatcher(sel), refs: 1 };
    this.#selectors.set(key, s);
    const touched = new Set<string>();
    for (const [name, rec] of this.#names) {
      if (!s.matches(name)) continue;
      rec.selectors.add(key);
      for (const a of rec.addresses) touched.add(a);
    }
    this.#recompute(touched);
    return key;
  }

  release(key: string): void {
    const s = this.#selectors.get(key);
    if (!s || --s.refs > 0) return;
    this.#selectors.delete(key);
    const touched = new Set<string>();
    for (const rec of this.#names.values()) {
      if (!rec.selectors.delete(key)) continue;
      for (const a of rec.addresses) touched.add(a);
    }
    this.#recompute(touched);
  }

  /** The addresses a name resolves to now (none: forgotten). Unparsable addresses are ignored. */
  setName(rawName: string, rawAddresses: readonly string[]): void {
    const name = normalizeName(rawName);
    const addresses = [...new Set(rawAddresses.flatMap((a) => {
      const p = parseAddress(a);
      return p ? [formatAddress(p)] : [];
    }))].sort();
    const old = this.#names.get(name);
    const touched = new Set<string>(old?.addresses ?? []);
    for (const a of old?.addresses ?? []) this.#addressNames.get(a)?.delete(name);
    if (addresses.length === 0) {
      this.#names.delete(name);
    } else {
      const selectors = old?.selectors ?? new Set([...this.#selectors].filter(([, s]) => s.matches(name)).map(([k]) => k));
      this.#names.set(name, { addresses, selectors });
      for (const a of addresses) {
        touched.add(a);
        let names = this.#addressNames.get(a);
        if (!names) this.#addressNames.set(a, (names = new Set()));
        names.add(name);
      }
    }
    for (const a of touched) {
      this.#namesOf.delete(a);
      if (this.#addressNames.get(a)?.size === 0) this.#addressNames.delete(a);
    }
    this.#recompute(touched);
  }

  /** Whether some policy's FQDN selector matches the name (only such names are worth learning). */
  wanted(rawName: string): boolean {
    const name = normalizeName(rawName);
    for (const s of this.#selectors.values()) if (s.matches(name)) return true;
    return false;
  }

  /** The names that address was learned for (flows: the name a connection matched), frozen and shared until they change. */
  namesOf(address: string): readonly string[] {
    let names = this.#namesOf.get(address);
    if (!names) {
      names = Object.freeze([...(this.#addressNames.get(address) ?? [])].sort());
      if (this.#namesOf.size > 100_000) this.#namesOf.clear();
      this.#namesOf.set(address, names);
    }
    return names;
  }

  /** Sorted identities of the sets containing any of these selector keys. */
  idsFor(keys: readonly string[]): number[] {
    const out: number[] = [];
    for (const set of this.#sets.values()) if (set.selectors.some((k) => keys.includes(k))) out.push(set.id);
    return out.sort((a, b) => a - b);
  }

  /** Every set's identity, sorted (the `world` entity matches them all: learned addresses are outside the cluster). */
  allIds(): readonly number[] {
    return (this.#sortedIds ??= [...this.#ids.keys()].sort((a, b) => a - b));
  }

  /** Learned address -> its identity (live: read, do not keep). */
  addressIdentities(): ReadonlyMap<string, number> {
    return this.#addressIds;
  }

  #recompute(addresses: Iterable<string>): void {
    const changed = new Set<string>();
    for (const a of addresses) {
      const keys = new Set<string>();
      for (const n of this.#addressNames.get(a) ?? []) for (const k of this.#names.get(n)!.selectors) keys.add(k);
      const key = [...keys].sort().join('\n');
      const before = this.#addressSet.get(a);
      if (before === (key || undefined)) continue;
      if (before !== undefined) {
        const set = this.#sets.get(before)!;
        set.addresses.delete(a);
        if (set.addresses.size === 0) {
          this.#sets.delete(before);
          this.#ids.delete(set.id);
          this.#sortedIds = undefined;
          for (const k of set.selectors) changed.add(k);
        }
        this.#addressSet.delete(a);
        this.#addressIds.delete(a);
      }
      if (key) {
        let set = this.#sets.get(key);
        if (!set) {
          let id = fqdnIdentity(key);
          while (this.#ids.has(id)) id = nextFqdnIdentity(id);
          set = { id, selectors: [...keys].sort(), addresses: new Set() };
          this.#sets.set(key, set);
          this.#ids.set(id, key);
          this.#sortedIds = undefined;
          for (const k of set.selectors) changed.add(k);
        }
        set.addresses.add(a);
        this.#addressSet.set(a, key);
        this.#addressIds.set(a, set.id);
      }
    }
    if (changed.size > 0) this.#listener.setsChanged(changed);
  }
}
