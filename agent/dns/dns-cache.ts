// The names the node's DNS proxy learned, with each address's expiry: what
// the compiler is told (setDnsName) and what survives an agent restart.
//
// An address expires with its TTL (never sooner than `minTtlSeconds`), but
// not while a connection to it is open: `inUse` is asked first, and an
// address still in use is kept and asked about again later. So expiry never
// cuts a connection opened before (an address leaving the ipcache would
// re-check, and cut, every connection to it).
//
// Pure bookkeeping: the clock is passed in; the agent calls `expire(now)`
// periodically and `apply` hears every name whose address set changed.
import { readFile, rename, writeFile } from 'node:fs/promises';

export interface DnsCacheOptions {
  /** Shortest lifetime of a learned address, whatever the TTL says (Cilium's tofqdns-min-ttl). */
  minTtlSeconds: number;
  /** Longest lifetime (a hostile server's huge TTL must not pin an address forever). */
  maxTtlSeconds: number;
  /** A name's current addresses, after every change. */
  apply(name: string, addresses: readonly string[]): void;
  /** Whether a connection to the address is open (conntrack). */
  inUse(address: string): boolean;
}

/** The file format of a saved cache: name -> [address, expiry in ms since the epoch][]. */
type Saved = { version: 1; names: Record<string, Array<[string, number]>> };

export class DnsCache {
  readonly #o: DnsCacheOptions;
  readonly #names = new Map<string, Map<string, number>>();

  constructor(options: DnsCacheOptions) {
    this.#o = options;
  }

  /**
   * An answer: `addresses` of `name` for `ttlSeconds`, seen at `now` (ms).
   * Returns whether the name's address set changed (the maps must be
   * written before the answer is released); a refreshed TTL alone does not.
   */
  learn(name: string, addresses: readonly string[], ttlSeconds: number, now: number): boolean {
    if (addresses.length === 0) return false;
    const ttl = Math.min(Math.max(ttlSeconds, this.#o.minTtlSeconds), this.#o.maxTtlSeconds);
    const until = now + ttl * 1000;
    let known = this.#names.get(name);
    if (!known) this.#names.set(name, (known = new Map()));
    let added = false;
    for (const a of addresses) {
      if (!known.has(a)) added = true;
      known.set(a, Math.max(known.get(a) ?? 0, until));
    }
    if (added) this.#o.apply(name, [...known.keys()].sort());
    return added;
  }

  /** Whether some address's time has come (expire() would ask inUse about it). */
  due(now: number): boolean {
    for (const known of this.#names.values()) for (const until of known.values()) if (until <= now) return true;
    return false;
  }

  /** Forgets addresses whose time has come and that no connection uses; returns the names that changed. */
  expire(now: number): string[] {
    const changed: string[] = [];
    for (const [name, known] of this.#names) {
      let removed = false;
      for (const [a, until] of known) {
        if (until > now || this.#o.inUse(a)) continue;
        known.delete(a);
        removed = true;
      }
      if (!removed) continue;
      if (known.size === 0) this.#names.delete(name);
      this.#o.apply(name, [...known.keys()].sort());
      changed.push(name);
    }
    return changed;
  }

  /** name -> addresses, for status and tests. */
  entries(): Map<string, string[]> {
    return new Map([...this.#names].map(([n, m]) => [n, [...m.keys()].sort()]));
  }

  get size(): number {
    let n = 0;
    for (const m of this.#names.values()) n += m.size;
    return n;
  }

  /** Writes the cache atomically (a new file renamed over the old). */
  async save(file: string): Promise<void> {
    const saved: Saved = { version: 1, names: {} };
    for (const [name, m] of this.#names) saved.names[name] = [...m];
    await writeFile(`${file}.tmp`, JSON.stringify(saved));
    await rename(`${file}.tmp`, file);
  }

  /**
   * Reads a saved cache (absent or unreadable: nothing) and applies what has
   * not expired at `now`, or has but a connection still uses; returns the
   * number of addresses restored.
   */
  async load(file: string, now: number, inUse: (address: string) => boolean = () => false): Promise<number> {
    let saved: Saved;
    try {
      saved = JSON.parse(await readFile(file, 'utf8')) as Saved;
    } catch {
      return 0;
    }
    if (saved?.version !== 1 || typeof saved.names !== 'object' || saved.names === null) return 0;
    let restored = 0;
    for (const [name, list] of Object.entries(saved.names)) {
      if (!Array.isArray(list)) continue;
      const m = new Map<string, number>();
      for (const item of list) {
        if (!Array.isArray(item) || typeof item[0] !== 'string' || typeof item[1] !== 'number') continue;
        // Expired while no agent ran: kept only while a connection uses it (due, so asked again from the next expiry).
        if (item[1] <= now && !inUse(item[0])) continue;
        m.set(item[0], Math.min(Math.max(item[1], now), now + this.#o.maxTtlSeconds * 1000));
      }
      if (m.size === 0) continue;
      this.#names.set(name, m);
      restored += m.size;
      this.#o.apply(name, [...m.keys()].sort());
    }
    return restored;
  }
}
