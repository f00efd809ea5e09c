// Names whose newly learned addresses are still being written to the kernel
// maps, each with the sync that writes them.
//
// The proxy releases an answer that teaches nothing new at once (the cache
// already has its addresses: a TTL refresh). But "already in the cache" is
// not "already in the maps": while the sync that writes what an earlier
// answer taught runs, a second answer for the same name (another pod, or
// another application, asking at the same moment; a client's resent query)
// teaches nothing new to the cache, and released at once, its client's first
// SYN arrives before the maps allow the address and is dropped. Such an
// answer waits for that sync instead (DnsService.#learn).
export class UnwrittenNames {
  readonly #syncs = new Map<string, Promise<void>>();

  /** `names` changed; their addresses are in the maps once `sync` resolves (a later sync writes them too). */
  writing(names: Iterable<string>, sync: Promise<void>): void {
    const list = [...names];
    for (const name of list) this.#syncs.set(name, sync);
    const done = () => {
      for (const name of list) if (this.#syncs.get(name) === sync) this.#syncs.delete(name);
    };
    sync.then(done, done);
  }

  /** The sync an answer for `name` must wait for before its release, if one is still writing the name. */
  pending(name: string): Promise<void> | undefined {
    return this.#syncs.get(name);
  }

  get size(): number {
    return this.#syncs.size;
  }
}
