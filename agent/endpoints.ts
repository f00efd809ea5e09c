// The node's endpoints (pods wired by the CNI plugin), persisted one JSON
// file per endpoint under the state directory so that a restarted agent
// knows its pods without asking anyone. The CNI handler adds and removes
// them; the policy sync reads them.
//
// A saved endpoint is only a claim: after a reboot (or a veth removed while
// the agent was away) its interface may be gone and its old ifindex held by
// any other device, which would then get the pod's programs (and lose its
// traffic to anti-spoofing). So the agent prunes the registry before anything
// uses it: see prune().
import { mkdir, readdir, readFile, rm, writeFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import type { Endpoint, EndpointEvents } from './cni/handler.ts';
import type { LinkFacts } from '../datapath/pod-link.ts';

/** What prune() needs to know about the node's interfaces (datapath/pod-link.ts in the agent). */
export interface LinkView {
  /** Every interface of the agent's namespace, by name. */
  links(): Promise<Map<string, LinkFacts>>;
  /** The host-side ifindex the veth `ifName` in that namespace pairs with; undefined when there is none. */
  peerIndex(netnsPath: string, ifName: string): Promise<number | undefined>;
}

export interface PruneResult {
  /** Endpoints dropped from the registry, each with why. */
  pruned: Array<{ endpoint: Endpoint; reason: string }>;
  /** Endpoints kept whose host veth now has another ifindex (their files are rewritten). */
  renumbered: Array<{ endpoint: Endpoint; from: number }>;
}

/**
 * Why a saved endpoint is not (or no longer provably) its pod's veth, or
 * undefined when it is: its host interface must exist, be a veth, and pair
 * with interface `ifName` in the saved netns. An endpoint saved by an older
 * agent (no netns) is kept only if its ifindex is unchanged.
 */
export async function staleReason(endpoint: Endpoint, links: Map<string, LinkFacts>, view: LinkView): Promise<string | undefined> {
  const link = links.get(endpoint.hostIfName);
  if (!link) return `host interface ${endpoint.hostIfName} does not exist`;
  if (link.kind !== 'veth') return `host interface ${endpoint.hostIfName} is ${link.kind ? `a ${link.kind} device` : 'a device'}, not a veth`;
  if (endpoint.netns === undefined) {
    return link.ifindex === endpoint.ifindex ? undefined : `host interface ${endpoint.hostIfName} has ifindex ${link.ifindex}, not ${endpoint.ifindex}, and no netns was saved to check it`;
  }
  const peer = await view.peerIndex(endpoint.netns, endpoint.ifName);
  if (peer === undefined) return `no veth ${endpoint.ifName} in ${endpoint.netns}`;
  if (peer !== link.ifindex) return `${endpoint.ifName} in ${endpoint.netns} pairs with ifindex ${peer}, not with ${endpoint.hostIfName} (${link.ifindex})`;
  return undefined;
}

export class EndpointRegistry implements EndpointEvents {
  readonly #dir: string;
  readonly #byHostIf = new Map<string, Endpoint>();
  readonly #listeners: Array<() => void> = [];

  private constructor(dir: string) {
    this.#dir = dir;
  }

  static async open(dir: string): Promise<EndpointRegistry> {
    const registry = new EndpointRegistry(dir);
    await mkdir(dir, { recursive: true });
    for (const name of await readdir(dir)) {
      if (!name.endsWith('.json')) continue;
      const endpoint = JSON.parse(await readFile(join(dir, name), 'utf8')) as Endpoint;
      registry.#byHostIf.set(endpoint.hostIfName, endpoint);
    }
    return registry;
  }

  list(): Endpoint[] {
    return [...this.#byHostIf.values()];
  }

  onChange(listener: () => void): void {
    this.#listeners.push(listener);
  }

  async added(endpoint: Endpoint): Promise<void> {
    await this.#save(endpoint);
    for (const listener of this.#listeners) listener();
  }

  async removed(endpoint: Pick<Endpoint, 'hostIfName'>): Promise<void> {
    await rm(join(this.#dir, `${endpoint.hostIfName}.json`), { force: true });
    if (this.#byHostIf.delete(endpoint.hostIfName)) for (const listener of this.#listeners) listener();
  }

  /**
   * Drops every saved endpoint that staleReason() rejects (its file too) and
   * rewrites the ifindex of those whose veth was renumbered. Run at start,
   * before the datapath attaches to the endpoints; releasing the pruned
   * endpoints' addresses is the caller's (it owns the allocator).
   */
  async prune(view: LinkView): Promise<PruneResult> {
    const links = await view.links();
    const result: PruneResult = { pruned: [], renumbered: [] };
    for (const endpoint of this.list()) {
      const reason = await staleReason(endpoint, links, view);
      if (reason !== undefined) {
        await this.removed(endpoint);
        result.pruned.push({ endpoint, reason });
        continue;
      }
      const ifindex = links.get(endpoint.hostIfName)!.ifindex;
      if (ifindex !== endpoint.ifindex) {
        await this.#save({ ...endpoint, ifindex });
        result.renumbered.push({ endpoint: { ...endpoint, ifindex }, from: endpoint.ifindex });
      }
    }
    return result;
  }

  async #save(endpoint: Endpoint): Promise<void> {
    const file = join(this.#dir, `${endpoint.hostIfName}.json`);
    await writeFile(`${file}.tmp`, JSON.stringify(endpoint));
    await rename(`${file}.tmp`, file);
    this.#byHostIf.set(endpoint.hostIfName, endpoint);
  }
}
