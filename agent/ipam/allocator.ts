// Address allocation for the pods of one node, from the node's pod CIDR.
//
// Persistence: one file per allocated address, `<dir>/<ip>`, holding the
// owner (container ID and interface name). A file is created with O_EXCL, so
// even two processes racing for an address cannot both get it; within the
// agent, mutations are also serialized so the in-memory owner index stays
// exact. Addresses are handed out round-robin after the last one reserved,
// so a freed address is not reused at once (stale flows and caches keyed by
// IP age out first).
import { mkdir, open, readdir, readFile, rm, writeFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { assignableRange, formatIpv4, parseIpv4, type Ipv4Cidr } from './ipv4.ts';

export interface Owner {
  containerId: string;
  ifName: string;
}

export class RangeExhaustedError extends Error {
  constructor(range: string) {
    super(`no free address left in pod CIDR ${range}`);
    this.name = 'RangeExhaustedError';
  }
}

const LAST_RESERVED = 'last_reserved_ip';

export class IpAllocator {
  readonly #dir: string;
  readonly #range: { first: number; last: number };
  readonly #rangeText: string;
  /** ip -> owner, mirrors the files in #dir. */
  readonly #owners = new Map<number, Owner>();
  #lastReserved: number;
  #queue: Promise<unknown> = Promise.resolve();

  private constructor(dir: string, cidr: Ipv4Cidr, rangeText: string) {
    this.#dir = dir;
    this.#range = assignableRange(cidr);
    this.#rangeText = rangeText;
    this.#lastReserved = this.#range.last;
  }

  /** Opens (creating if needed) the allocation store in `dir` and loads what it holds. */
  static async open(dir: string, cidr: Ipv4Cidr, rangeText: string): Promise<IpAllocator> {
    const allocator = new IpAllocator(dir, cidr, rangeText);
    await mkdir(dir, { recursive: true });
    for (const name of await readdir(dir)) {
      if (name === LAST_RESERVED) {
        allocator.#lastReserved = parseIpv4((await readFile(join(dir, name), 'utf8')).trim());
      } else if (/^\d+\.\d+\.\d+\.\d+$/.test(name)) {
        const [containerId = '', ifName = ''] = (await readFile(join(dir, name), 'utf8')).split('\n');
        allocator.#owners.set(parseIpv4(name), { containerId, ifName });
      }
    }
    return allocator;
  }

  /** The address already held by this owner, if any. */
  find(owner: Owner): string | undefined {
    for (const [ip, o] of this.#owners) {
      if (o.containerId === owner.containerId && o.ifName === owner.ifName) return formatIpv4(ip);
    }
    return undefined;
  }

  allocations(): Array<{ ip: string; owner: Owner }> {
    return [...this.#owners].map(([ip, owner]) => ({ ip: formatIpv4(ip), owner }));
  }

  /** Reserves a free address for the owner; returns the one it already holds if any. */
  allocate(owner: Owner): Promise<string> {
    return this.#serialized(async () => {
      const held = this.find(owner);
      if (held) return held;
      const { first, last } = this.#range;
      const count = last - first + 1;
      for (let i = 1; i <= count; i++) {
        const ip = first + ((this.#lastReserved - first + i) % count);
        if (this.#owners.has(ip)) continue;
        if (!(await this.#claim(ip, owner))) continue;
        this.#owners.set(ip, owner);
        this.#lastReserved = ip;
        await atomicWrite(join(this.#dir, LAST_RESERVED), formatIpv4(ip));
        return formatIpv4(ip);
      }
      throw new RangeExhaustedError(this.#rangeText);
    });
  }

  /** Frees whatever the owner holds; returns the freed address, or undefined when it held none. */
  release(owner: Owner): Promise<string | undefined> {
    return this.#serialized(async () => {
      const held = this.find(owner);
      if (!held) return undefined;
      await rm(join(this.#dir, held), { force: true });
      this.#owners.delete(parseIpv4(held));
      return held;
    });
  }

  async #claim(ip: number, owner: Owner): Promise<boolean> {
    try {
      const file = await open(join(this.#dir, formatIpv4(ip)), 'wx');
      try {
        await file.writeFile(`${owner.containerId}\n${owner.ifName}\n`);
      } finally {
        await file.close();
      }
      return true;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw error;
    }
  }

  #serialized<T>(work: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(work, work);
    this.#queue = run.catch(() => undefined);
    return run;
  }
}

async function atomicWrite(path: string, text: string): Promise<void> {
  await writeFile(`${path}.tmp`, text);
  await rename(`${path}.tmp`, path);
}
